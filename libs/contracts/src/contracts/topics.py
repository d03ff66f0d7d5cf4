"""Every topic of the system, with the partition count and cleanup policy it is created with."""

from dataclasses import dataclass

CAMPAIGN_ACTIVATED = "campaign.activated"
CAMPAIGN_STATUS = "campaign.status"
CAMPAIGN_SCHEDULED = "campaign.scheduled"
SEGMENT_EVALUATED = "segment.evaluated"
SEND_DUE = "send.due"
EMAIL_STATUS = "email.status"
EMAIL_ENGAGEMENT = "email.engagement"
CONTACT_UPSERTED = "contact.upserted"
CONTACT_CHANGED = "contact.changed"
EMAIL_TEST = "email.test"

DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False


# send.due has the most partitions: it is the one that mailers share out between them.
_MAIN = [
    TopicSpec(CAMPAIGN_ACTIVATED, 3),
    TopicSpec(CAMPAIGN_STATUS, 3),
    TopicSpec(CAMPAIGN_SCHEDULED, 3),
    TopicSpec(SEGMENT_EVALUATED, 6),
    TopicSpec(SEND_DUE, 12),
    TopicSpec(EMAIL_STATUS, 6),
    TopicSpec(EMAIL_ENGAGEMENT, 3),
    TopicSpec(CONTACT_UPSERTED, 3),
    TopicSpec(CONTACT_CHANGED, 3, compacted=True),
    TopicSpec(EMAIL_TEST, 1),
]


def dlq_of(topic: str) -> str:
    return topic + DLQ_SUFFIX


ALL_TOPICS: tuple[TopicSpec, ...] = tuple(_MAIN) + tuple(
    TopicSpec(dlq_of(spec.name), 1) for spec in _MAIN
)
