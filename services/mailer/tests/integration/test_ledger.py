"""The ledger (through the mailer's unit of work and the handlers' steps that write it),
the consent cache and the campaign states on the real PostgreSQL."""

import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from contracts.enums import DeliveryStatus
from contracts.events import ContactChanged, Recipient, SendDue
from contracts.steps import EmailContent
from mailer.adapters.postgres import CampaignStateStore, ConsentCache, unit_of_work
from mailer.domain import CampaignState, Outcome
from mailer.handlers import answer_again, record_outcomes
from servicekit.outbox import unbundle

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(service_pool):
    return await service_pool("mailer", "mailer")


def send_due(attempt: int = 1) -> SendDue:
    return SendDue(send_id=uuid4(), campaign_id=uuid4(), run_id=uuid4(), step_index=0, attempt=attempt,
                   recipient=Recipient(contact_id=uuid4(), email="a@example.com"),
                   content=EmailContent(subject="s", text="t"), due_at=datetime.now(UTC))


class Ledger:
    """The ledger's claim, the handlers' record and answer, and the count, each in a
    transaction of its own as the mailer runs them."""

    def __init__(self, pool) -> None:
        self.uow = unit_of_work(pool)

    async def claim(self, sends):
        async with self.uow() as tx:
            return await tx.ledger.claim(sends)

    async def record(self, outcomes, released=()):
        await record_outcomes(self.uow, outcomes, list(released))

    async def answer_again(self, sends):
        return await answer_again(self.uow, sends)

    async def resent_after_crash(self):
        async with self.uow() as tx:
            return await tx.ledger.resent_after_crash()


async def answers(pool, send: SendDue) -> list[tuple[str, int, str | None]]:
    rows = await pool.fetch("SELECT value, messages FROM outbox WHERE topic = 'email.status' ORDER BY id")
    found = [json.loads(value) for row in rows  # a chunk's answers are one row, a bundle
             for value in ([row["value"]] if row["messages"] is None else [v for _, v in unbundle(row["messages"])])]
    return [(a["status"], a["attempt"], a["retry_at"]) for a in found if a["send_id"] == str(send.send_id)]


async def test_a_send_that_comes_round_again_is_answered_again_not_sent_again(pool):
    ledger = Ledger(pool)
    sent, deferred = send_due(), send_due()
    assert set(await ledger.claim([sent, deferred])) == {sent.send_id, deferred.send_id}
    retry_at = datetime.now(UTC) + timedelta(minutes=5)
    await ledger.record([(sent, Outcome(DeliveryStatus.SENT, 250)),
                         (deferred, Outcome(DeliveryStatus.DEFERRED, 451, "later", retry_at))])
    assert await ledger.claim([sent, deferred]) == {}, "neither may be tried again at this attempt"
    assert await ledger.answer_again([sent, deferred]) == 2
    assert await answers(pool, sent) == [("sent", 1, None)] * 2
    first, again = await answers(pool, deferred)
    assert first == again and again[:2] == ("deferred", 1), "the same answer, with its retry time"
    assert datetime.fromisoformat(again[2]) == retry_at


async def test_a_held_send_is_tried_again_at_the_same_attempt(pool):
    ledger, send = Ledger(pool), send_due()
    await ledger.claim([send])
    await ledger.record([(send, Outcome(DeliveryStatus.HELD))])
    assert send.send_id in await ledger.claim([send]), "resumed: the same attempt goes"
    await ledger.record([(send, Outcome(DeliveryStatus.CANCELLED))])
    assert await ledger.claim([send]) == {}, "cancelled is final"


async def test_an_older_consent_change_never_replaces_a_newer_one(pool):
    cache, contact = ConsentCache(pool), uuid4()
    await cache.remember([ContactChanged(contact_id=contact, marketing_opt_in=False, change_seq=5),
                          ContactChanged(contact_id=uuid4(), marketing_opt_in=True, change_seq=0)])
    await cache.remember([ContactChanged(contact_id=contact, marketing_opt_in=True, change_seq=3)])
    assert (await cache.of([contact]))[contact].allows_marketing is False
    await cache.remember([ContactChanged(contact_id=contact, deleted=True)])
    await cache.remember([ContactChanged(contact_id=contact, marketing_opt_in=True, change_seq=9)])
    assert (await cache.of([contact]))[contact].allows_marketing is False, "a delete is final"


async def test_campaign_states_keep_the_newest_and_every_instance_reads_them(pool):
    store, campaign = CampaignStateStore(pool), uuid4()
    assert await store.follow(campaign, CampaignState.PAUSED, 3)
    assert not await store.follow(campaign, CampaignState.ACTIVE, 2, unversioned_wins=False), "the late activation"
    changed, since = await store.changed_since(None)
    assert (campaign, CampaignState.PAUSED, 3) in changed
    assert await store.follow(campaign, CampaignState.COMPLETED, 5)
    changed, _ = await store.changed_since(since)
    assert (campaign, CampaignState.COMPLETED, 5) in changed
    assert not await store.follow(campaign, CampaignState.ACTIVE, None), "completed is final"


async def test_a_released_claim_is_as_before_neither_refused_nor_counted_as_resent(pool):
    ledger = Ledger(pool)
    new, deferred, held, crashed = send_due(), send_due(), send_due(), send_due()
    await ledger.claim([deferred, held, crashed])
    await ledger.record([(deferred, Outcome(DeliveryStatus.DEFERRED, 451, "later", datetime.now(UTC))),
                         (held, Outcome(DeliveryStatus.HELD))])  # `crashed` stays `sending`
    retried_deferral = deferred.model_copy(update={"attempt": 2})
    claims = await ledger.claim([new, retried_deferral, held, crashed])
    assert set(claims) == {new.send_id, deferred.send_id, held.send_id, crashed.send_id}
    assert claims[crashed.send_id].resent_after_crash and await ledger.resent_after_crash() == 1

    # The SMTP server unusable: every claim released, nothing recorded.
    await ledger.record([], [(send, claims[send.send_id]) for send in (new, retried_deferral, held, crashed)])
    rows = {row["send_id"]: (row["status"], row["attempt"])
            for row in await pool.fetch("SELECT send_id, status, attempt FROM ledger")}
    assert new.send_id not in rows, "a new row is gone"
    assert rows[deferred.send_id] == ("deferred", 1) and rows[held.send_id] == ("held", 1)
    assert rows[crashed.send_id] == ("sending", 1), "a crash leftover stays one"

    again = await ledger.claim([new, retried_deferral, held, crashed])
    assert set(again) == set(claims), "claimed again, none refused"
    assert not any(claim.resent_after_crash for claim in again.values()), "the crash leftover is counted once"
    assert await ledger.resent_after_crash() == 1
    assert await answers(pool, new) == [], "a released send is not answered"


async def test_every_send_a_crash_left_sending_is_counted_once_when_claimed_again(pool):
    ledger, chunk = Ledger(pool), [send_due() for _ in range(5)]
    await ledger.claim(chunk)  # ... and the mailer dies before the record
    claims = await ledger.claim(list(reversed(chunk)))
    assert all(claim.resent_after_crash for claim in claims.values()), "the first in send_id order too"
    assert await ledger.resent_after_crash() == 5
    assert not any(claim.resent_after_crash for claim in (await ledger.claim(chunk)).values())
    assert await ledger.resent_after_crash() == 5
