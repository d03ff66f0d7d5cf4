"""Properties of the step timeline, over zones with DST changes and on both sides of the
date line, any date and time of day, any steps."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.steps import EmailContent, SendEmailStep, WaitConfig, WaitStep
from contracts.timeline import plan_sends

EMAIL = SendEmailStep(type="SEND_EMAIL", config=EmailContent(subject="s", text="t"))
ZONES = ["UTC", "Europe/Paris", "Europe/London", "America/New_York", "America/Santiago", "Australia/Sydney",
         "Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kolkata", "Pacific/Chatham"]
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)

zones = st.sampled_from(ZONES)
dates = st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31))
times = st.times().map(lambda t: t.replace(microsecond=0))
waits = (
    st.tuples(st.integers(0, 30), st.integers(0, 48), st.integers(0, 59), st.integers(0, 59))
    .filter(any)
    .map(lambda t: WaitStep(type="WAIT", config=WaitConfig(days=t[0], hours=t[1], minutes=t[2], seconds=t[3])))
)
flows = st.lists(st.one_of(st.just(EMAIL), waits), min_size=1, max_size=8)


def exists(wall: datetime, zone: ZoneInfo) -> bool:
    """A wall-clock time that the zone really shows (not skipped by a DST gap)."""
    return wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall


@settings(max_examples=150, deadline=None)
@given(zones, dates, times, st.integers(1, 60))
def test_a_day_wait_keeps_the_local_time_whenever_it_exists(zone_name, start, at, days):
    zone = ZoneInfo(zone_name)
    first, second = plan_sends([EMAIL, WaitStep(type="WAIT", config=WaitConfig(days=days)), EMAIL],
                               start, at, zone_name, LONG_AGO)
    first_wall = first.due_at.astimezone(zone).replace(tzinfo=None)
    target = first_wall + timedelta(days=days)
    second_wall = second.due_at.astimezone(zone).replace(tzinfo=None)
    if exists(target, zone):
        assert second_wall == target
    else:  # skipped by a DST gap: moved forward, by less than the largest gap there is
        assert target < second_wall <= target + timedelta(hours=2)


@settings(max_examples=150, deadline=None)
@given(zones, dates, times, flows, st.datetimes(min_value=datetime(2019, 1, 1), max_value=datetime(2036, 1, 1)))
def test_sends_follow_the_flow_in_order_and_never_before_activation(zone_name, start, at, steps, activated):
    activated = activated.replace(tzinfo=UTC)
    planned = plan_sends(steps, start, at, zone_name, activated)
    assert [p.step_index for p in planned] == [i for i, s in enumerate(steps) if isinstance(s, SendEmailStep)]
    assert all(p.due_at >= activated for p in planned)
    assert all(a.due_at <= b.due_at for a, b in zip(planned, planned[1:], strict=False))


@settings(max_examples=100, deadline=None)
@given(zones, dates, times, st.integers(0, 48), st.integers(0, 59), st.integers(1, 59))
def test_hours_minutes_and_seconds_are_exactly_that_much_later(zone_name, start, at, hours, minutes, seconds):
    wait = WaitStep(type="WAIT", config=WaitConfig(hours=hours, minutes=minutes, seconds=seconds))
    first, second = plan_sends([EMAIL, wait, EMAIL], start, at, zone_name, LONG_AGO)
    assert second.due_at - first.due_at == timedelta(hours=hours, minutes=minutes, seconds=seconds)


@settings(max_examples=100, deadline=None)
@given(zones, dates, times)
def test_step_one_is_at_the_requested_local_time_when_it_exists(zone_name, start, at):
    zone = ZoneInfo(zone_name)
    [first] = plan_sends([EMAIL], start, at, zone_name, LONG_AGO)
    wall = datetime.combine(start, at)
    if exists(wall, zone):
        assert first.due_at.astimezone(zone).replace(tzinfo=None) == wall


