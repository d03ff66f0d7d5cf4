"""Each handler of segment-svc on in-memory fakes (fakes.py), bound by name as the
service binds it."""

import json
from datetime import UTC, datetime, time
from uuid import uuid4

import pytest

from contracts.enums import EngagementKind
from contracts.events import ContactChanged, ContactUpserted, EmailEngagement
from segment_svc import handlers
from segment_svc.bootstrap import SERVICE, adapters
from segment_svc.contacts import ContactDraft, ContactNotFound, ContactPatch, ContactTooLarge, EmailTaken
from segment_svc.handlers import NOBODY
from segment_svc.imports import ImportReport, ReportJson
from segment_svc.segments import SegmentDraft, SegmentNotFound
from segment_svc.send_time import HOURS, Evidence, SuggestionQuery
from servicekit.kafka import Rejected
from servicekit.wiring import bind, check
from tests.support.events import activation

from .fakes import dependencies

PRO = {"operator": "AND", "conditions": [{"field": "attributes.plan", "op": "eq", "value": "pro"}]}


@pytest.fixture
def wired():
    return dependencies(evaluation_batch_size=2, import_batch_size=2)


async def run(handler, event, wired):
    return await bind(handler, wired)(event)


async def contacts_of(wired, count: int, **fields) -> list:
    return [await wired["audience"].add(ContactDraft(email=f"c{i}@example.com", marketing_opt_in=i % 2 == 0, **fields))
            for i in range(count)]


def emitted(wired) -> list:
    return wired["uow"].transaction.emitted


# evaluate_segment

async def test_a_segment_is_published_in_batches_the_last_with_the_counts_and_the_run_recorded(wired):
    contacts = await contacts_of(wired, 5)
    segment = await wired["segments"].add(SegmentDraft(name="pro", criteria=PRO))
    event = activation(segment.id)
    await run(handlers.evaluate_segment, event, wired)

    batches = wired["publisher"].batches()
    assert [(b.batch_no, b.is_last, len(b.recipients)) for b in batches] == [(0, False, 2), (1, False, 2), (2, True, 1)]
    assert (batches[-1].total_matched, batches[-1].opted_in_matched) == (5, 3)
    assert [r.contact_id for b in batches for r in b.recipients] == sorted(c.id for c in contacts)
    assert all(b.run_id == event.run_id and b.campaign_id == event.campaign_id for b in batches)
    assert wired["evaluations"].asked == [(segment.criteria, event.activated_at)], "judged as of the activation"
    assert wired["tables"].evaluations[event.run_id] == (5, 3)


async def test_a_redelivered_activation_publishes_nothing(wired):
    await contacts_of(wired, 3)
    event = activation((await wired["segments"].add(SegmentDraft(name="pro", criteria=PRO))).id)
    await run(handlers.evaluate_segment, event, wired)
    published = len(wired["publisher"].messages)
    await run(handlers.evaluate_segment, event, wired)
    assert len(wired["publisher"].messages) == published == 2


async def test_a_segment_deleted_since_reaches_nobody_and_the_run_completes(wired):
    await contacts_of(wired, 3)
    event = activation(uuid4())
    await run(handlers.evaluate_segment, event, wired)
    assert wired["evaluations"].asked[0][0] == NOBODY
    # The fake matches everyone whatever the criteria: what matters is that NOBODY was asked.
    assert wired["publisher"].batches()[-1].is_last


async def test_no_match_is_one_empty_last_batch(wired):
    event = activation((await wired["segments"].add(SegmentDraft(name="pro", criteria=PRO))).id)
    await run(handlers.evaluate_segment, event, wired)
    [batch] = wired["publisher"].batches()
    assert (batch.batch_no, batch.is_last, batch.recipients, batch.total_matched) == (0, True, [], 0)


async def test_with_optimize_send_time_each_recipient_carries_its_own_hour_or_the_segments(wired):
    engaged, quiet = await contacts_of(wired, 2)
    monday = datetime(2026, 11, 2, tzinfo=UTC)
    for i in range(30):  # engaged opens at 20:00 UTC, on weekdays: enough to outweigh the segment
        await run(handlers.remember_engagement, EmailEngagement(
            campaign_id=uuid4(), run_id=uuid4(), send_id=uuid4(), contact_id=engaged.id, step_index=0,
            kind=EngagementKind.OPEN, occurred_at=monday.replace(day=2 + i % 5, hour=20)), wired)
    segment_hours = [0] * HOURS
    segment_hours[7] = 500  # the segment's mornings
    wired["history"].evidence_of = Evidence(2, 1, segment_hours, [0.0] * HOURS, 0.0, segment_hours)
    segment = await wired["segments"].add(SegmentDraft(name="pro", criteria=PRO))
    await run(handlers.evaluate_segment, activation(segment.id, optimize_send_time=True), wired)

    recipients = {r.contact_id: r for b in wired["publisher"].batches() for r in b.recipients}
    assert (recipients[engaged.id].send_hour, recipients[quiet.id].send_hour) == (20, 7)
    assert recipients[quiet.id].change_seq == 0, "the rest of the recipient's JSON stays"


# contacts: upsert_contact, remember_engagement and the resource's writes

async def test_a_contact_from_another_system_is_created_then_updated_by_email(wired):
    await run(handlers.upsert_contact, ContactUpserted(email="Nia@Example.com", first_name="Nia",
                                                        attributes={"a": 1}), wired)
    contact_id = await wired["contacts"].id_of("nia@example.com")
    await run(handlers.upsert_contact, ContactUpserted(email="nia@example.com", marketing_opt_in=True,
                                                        attributes={"b": 2}), wired)
    contact = await wired["contacts"].get(contact_id)
    assert (contact.first_name, contact.marketing_opt_in, contact.attributes) == ("Nia", True, {"a": 1, "b": 2})
    assert [(e.marketing_opt_in, e.change_seq) for e in emitted(wired)] == [(False, 0), (True, 1)]


@pytest.mark.parametrize("event", [ContactUpserted(email="big@example.com", attributes={"bio": "x" * 70_000}),
                                   ContactUpserted(email="tz@example.com", timezone="Mars/Olympus")])
async def test_a_bad_contact_from_another_system_is_rejected_to_its_dlq(wired, event):
    with pytest.raises(Rejected):
        await run(handlers.upsert_contact, event, wired)
    assert wired["tables"].contacts == {}


def engagement(contact_id, kind=EngagementKind.OPEN, machine=False) -> EmailEngagement:
    return EmailEngagement(campaign_id=uuid4(), run_id=uuid4(), send_id=uuid4(), contact_id=contact_id, step_index=0,
                           kind=kind, machine=machine, occurred_at=datetime(2026, 11, 2, 14, tzinfo=UTC))


async def test_an_unsubscribe_withdraws_consent_under_the_contacts_lock_and_tells_the_mailer(wired):
    [ann] = await contacts_of(wired, 1)
    await run(handlers.remember_engagement, engagement(ann.id, EngagementKind.UNSUBSCRIBE), wired)
    assert (await wired["contacts"].get(ann.id)).marketing_opt_in is False
    assert wired["uow"].transaction.contacts.locked == [ann.id]
    assert emitted(wired)[-1] == ContactChanged(contact_id=ann.id, email=ann.email, marketing_opt_in=False,
                                                change_seq=1, event_id=emitted(wired)[-1].event_id,
                                                occurred_at=emitted(wired)[-1].occurred_at)


async def test_an_unsubscribe_of_a_deleted_contact_changes_nothing(wired):
    await run(handlers.remember_engagement, engagement(uuid4(), EngagementKind.UNSUBSCRIBE), wired)
    assert emitted(wired) == []


async def test_a_persons_open_joins_their_history_once_and_a_machines_not_at_all(wired):
    [ann] = await contacts_of(wired, 1)
    opened = engagement(ann.id)
    await run(handlers.remember_engagement, opened, wired)
    await run(handlers.remember_engagement, opened, wired)  # redelivered
    await run(handlers.remember_engagement, engagement(ann.id, machine=True), wired)
    assert wired["tables"].hours == {ann.id: {14: 1}}, "Monday 14:00 UTC, once"


async def test_a_new_contact_tells_the_mailer_and_a_taken_email_writes_nothing(wired):
    [ann] = await contacts_of(wired, 1)
    assert [(e.contact_id, e.change_seq) for e in emitted(wired)] == [(ann.id, 0)]
    with pytest.raises(EmailTaken):
        await wired["audience"].add(ContactDraft(email=ann.email))
    assert len(emitted(wired)) == 1 and len(wired["tables"].contacts) == 1


async def test_a_change_merges_attributes_and_tells_the_mailer_only_of_address_or_consent(wired):
    [ann] = await contacts_of(wired, 1, attributes={"plan": "pro"})
    renamed = await wired["audience"].update(ann.id, ContactPatch(first_name="Ann", attributes={"age": 3}))
    assert (renamed.first_name, renamed.attributes) == ("Ann", {"plan": "pro", "age": 3})
    assert len(emitted(wired)) == 1, "a name is not the mailer's business"
    moved = await wired["audience"].update(ann.id, ContactPatch(email="ann@example.org"))
    assert (emitted(wired)[-1].email, emitted(wired)[-1].change_seq) == (moved.email, 2)


async def test_attributes_too_large_once_merged_are_refused_and_nothing_is_written(wired):
    [ann] = await contacts_of(wired, 1, attributes={"bio": "x" * 40_000})
    with pytest.raises(ContactTooLarge):
        await wired["audience"].update(ann.id, ContactPatch(attributes={"more": "y" * 30_000}))
    assert (await wired["contacts"].get(ann.id)).attributes == {"bio": "x" * 40_000}
    assert len(emitted(wired)) == 1


async def test_a_deleted_contact_is_a_tombstone_for_the_mailer(wired):
    [ann] = await contacts_of(wired, 1)
    await wired["audience"].delete(ann.id)
    assert emitted(wired)[-1].deleted and emitted(wired)[-1].contact_id == ann.id
    with pytest.raises(ContactNotFound):
        await wired["audience"].delete(ann.id)
    with pytest.raises(ContactNotFound):
        await wired["audience"].get(ann.id)


# the HTTP commands

async def test_a_preview_judges_the_segments_criteria(wired):
    await contacts_of(wired, 3)
    segment = await wired["segments"].add(SegmentDraft(name="pro", criteria=PRO))
    preview = await bind(handlers.preview_segment, wired)(segment.id)
    assert (preview.count, preview.opted_in, len(preview.sample)) == (3, 2, 3)
    assert wired["segments"].previewed == [segment.criteria]
    with pytest.raises(SegmentNotFound):
        await bind(handlers.preview_segment, wired)(uuid4())


async def test_a_suggestion_reads_the_segments_history_in_the_campaigns_zone(wired):
    segment = await wired["segments"].add(SegmentDraft(name="pro", criteria=PRO))
    query = SuggestionQuery(segment_id=segment.id, timezone="Asia/Tokyo", default_time_of_day=time(10, 30))
    answer = await bind(handlers.suggest_send_time, wired)(query)
    assert wired["history"].asked == [(segment.criteria, "Asia/Tokyo")]
    assert (answer.fallback, answer.start_time_of_day) == (True, "10:30"), "no history: the default time"
    with pytest.raises(SegmentNotFound):
        await bind(handlers.suggest_send_time, wired)(SuggestionQuery(segment_id=uuid4()))


async def chunks(*parts: bytes):
    for part in parts:
        yield part


async def test_an_import_stores_its_rows_in_batches_commits_then_reports_every_rejection(wired):
    [kept] = await contacts_of(wired, 1)
    lines = [{"email": "a@example.com"}, {"email": "nope"}, {"email": kept.email, "first_name": "Kim"},
             {"email": "A@example.com", "last_name": "Ng"}, {"email": "b@example.com", "shoe_size": 1}]
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    upload = handlers.ContactUpload("ndjson", chunks(body[:10], body[10:]))
    async with bind(handlers.import_contacts, wired)(upload) as job:
        assert job.committed, "the report comes after the commit"
        pages = [page async for page in job.rejections()]
    assert [[row.contact.email for row in batch] for batch in job.batches] == [
        ["a@example.com", kept.email], ["a@example.com"]], "two rows a batch, never one email twice"
    assert (job.inserted, job.updated, job.rejected) == (1, 2, 2)
    assert [r.line for page in pages for r in page] == [2, 5]
    assert (await wired["contacts"].get(kept.id)).first_name == "Kim"


@pytest.mark.parametrize("pages", [[], [[]], [[(2, "not JSON")]], [[(1, 'é "quoted" \\ \n\t\u0001'), (3, "x")], [(9, "")]]])
def test_the_streamed_report_is_the_models_json(pages):
    from segment_svc.imports import Rejection

    report = ReportJson()
    body = ReportJson.head(4, 5, sum(map(len, pages)))
    body += b"".join(report.rejections([Rejection(line, reason) for line, reason in page]) for page in pages)
    body += ReportJson.END
    expected = ImportReport(inserted=4, updated=5, rejected=sum(map(len, pages)), rejections=[
        {"line": line, "reason": reason} for page in pages for line, reason in page])
    assert ImportReport.model_validate_json(body) == expected
    assert json.loads(body) == json.loads(expected.model_dump_json())


# the wiring

async def test_every_handler_route_and_health_check_finds_what_it_asks_for():
    from segment_svc.settings import Settings

    settings = Settings()
    async with adapters(settings, None, None) as made:
        check(SERVICE, {"settings": settings, "pool": None, "publisher": None, **made})
        assert set(made) <= set(dependencies()), "the fakes stand in for every adapter, by its name"
