"""What the scheduler decides, without the database: which sends a recipient gets."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from uuid import UUID

from pydantic import TypeAdapter

from contracts.events import CampaignActivated, Recipient, SendIds
from contracts.steps import SendEmailStep, Step
from contracts.timeline import plan_sends, recipient_timezone

_STEPS = TypeAdapter(list[Step])


@dataclass(frozen=True)
class Run:
    run_id: UUID
    campaign_id: UUID
    steps: list
    start_date: date
    start_time_of_day: time
    timezone: str
    send_in_recipient_timezone: bool
    activated_at: datetime

    @classmethod
    def from_event(cls, event: CampaignActivated) -> "Run":
        return cls(
            event.run_id, event.campaign_id, list(event.steps), event.start_date,
            event.start_time_of_day, event.timezone, event.send_in_recipient_timezone, event.activated_at,
        )

    @classmethod
    def from_row(cls, row) -> "Run":
        fields = dict(row)
        fields["steps"] = _STEPS.validate_python(fields["steps"])
        return cls(**{name: fields[name] for name in cls.__dataclass_fields__})

    def steps_json(self) -> list:
        return _STEPS.dump_python(self.steps, mode="json")

    @property
    def emails(self) -> int:
        return sum(1 for step in self.steps if isinstance(step, SendEmailStep))

    def email_step(self, index: int) -> SendEmailStep:
        return self.steps[index]


@dataclass(frozen=True)
class ScheduledSend:
    send_id: UUID
    run_id: UUID
    campaign_id: UUID
    contact_id: UUID
    step_index: int
    due_at: datetime


class Planner:
    """The sends of a run's recipients. The plan depends only on the timezone (and the
    recipient's best hour, with optimize_send_time), so it is computed once per pair,
    however many recipients share it."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self._plans: dict[tuple[str, int | None], list] = {}
        self._send_id = SendIds(run.run_id)

    def _plan(self, zone: str, best_hour: int | None) -> list:
        plan = self._plans.get((zone, best_hour))
        if plan is None:
            run = self._run
            plan = self._plans[(zone, best_hour)] = plan_sends(
                run.steps, run.start_date, run.start_time_of_day, zone, run.activated_at, best_hour
            )
        return plan

    def sends(self, recipient: Recipient) -> list[ScheduledSend]:
        run = self._run
        if recipient.send_hour is None:
            zone = recipient_timezone(run.timezone, recipient.timezone, run.send_in_recipient_timezone)
        else:  # optimize_send_time: the hour is on the recipient's own clock, as their history was
            zone = recipient_timezone("UTC", recipient.timezone, True)
        return [
            ScheduledSend(
                self._send_id(recipient.contact_id, planned.step_index),
                run.run_id, run.campaign_id, recipient.contact_id, planned.step_index, planned.due_at,
            )
            for planned in self._plan(zone, recipient.send_hour)
        ]

    def sends_of(self, recipients: list[Recipient]) -> list[ScheduledSend]:
        return [send for recipient in recipients for send in self.sends(recipient)]


def share_window(window: int, batch: int, runs: Mapping[UUID, tuple[int, int]]) -> dict[UUID, int]:
    """How many due sends each run may emit now, from each run's (in flight, due).

    At most `window` sends are in flight (emitted, not yet answered) and at most `batch`
    are emitted in one pass. The room is filled from the bottom: the run with the fewest
    in flight gets the next send, so a small campaign started during a large one takes
    its share at once instead of queueing behind it."""
    room = min(batch, window - sum(in_flight for in_flight, _ in runs.values()))
    quotas = dict.fromkeys(runs, 0)
    waiting = sorted(run for run, (_, due) in runs.items() if due > 0)
    level = {run: runs[run][0] for run in waiting}
    while room > 0 and waiting:
        lowest = min(level[run] for run in waiting)
        at_lowest = [run for run in waiting if level[run] == lowest]
        above = [level[run] for run in waiting if level[run] > lowest]
        step = max(1, min((min(above) - lowest) if above else room, room // len(at_lowest)))
        for run in at_lowest:
            add = min(step, room, runs[run][1] - quotas[run])
            quotas[run] += add
            level[run] += add
            room -= add
            if quotas[run] == runs[run][1]:
                waiting.remove(run)
            if room == 0:
                break
    return {run: quota for run, quota in quotas.items() if quota}
