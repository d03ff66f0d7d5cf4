from datetime import UTC, date, datetime, time
from uuid import uuid4
from zoneinfo import ZoneInfo

from contracts.events import Recipient
from contracts.steps import EmailContent, SendEmailStep, WaitConfig, WaitStep
from scheduler.domain import Planner, Run

EMAIL = SendEmailStep(type="SEND_EMAIL", config=EmailContent(subject="s", text="t"))


def run(per_recipient_zone: bool = False) -> Run:
    return Run(uuid4(), uuid4(), [EMAIL, WaitStep(type="WAIT", config=WaitConfig(days=1)), EMAIL], date(2026, 6, 1),
               time(9, 0), "UTC", per_recipient_zone, datetime(2026, 5, 1, tzinfo=UTC))


def local_times(planner: Planner, recipient: Recipient, zone: str) -> list[str]:
    return [s.due_at.astimezone(ZoneInfo(zone)).strftime("%d %H:%M") for s in planner.sends(recipient)]


def test_a_recipients_best_hour_is_on_their_own_clock_within_a_day_of_the_start():
    planner = Planner(run())
    tokyo = Recipient(contact_id=uuid4(), email="a@example.com", timezone="Asia/Tokyo", send_hour=20)
    # 09:00 UTC on the 1st is 18:00 in Tokyo: 20:00 comes two hours later; the second email a day on.
    assert local_times(planner, tokyo, "Asia/Tokyo") == ["01 20:00", "02 20:00"]
    nowhere = Recipient(contact_id=uuid4(), email="b@example.com", send_hour=8)  # no zone: UTC, as its history
    assert local_times(planner, nowhere, "UTC") == ["02 08:00", "03 08:00"]


def test_without_a_best_hour_the_campaigns_time_stands():
    planner = Planner(run())
    plain = Recipient(contact_id=uuid4(), email="c@example.com", timezone="Asia/Tokyo")
    assert local_times(planner, plain, "UTC") == ["01 09:00", "02 09:00"]
