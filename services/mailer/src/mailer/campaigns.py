"""Which campaigns may send now: what the mailer checks before each SMTP transaction."""

from uuid import UUID

from mailer.domain import CampaignState


class CampaignStates:
    """Each campaign's newest known state, in memory: the check costs nothing per email.
    Fed by this instance's campaign.status consumer and by re-reading what every instance
    stored. A campaign not heard of is active: its sends come from the scheduler, which
    only emits those of active campaigns."""

    def __init__(self) -> None:
        self._known: dict[UUID, tuple[int, CampaignState]] = {}

    def state_of(self, campaign_id: UUID) -> CampaignState:
        known = self._known.get(campaign_id)
        return CampaignState.ACTIVE if known is None else known[1]

    def learn(self, campaign_id: UUID, state: CampaignState, status_seq: int) -> None:
        """Keeps the state unless a newer one (a higher sequence) is known; completed is final."""
        known = self._known.get(campaign_id)
        if known is None or (known[1] is not CampaignState.COMPLETED and status_seq >= known[0]):
            self._known[campaign_id] = (status_seq, state)
