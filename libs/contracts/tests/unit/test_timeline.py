from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from contracts.steps import EmailContent, SendEmailStep, WaitConfig, WaitStep
from contracts.timeline import plan_sends, recipient_timezone

EMAIL = SendEmailStep(type="SEND_EMAIL", config=EmailContent(subject="s", text="t"))
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def wait(**delay) -> WaitStep:
    return WaitStep(type="WAIT", config=WaitConfig(**delay))


def local(planned, zone):
    return [p.due_at.astimezone(ZoneInfo(zone)).replace(tzinfo=None) for p in planned]


def test_send_wait_three_days_send_goes_on_day_0_and_day_3_at_the_same_local_time():
    planned = plan_sends([EMAIL, wait(days=3), EMAIL], date(2026, 6, 1), time(9, 30), "Europe/Paris", LONG_AGO)
    assert [p.step_index for p in planned] == [0, 2]
    assert local(planned, "Europe/Paris") == [datetime(2026, 6, 1, 9, 30), datetime(2026, 6, 4, 9, 30)]
    assert planned[0].due_at == datetime(2026, 6, 1, 7, 30, tzinfo=UTC)


def test_a_local_time_that_does_not_exist_moves_forward_by_the_gap():
    planned = plan_sends([EMAIL], date(2026, 3, 8), time(2, 30), "America/New_York", LONG_AGO)
    assert local(planned, "America/New_York") == [datetime(2026, 3, 8, 3, 30)]


def test_a_local_time_that_exists_twice_is_its_first_occurrence():
    planned = plan_sends([EMAIL], date(2026, 11, 1), time(1, 30), "America/New_York", LONG_AGO)
    assert planned[0].due_at == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT, not EST


def test_hours_minutes_and_seconds_are_elapsed_time():
    planned = plan_sends([EMAIL, wait(hours=1, minutes=2, seconds=3), EMAIL], date(2026, 3, 29), time(1, 30),
                         "Europe/Paris", LONG_AGO)
    assert planned[1].due_at - planned[0].due_at == timedelta(hours=1, minutes=2, seconds=3)


def test_a_start_already_past_means_now_and_later_steps_keep_their_delays():
    now = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
    planned = plan_sends([EMAIL, wait(seconds=5), EMAIL], date(2026, 6, 1), time(9), "UTC", now)
    assert [p.due_at for p in planned] == [now, now + timedelta(seconds=5)]


def test_recipients_on_both_sides_of_the_date_line_get_their_own_nine_oclock():
    steps = [EMAIL]
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):  # UTC+14 and UTC-11
        planned = plan_sends(steps, date(2026, 6, 1), time(9), recipient_timezone("UTC", zone, True), LONG_AGO)
        assert local(planned, zone) == [datetime(2026, 6, 1, 9)]
    kiritimati = plan_sends(steps, date(2026, 6, 1), time(9), "Pacific/Kiritimati", LONG_AGO)[0].due_at
    pago_pago = plan_sends(steps, date(2026, 6, 1), time(9), "Pacific/Pago_Pago", LONG_AGO)[0].due_at
    assert pago_pago - kiritimati == timedelta(hours=25)


def test_an_unknown_or_missing_recipient_zone_falls_back_to_the_campaigns():
    assert recipient_timezone("Europe/Paris", "Mars/Olympus", True) == "Europe/Paris"
    assert recipient_timezone("Europe/Paris", None, True) == "Europe/Paris"
    assert recipient_timezone("Europe/Paris", "Asia/Tokyo", False) == "Europe/Paris"
    assert recipient_timezone("Europe/Paris", "Asia/Tokyo", True) == "Asia/Tokyo"


@pytest.mark.parametrize("zone, day_before_change, hours_between", [
    ("Europe/Paris", date(2026, 3, 28), 23),  # spring forward on 2026-03-29
    ("Europe/Paris", date(2026, 10, 24), 25),  # fall back on 2026-10-25
    ("America/New_York", date(2026, 3, 7), 23),  # spring forward on 2026-03-08
    ("America/New_York", date(2026, 10, 31), 25),  # fall back on 2026-11-01
])
def test_a_day_wait_keeps_the_local_time_across_a_dst_change(zone, day_before_change, hours_between):
    planned = plan_sends([EMAIL, wait(days=1), EMAIL], day_before_change, time(9), zone, LONG_AGO)
    next_day = day_before_change + timedelta(days=1)
    assert local(planned, zone) == [datetime.combine(day_before_change, time(9)), datetime.combine(next_day, time(9))]
    assert planned[1].due_at - planned[0].due_at == timedelta(hours=hours_between)


@pytest.mark.parametrize(("start", "best_hour", "expected"), [
    ("2026-03-10T09:00", 14, "2026-03-10T14:00"),  # later the same day
    ("2026-03-10T09:00", 7, "2026-03-11T07:00"),  # passed today: tomorrow, within 24 hours
    ("2026-03-10T09:00", 9, "2026-03-10T09:00"),
    ("2026-03-28T09:00", 2, "2026-03-29T03:00"),  # 02:00 does not exist that night in Paris
])
def test_a_best_hour_moves_step_one_to_its_next_start_and_the_rest_follow(start, best_hour, expected):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from contracts.steps import EmailContent, SendEmailStep, WaitConfig, WaitStep
    from contracts.timeline import plan_sends

    paris = ZoneInfo("Europe/Paris")
    begin = datetime.fromisoformat(start)
    email = SendEmailStep(type="SEND_EMAIL", config=EmailContent(subject="s", text="t"))
    plan = plan_sends([email, WaitStep(type="WAIT", config=WaitConfig(hours=2)), email], begin.date(), begin.time(),
                      "Europe/Paris", datetime(2026, 1, 1, tzinfo=paris), best_hour)
    assert plan[0].due_at.astimezone(paris).replace(tzinfo=None) == datetime.fromisoformat(expected)
    assert (plan[1].due_at - plan[0].due_at).total_seconds() == 7200
