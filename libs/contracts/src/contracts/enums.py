"""Enums shared by every service; their values are what travels on the wire."""

from enum import StrEnum


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"


class StepType(StrEnum):
    SEND_EMAIL = "SEND_EMAIL"
    WAIT = "WAIT"


class DeliveryStatus(StrEnum):
    SENT = "sent"
    FAILED = "failed"
    SKIPPED_NO_CONSENT = "skipped_no_consent"
    DEFERRED = "deferred"
    HELD = "held"  # its campaign was paused when its turn came: due again, same attempt, on resume
    CANCELLED = "cancelled"  # its campaign was completed before it went out

    @property
    def is_terminal(self) -> bool:
        """A terminal status ends the send; `deferred` and `held` come back through the scheduler."""
        return self not in (DeliveryStatus.DEFERRED, DeliveryStatus.HELD)


class EngagementKind(StrEnum):
    OPEN = "open"
    CLICK = "click"
    UNSUBSCRIBE = "unsubscribe"
