"""Contact imports over HTTP into the real PostgreSQL: the report, the stored rows and
the contact.changed events written for the mailer."""

import asyncio
import json

import pytest

from contracts.events import ContactChanged
from segment_svc.adapters.postgres import _RECIPIENT
from segment_svc.contacts import ContactDraft
from tests.support.polling import eventually

from .mailer_feed import evaluated, told
from .service import dependencies

pytestmark = pytest.mark.integration


def ndjson(*rows) -> bytes:
    return b"".join((row if isinstance(row, bytes) else json.dumps(row).encode()) + b"\n" for row in rows)


async def stored(pool) -> dict[str, dict]:
    rows = await pool.fetch("SELECT * FROM contacts")
    return {row["email"]: dict(row) for row in rows}


async def recipients_are_current(pool) -> None:
    """What an evaluation reads of each contact (its recipient JSON, a generated column)
    says what the contact now holds, whichever way the import wrote it."""
    rows = await pool.fetch(
        f"SELECT {_RECIPIENT}, email, first_name, last_name, timezone, attributes, change_seq FROM contacts")
    for row in rows:
        assert json.loads(row["recipient"]) == {
            "contact_id": str(row["id"]), "email": row["email"], "first_name": row["first_name"],
            "last_name": row["last_name"], "timezone": row["timezone"], "attributes": row["attributes"],
            "marketing_opt_in": row["marketing_opt_in"], "change_seq": row["change_seq"]}


async def import_file(client, body: bytes, kind: str = "application/x-ndjson"):
    answer = await client.post("/api/contacts/import", data=body, headers={"Content-Type": kind})
    return answer.status, await answer.json(content_type=None)


async def test_an_import_reports_every_row_and_stores_the_good_ones(client, pool):
    contacts = (await dependencies(pool))["audience"]
    kept = await contacts.add(ContactDraft(email="kept@example.com", first_name="Kim", timezone="Europe/Paris",
                                           marketing_opt_in=True, attributes={"plan": "pro", "age": 40}))
    await contacts.add(ContactDraft(email="same@example.com", marketing_opt_in=True))
    await pool.execute("DELETE FROM outbox")

    status, report = await import_file(client, ndjson(
        {"email": "new@example.com", "first_name": "Nia", "marketing_opt_in": True, "attributes": {"age": 30}},
        {"email": "not-an-address"},
        {"email": "KEPT@example.com", "marketing_opt_in": False, "attributes": {"age": 41}},  # update
        b"{broken",
        {"email": "tz@example.com", "timezone": "Mars/Olympus"},
        {"email": "New@Example.com", "last_name": "Ng"},  # the same contact again, further down
        {"email": "same@example.com", "marketing_opt_in": True},  # consent unchanged
        {"email": "quiet@example.com"},
        {"email": "typed@example.com", "marketing_opt_in": "yes"},
    ))

    assert status == 200
    assert (report["inserted"], report["updated"], report["rejected"]) == (2, 3, 4)
    assert [(r["line"], r["reason"].split(":")[0]) for r in report["rejections"]] == [
        (2, "$.email"), (4, "not JSON"), (5, "$.timezone"), (9, "$.marketing_opt_in")]

    rows = await stored(pool)
    assert set(rows) == {"kept@example.com", "same@example.com", "new@example.com", "quiet@example.com"}
    kept_now = rows["kept@example.com"]
    assert kept_now["id"] == kept.id and kept_now["marketing_opt_in"] is False
    assert (kept_now["first_name"], kept_now["timezone"]) == ("Kim", "Europe/Paris")  # not in the row: kept
    assert kept_now["attributes"] == {"plan": "pro", "age": 41}  # merged key by key
    new = rows["new@example.com"]
    assert (new["first_name"], new["last_name"], new["marketing_opt_in"], new["attributes"]) == (
        "Nia", "Ng", True, {"age": 30})
    assert rows["quiet@example.com"]["marketing_opt_in"] is False
    await recipients_are_current(pool)

    events = {event.email: event for event in await told(pool)}
    assert set(events) == {"new@example.com", "quiet@example.com", "kept@example.com"}  # not `same`: unchanged
    assert events["kept@example.com"] == ContactChanged(
        event_id=events["kept@example.com"].event_id, occurred_at=events["kept@example.com"].occurred_at,
        contact_id=kept.id, email="kept@example.com", marketing_opt_in=False, change_seq=kept_now["change_seq"])
    assert events["new@example.com"].contact_id == new["id"] and events["new@example.com"].marketing_opt_in


async def test_a_csv_import_types_its_cells(client, pool):
    body = (
        b"email,first_name,marketing_opt_in,attributes.age,attributes.zip\r\n"
        b"ann@example.com,Ann,true,41,02134\r\n"
        b"bob@example.com,\"Bob, Jr\",false,,\r\n"
        b"eve@example.com,Eve,perhaps,,\r\n"
    )
    status, report = await import_file(client, body, "text/csv")
    assert status == 200 and (report["inserted"], report["rejected"]) == (2, 1)
    assert report["rejections"][0]["line"] == 4
    rows = await stored(pool)
    assert rows["ann@example.com"]["attributes"] == {"age": 41, "zip": "02134"}
    assert rows["bob@example.com"]["first_name"] == "Bob, Jr"


async def test_every_rejection_is_reported_however_many(client, pool):
    body = ndjson(*({"email": f"bad{i}"} for i in range(2500)), {"email": "good@example.com"})
    status, report = await import_file(client, body)
    assert status == 200 and (report["inserted"], report["rejected"]) == (1, 2500)
    assert [r["line"] for r in report["rejections"]] == list(range(1, 2501))


async def test_a_bad_header_or_media_type_stores_nothing(client, pool):
    status, problem = await import_file(client, b"email,shoe_size\na@example.com,42\n", "text/csv")
    assert status == 422 and problem["errors"][0]["path"] == "$.header[1]"
    status, problem = await import_file(client, b'{"email": "a@example.com"}', "application/json")
    assert status == 415
    assert await pool.fetchval("SELECT count(*) FROM contacts") == 0
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_an_upload_cut_short_stores_nothing(client, pool):
    rows = ndjson(*({"email": f"u{i}@example.com"} for i in range(20)))
    _, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"POST /api/contacts/import HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(rows) * 2, rows))  # half of what it announces
    await writer.drain()
    await eventually(lambda: _import_waiting(pool), "the import to wait for the rest of its body")
    writer.close()
    await eventually(lambda: _all_idle(pool), "the import's transaction to end")
    assert await pool.fetchval("SELECT count(*) FROM contacts") == 0


async def _import_waiting(pool) -> bool:
    return await pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'"
    ) > 0


async def _all_idle(pool) -> bool:
    """No other session of this database is inside a transaction (committing or not)."""
    return await pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND state <> 'idle'"
    ) == 0


async def test_a_file_that_meets_an_existing_contact_partway_keeps_the_batches_copied_before(client, pool):
    await (await dependencies(pool))["audience"].add(ContactDraft(email="old@example.com", first_name="Olga"))
    await pool.execute("DELETE FROM outbox")
    new = [{"email": f"n{i}@example.com", "marketing_opt_in": True} for i in range(7)]
    # Batches of 3: two go the fast way (COPY); the third meets old@ and takes the careful way.
    body = ndjson(*new[:6], {"email": "old@example.com", "last_name": "Ode"}, new[6])

    status, report = await import_file(client, body)

    assert status == 200 and (report["inserted"], report["updated"], report["rejected"]) == (7, 1, 0)
    rows = await stored(pool)
    assert set(rows) == {"old@example.com", *(row["email"] for row in new)}
    assert (rows["old@example.com"]["first_name"], rows["old@example.com"]["last_name"]) == ("Olga", "Ode")
    await recipients_are_current(pool)
    events = await told(pool)
    assert sorted(event.email for event in events) == sorted(row["email"] for row in new)  # old@: consent unchanged
    assert all(rows[event.email]["id"] == event.contact_id for event in events)


async def test_what_an_import_tells_the_mailer_carries_the_change_seq_an_evaluation_then_reads(
        client, pool, publisher, kafka_bootstrap, topic_prefix):
    old = await (await dependencies(pool))["audience"].add(ContactDraft(email="old@example.com", marketing_opt_in=True))
    await pool.execute("DELETE FROM outbox")
    # Batches of 3: the first is COPYed; the second meets old@ and is upserted from staging
    # (old@ updated, last@ inserted).
    copied = [{"email": f"n{i}@example.com", "marketing_opt_in": i % 2 == 0} for i in range(3)]
    status, report = await import_file(client, ndjson(
        *copied, {"email": "old@example.com", "marketing_opt_in": False}, {"email": "last@example.com"}))
    assert status == 200 and (report["inserted"], report["updated"]) == (4, 1), report

    events = {event.contact_id: event for event in await told(pool)}
    recipients = await evaluated(pool, publisher, kafka_bootstrap, topic_prefix)
    assert set(events) == set(recipients)
    for contact_id, recipient in recipients.items():
        change = events[contact_id]
        assert (change.email, change.marketing_opt_in, change.change_seq) == (
            recipient.email, recipient.marketing_opt_in, recipient.change_seq)
    assert recipients[old.id].marketing_opt_in is False and recipients[old.id].change_seq > 0  # it was 0
    assert {r.email for r in recipients.values() if r.change_seq == 0} == {
        *(row["email"] for row in copied), "last@example.com"}


async def test_a_contact_another_request_creates_during_the_import_is_reported_not_overwritten(client, pool):
    await (await dependencies(pool))["audience"].add(ContactDraft(email="old@example.com"))
    other = await pool.acquire()
    try:
        racing = other.transaction()
        await racing.start()
        await other.execute("INSERT INTO contacts (id, email, first_name) VALUES (gen_random_uuid(), $1, 'Theirs')",
                            "race@example.com")
        # old@ first, so that the batch leaves the fast way at once, then waits on race@.
        importing = asyncio.create_task(import_file(client, ndjson(
            {"email": "old@example.com", "first_name": "Ours"}, {"email": "race@example.com", "first_name": "Ours"})))
        await eventually(lambda: _waiting_for_a_lock(pool), "the import to wait for the other request's row")
        await racing.commit()
    finally:
        await pool.release(other)

    status, report = await importing
    assert status == 200 and (report["inserted"], report["updated"], report["rejected"]) == (0, 1, 1), report
    assert report["rejections"] == [{"line": 2, "reason": "created by another request during the import"}]
    rows = await stored(pool)
    assert (rows["old@example.com"]["first_name"], rows["race@example.com"]["first_name"]) == ("Ours", "Theirs")


async def _waiting_for_a_lock(pool) -> bool:
    return await pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    ) > 0
