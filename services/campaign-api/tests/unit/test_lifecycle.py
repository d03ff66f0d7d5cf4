import pytest

from campaign_api.domain import InvalidTransition, check_transition
from contracts.enums import CampaignStatus as S

ALLOWED = {(S.DRAFT, S.ACTIVE), (S.ACTIVE, S.PAUSED), (S.PAUSED, S.ACTIVE), (S.PAUSED, S.COMPLETED)}


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("target", list(S))
def test_only_the_briefs_transitions_are_allowed_by_request(current, target):
    if (current, target) in ALLOWED:
        check_transition(current, target)
    else:
        with pytest.raises(InvalidTransition) as error:
            check_transition(current, target)
        assert error.value.current is current
        assert error.value.allowed == sorted(t for c, t in ALLOWED if c is current)
