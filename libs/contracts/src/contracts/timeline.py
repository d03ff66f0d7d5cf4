"""The step timeline: when each email of a flow goes out, for one recipient.

One pure function shared by the scheduler (which stores the due times) and
campaign-api (which previews them), so the two can never disagree.

Rules (docs/architecture.md, "Scheduling"):
- step 1 at start_date + start_time_of_day, local to `timezone`;
- each later step at the previous step's time plus the WAITs between them. Days are
  calendar days in local time (09:00 stays 09:00 across a DST change); hours, minutes and
  seconds are elapsed time;
- a local time that does not exist (spring forward) moves forward by the gap, and one that
  exists twice (fall back) is its first occurrence: zoneinfo's fold=0 does exactly this;
- a time before `not_before` (the activation instant) means `not_before`. Later steps keep
  their delays from the previous step as it really went out.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contracts.steps import SendEmailStep, WaitStep


@dataclass(frozen=True)
class PlannedSend:
    step_index: int
    due_at: datetime  # UTC

    def local(self, zone: str) -> datetime:
        return self.due_at.astimezone(zone_or_utc(zone))


def zone_or_utc(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def is_known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def plan_sends(
    steps: list[SendEmailStep | WaitStep],
    start_date: date,
    start_time_of_day: time,
    timezone: str,
    not_before: datetime,
    best_hour: int | None = None,
) -> list[PlannedSend]:
    """Each SEND_EMAIL step's time. With `best_hour`, step 1 moves to the first time that
    hour starts on the zone's clock, within the 24 hours after the scheduled start."""
    zone = zone_or_utc(timezone)
    wall = datetime.combine(start_date, start_time_of_day)  # naive local wall clock
    at = max(_to_utc(wall, zone), not_before.astimezone(UTC))
    if best_hour is not None:
        at = _next_hour(at, best_hour, zone)
    planned: list[PlannedSend] = []
    for index, step in enumerate(steps):
        if isinstance(step, SendEmailStep):
            planned.append(PlannedSend(index, at))
            continue
        wall = at.astimezone(zone).replace(tzinfo=None) + timedelta(days=step.config.days)
        at = _to_utc(wall, zone) + step.config.elapsed
    return planned


def _next_hour(at: datetime, hour: int, zone: ZoneInfo) -> datetime:
    local = at.astimezone(zone).replace(tzinfo=None)
    candidate = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if candidate < local:
        candidate += timedelta(days=1)
    return max(_to_utc(candidate, zone), at)


def recipient_timezone(campaign_timezone: str, recipient_zone: str | None, per_recipient: bool) -> str:
    """The zone a recipient's schedule is computed in: theirs when asked and known."""
    if per_recipient and recipient_zone and is_known_zone(recipient_zone):
        return recipient_zone
    return campaign_timezone
