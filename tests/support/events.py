"""Events the tests and benchmarks publish, with defaults that make them valid."""

from datetime import UTC, datetime
from uuid import UUID, uuid4

from contracts.events import CampaignActivated
from contracts.steps import EmailContent, SendEmailStep

ONE_EMAIL = [SendEmailStep(type="SEND_EMAIL", config=EmailContent(subject="Hi", text="t"))]


def activation(segment_id: UUID | str, **fields) -> CampaignActivated:
    """A campaign.activated starting now, of one email unless `steps` says otherwise."""
    now = datetime.now(UTC)
    return CampaignActivated(**{
        "campaign_id": uuid4(), "run_id": uuid4(), "segment_id": segment_id, "steps": ONE_EMAIL,
        "start_date": now.date(), "start_time_of_day": now.time().replace(microsecond=0), "timezone": "UTC",
        "start_at": now, "activated_at": now, **fields,
    })
