"""When to send: a segment's best hour, learned from its contacts' past opens and clicks
by hour of the week in each contact's local time. Pure: the counts come in, the answer
goes out.

Empirical Bayes, in three levels. The global profile g (every contact's engagement by
hour, with one pseudo-event per hour) is the prior of the segment's profile s, itself
the prior of each contact's profile p_c:

    s[h]   = (n_seg[h] + K_SEGMENT * g[h]) / (N_seg + K_SEGMENT)
    p_c[h] = (n_c[h] + K_CONTACT * s[h]) / (N_c + K_CONTACT)

so a contact with two opens leans mostly on the segment, one with fifty on themself. The
segment's expected engagement profile is the mean of p_c over its contacts (a contact
without history counts as s). The suggested time of day is the hour with the largest
share of that profile summed over the week; the best weekday, the day with the largest.
"""

import math
from dataclasses import dataclass
from datetime import UTC, datetime, time
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.steps import TimeOfDay
from segment_svc.contacts import known_zone

HOURS = 168
K_SEGMENT = 50.0
K_CONTACT = 10.0
MIN_EVENTS = 30
MIN_CONTACTS = 5
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def hours_from_utc(zone: str, now: datetime | None = None) -> int:
    """Whole hours `zone` is ahead of UTC (now, or at `now`): how the history of contacts
    without a timezone, counted in UTC, moves into the campaign's zone. A zone with half
    hours rounds down."""
    offset = (now or datetime.now(UTC)).astimezone(ZoneInfo(zone)).utcoffset()
    return math.floor(offset.total_seconds() / 3600)


@dataclass(frozen=True)
class Evidence:
    """A segment's engagement counts, as the repository sums them."""

    contacts: int  # in the segment
    with_history: int  # of them, with at least one counted open or click
    segment_events: list[int]  # n_seg[h]
    contact_shares: list[float]  # sum over contacts with history of n_c[h] / (N_c + K_CONTACT)
    contact_prior_weight: float  # sum over contacts with history of K_CONTACT / (N_c + K_CONTACT)
    global_events: list[int]  # every contact's n[h]


class SuggestionQuery(BaseModel):
    """What a suggestion is asked for: the segment, and the campaign's zone and time."""

    model_config = ConfigDict(extra="forbid")

    segment_id: UUID
    timezone: str = Field(default="UTC", description="the campaign's zone: recipients without one of their own")
    default_time_of_day: TimeOfDay = Field(default=time(9, 0), description="the campaign's start time, to compare with")

    _zone = field_validator("timezone")(known_zone)


class SendTimeSuggestion(BaseModel):
    start_time_of_day: str = Field(description="HH:MM in each recipient's local time")
    best_weekday: str | None
    send_in_recipient_timezone: bool = True
    expected_share: float = Field(description="share of the segment's expected engagement in the suggested hour (of 24)")
    default_share: float = Field(description="the same share at the campaign's default time")
    lift: float | None = Field(description="expected_share / default_share")
    contacts: int
    contacts_with_history: int
    events: int
    fallback: bool
    reason: str | None = None


def segment_profile(evidence: Evidence) -> list[float]:
    """s[h], the segment's shrunk engagement distribution over the 168 hours."""
    total_all = sum(evidence.global_events)
    prior = [(n + 1) / (total_all + HOURS) for n in evidence.global_events]
    total = sum(evidence.segment_events)
    return [(n + K_SEGMENT * g) / (total + K_SEGMENT) for n, g in zip(evidence.segment_events, prior, strict=True)]


def expected_profile(evidence: Evidence) -> list[float]:
    """The mean over the segment's contacts of p_c[h]."""
    s = segment_profile(evidence)
    without = evidence.contacts - evidence.with_history
    weight = evidence.contact_prior_weight + without
    return [(share + s_h * weight) / max(evidence.contacts, 1) for share, s_h in zip(evidence.contact_shares, s, strict=True)]


def by_hour_of_day(profile: list[float]) -> list[float]:
    return [sum(profile[day * 24 + hour] for day in range(7)) for hour in range(24)]


def best_hour(profile: list[float]) -> int:
    daily = by_hour_of_day(profile)
    return max(range(24), key=lambda hour: (daily[hour], -hour))


def contact_best_hour(counts: dict[int, int], segment: list[float]) -> int:
    """A contact's own best hour of day, their few events shrunk toward the segment."""
    total = sum(counts.values())
    profile = [(counts.get(h, 0) + K_CONTACT * s) / (total + K_CONTACT) for h, s in enumerate(segment)]
    return best_hour(profile)


def suggest(evidence: Evidence, default: time) -> SendTimeSuggestion:
    default_hour = default.hour
    events = sum(evidence.segment_events)
    enough = events >= MIN_EVENTS and evidence.with_history >= MIN_CONTACTS
    profile = expected_profile(evidence)
    daily = by_hour_of_day(profile)
    hour = best_hour(profile) if enough else default_hour
    weekly = [sum(profile[day * 24:(day + 1) * 24]) for day in range(7)]
    reason = None if enough else (
        f"too little history: {events} opens and clicks from {evidence.with_history} contacts"
        f" (at least {MIN_EVENTS} from {MIN_CONTACTS} are needed); the default time stands")
    return SendTimeSuggestion(
        start_time_of_day=f"{hour:02d}:00" if enough else default.strftime("%H:%M"), best_weekday=WEEKDAYS[weekly.index(max(weekly))] if enough else None,
        expected_share=round(daily[hour], 4), default_share=round(daily[default_hour], 4),
        lift=round(daily[hour] / daily[default_hour], 3) if daily[default_hour] else None,
        contacts=evidence.contacts, contacts_with_history=evidence.with_history, events=events,
        fallback=not enough, reason=reason,
    )
