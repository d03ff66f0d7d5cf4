"""Events the tests and benchmarks publish, with defaults that make them valid."""

from datetime import UTC, datetime
from uuid import UUID, uuid4

from contracts.events import CampaignActivated, Recipient, SegmentEvaluated
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


def evaluated(run: CampaignActivated, batches: int, size: int) -> list[SegmentEvaluated]:
    """The run's segment.evaluated batches: `batches` of `size` new recipients each."""
    return [
        SegmentEvaluated(
            run_id=run.run_id, campaign_id=run.campaign_id, batch_no=n, is_last=n == batches - 1,
            recipients=[Recipient(contact_id=uuid4(), email=f"r{n}-{i}@example.com") for i in range(size)],
            total_matched=batches * size if n == batches - 1 else None,
        )
        for n in range(batches)
    ]
