"""A run evaluated again after a crash (segment-svc died after publishing some batches of
it, before recording the evaluation), with contacts changed in between: both attempts'
batches reach the scheduler's real handlers, and the run holds each recipient once, none
lost, and is announced with what it holds. The scheduler is another service; it is here
because the guarantee lies between the two."""

import asyncio

import pytest

from contracts import topics
from contracts.codec import Message, decode
from contracts.events import CampaignScheduled, SegmentEvaluated
from scheduler.adapters.postgres import unit_of_work
from scheduler.handlers import record_activation, record_recipients
from segment_svc import handlers
from segment_svc.contacts import ContactDraft, ContactPatch
from segment_svc.segments import SegmentDraft
from servicekit.uow import UnitOfWork
from tests.support.events import activation

from .service import dependencies, handle

pytestmark = pytest.mark.integration


class Crash(ConnectionError):
    pass


class RecordingPublisher:
    """What segment-svc publishes, kept in order; `crash_after` sends, it fails (the process dies)."""

    def __init__(self, crash_after: int | None = None) -> None:
        self.messages: list[Message] = []
        self._crash_after = crash_after

    async def send(self, message: Message) -> asyncio.Future:
        if self._crash_after is not None and len(self.messages) == self._crash_after:
            raise Crash("segment-svc died here")
        self.messages.append(message)
        delivered = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered

    def batches(self) -> list[SegmentEvaluated]:
        return [decode(topics.SEGMENT_EVALUATED, m.key, m.value) for m in self.messages]


@pytest.fixture
async def segment_pool(service_pool):
    return await service_pool("segment", "segment_svc")


@pytest.fixture
async def store(service_pool):
    return unit_of_work(await service_pool("scheduler", "scheduler"))


class Scenario:
    """`count` contacts of a plan of their own, a segment of them, and a run of one email."""

    def __init__(self, pool, store: UnitOfWork) -> None:
        self.pool, self.store = pool, store

    async def prepare(self, count: int, others: int = 0) -> list:
        self.wired = await dependencies(self.pool, evaluation_batch_size=2)
        self.contacts, self.segments = self.wired["audience"], self.wired["segments"]
        ids = [(await self.contacts.add(ContactDraft(email=f"m{i}@example.com", attributes={"plan": "pro"}))).id
               for i in range(count)]
        self.others = [(await self.contacts.add(ContactDraft(email=f"o{i}@example.com", attributes={"plan": "free"}))).id
                       for i in range(others)]
        segment = await self.segments.add(SegmentDraft(name="pro", criteria={
            "operator": "AND", "conditions": [{"field": "attributes.plan", "op": "eq", "value": "pro"}]}))
        self.run = activation(segment.id)
        return sorted(ids)  # the order the evaluation walks them in

    async def evaluate(self, publisher: RecordingPublisher) -> None:
        await handle(handlers.evaluate_segment, self.run, {**self.wired, "publisher": publisher})

    async def crash_after(self, batches: int) -> RecordingPublisher:
        first = RecordingPublisher(crash_after=batches)
        with pytest.raises(Crash):
            await self.evaluate(first)
        return first

    async def schedule(self, batches: list[SegmentEvaluated]) -> None:
        await record_activation(self.run, self.store)
        for batch in batches:
            await record_recipients(batch, self.store)

    async def recipients(self) -> list:
        return [row["contact_id"] for row in await self.store.pool.fetch(
            "SELECT contact_id FROM run_recipients WHERE run_id = $1", self.run.run_id)]

    async def announcements(self) -> list[CampaignScheduled]:
        rows = await self.store.pool.fetch(
            "SELECT key, value FROM outbox WHERE topic = 'campaign.scheduled' ORDER BY id")
        events = [decode(topics.CAMPAIGN_SCHEDULED, row["key"], row["value"]) for row in rows]
        return [event for event in events if event.run_id == self.run.run_id]


async def test_recipients_shifted_by_changes_between_two_evaluations_are_not_lost(segment_pool, store):
    scenario = Scenario(segment_pool, store)
    members = await scenario.prepare(10, others=1)
    first = await scenario.crash_after(3)  # batches 0-2 (six contacts) published, then the crash
    assert [len(batch.recipients) for batch in first.batches()] == [2, 2, 2]
    # Meanwhile two contacts of batch 0 are deleted and one more joins: the rest move one
    # batch to the left or right of where the first attempt had them.
    for contact_id in members[:2]:
        await scenario.contacts.delete(contact_id)
    await scenario.contacts.update(scenario.others[0], ContactPatch(attributes={"plan": "pro"}))
    second = RecordingPublisher()
    await scenario.evaluate(second)

    await scenario.schedule(first.batches() + second.batches())
    held = await scenario.recipients()
    assert len(held) == len(set(held)), "each recipient once"
    matched_again = {r.contact_id for batch in second.batches() for r in batch.recipients}
    assert matched_again <= set(held), f"lost: {matched_again - set(held)}"
    assert set(held) == matched_again | {r.contact_id for batch in first.batches() for r in batch.recipients}
    [announced] = await scenario.announcements()
    assert (announced.recipients, announced.sends) == (len(held), len(held))


async def test_a_shorter_second_evaluation_still_completes_the_run(segment_pool, store):
    scenario = Scenario(segment_pool, store)
    members = await scenario.prepare(10)
    first = await scenario.crash_after(4)  # batches 0-3 published; batch 4 would have been the last
    for contact_id in members[:2]:
        await scenario.contacts.delete(contact_id)
    second = RecordingPublisher()
    await scenario.evaluate(second)
    assert [(b.batch_no, b.is_last) for b in second.batches()] == [(0, False), (1, False), (2, False), (3, True)]

    await scenario.schedule(first.batches() + second.batches())
    held = await scenario.recipients()
    assert set(held) == set(members), "the first attempt's recipients, and the second's"
    announcements = await scenario.announcements()
    assert [(a.recipients, a.sends) for a in announcements] == [(10, 10)], "the run is announced, once"


async def test_the_same_contacts_evaluated_again_give_the_same_batches(segment_pool, store):
    scenario = Scenario(segment_pool, store)
    await scenario.prepare(7)
    first = await scenario.crash_after(2)
    second = RecordingPublisher()
    await scenario.evaluate(second)
    shape = [[r.contact_id for r in batch.recipients] for batch in second.batches()]
    assert [[r.contact_id for r in batch.recipients] for batch in first.batches()] == shape[:2]
    await scenario.schedule(first.batches() + second.batches())
    assert len(await scenario.recipients()) == 7
    assert [(a.recipients, a.sends) for a in await scenario.announcements()] == [(7, 7)]
