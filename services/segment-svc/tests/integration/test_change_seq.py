"""Each contact's change sequence (migration 0007) on the real PostgreSQL and Kafka: 0 as
created, higher after every update, and the same number in the contact.changed of a write
and in the recipients an evaluation publishes afterwards, so that the mailer can take the
newer of the two consents it hears of."""

import pytest

from segment_svc.contacts import ContactDraft, ContactPatch

from .mailer_feed import evaluated, told
from .service import dependencies

pytestmark = pytest.mark.integration


async def change_seq_of(pool, contact_id) -> int:
    return await pool.fetchval("SELECT change_seq FROM contacts WHERE id = $1", contact_id)


async def test_recipients_carry_the_consent_and_change_seq_of_their_contact_when_evaluated(
        client, pool, publisher, kafka_bootstrap, topic_prefix):
    contacts = (await dependencies(pool))["audience"]
    ann = await contacts.add(ContactDraft(email="ann@example.com", marketing_opt_in=True))
    bob = await contacts.add(ContactDraft(email="bob@example.com"))
    created = {event.contact_id: event for event in await told(pool)}
    assert {(e.marketing_opt_in, e.change_seq) for e in created.values()} == {(True, 0), (False, 0)}

    first = await evaluated(pool, publisher, kafka_bootstrap, topic_prefix)
    assert (first[ann.id].marketing_opt_in, first[ann.id].change_seq) == (True, 0)
    assert (first[bob.id].marketing_opt_in, first[bob.id].change_seq) == (False, 0)

    await pool.execute("DELETE FROM outbox")
    await contacts.update(ann.id, ContactPatch(marketing_opt_in=False))  # as an unsubscribe does
    answer = await client.patch(f"/api/contacts/{bob.id}", json={"marketing_opt_in": True})
    assert answer.status == 200 and "change_seq" not in await answer.json()  # not the API's
    then = {event.contact_id: event for event in await told(pool)}
    second = await evaluated(pool, publisher, kafka_bootstrap, topic_prefix)

    for contact, consent in ((ann, False), (bob, True)):
        change, recipient = then[contact.id], second[contact.id]
        assert (change.marketing_opt_in, recipient.marketing_opt_in) == (consent, consent)
        assert change.change_seq == recipient.change_seq == await change_seq_of(pool, contact.id)
        assert recipient.change_seq > first[contact.id].change_seq


async def test_every_update_raises_the_change_seq_whichever_statement_makes_it(pool):
    contacts = (await dependencies(pool))["audience"]
    cid = (await contacts.add(ContactDraft(email="cid@example.com"))).id
    seen = [await change_seq_of(pool, cid)]
    await pool.execute("DELETE FROM outbox")

    await contacts.update(cid, ContactPatch(marketing_opt_in=True))
    seen.append(await change_seq_of(pool, cid))
    [change] = await told(pool)
    await contacts.update(cid, ContactPatch(first_name="Cid"))  # not the mailer's business: not told, still numbered
    seen.append(await change_seq_of(pool, cid))
    await pool.execute("""UPDATE contacts SET attributes = attributes || '{"plan": "pro"}' WHERE id = $1""", cid)
    seen.append(await change_seq_of(pool, cid))

    assert seen[0] == 0 and seen == sorted(set(seen)), seen
    assert change.change_seq == seen[1]
    assert len(await told(pool)) == 1
