import json
from datetime import UTC, date, datetime, time
from uuid import UUID, uuid4

import pytest
from asyncpg.pgproto.pgproto import UUID as PgUUID

from contracts.codec import CORRELATION_HEADER, UndecodableMessage, decode, encode
from contracts.enums import CampaignStatus, DeliveryStatus
from contracts.events import (
    CampaignActivated,
    CampaignScheduled,
    CampaignStatusChanged,
    ContactChanged,
    ContactUpserted,
    EmailStatus,
    Recipient,
    SegmentEvaluated,
    SendDue,
    send_id_for,
)
from contracts.steps import EmailContent, SendEmailStep, WaitConfig, WaitStep

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CONTENT = EmailContent(subject="Hi {{ first_name }}", text="Hello")
RECIPIENT = Recipient(contact_id=uuid4(), email="a@example.com", first_name="Ada", attributes={"plan": "pro"})


def examples():
    run, campaign = uuid4(), uuid4()
    yield CampaignActivated(
        campaign_id=campaign, run_id=run, segment_id=uuid4(),
        steps=[SendEmailStep(type="SEND_EMAIL", config=CONTENT), WaitStep(type="WAIT", config=WaitConfig(days=3))],
        start_date=date(2026, 3, 1), start_time_of_day=time(9), timezone="Europe/Paris",
        start_at=NOW, activated_at=NOW,
    )
    yield SegmentEvaluated(run_id=run, campaign_id=campaign, batch_no=0, recipients=[RECIPIENT], is_last=True,
                           total_matched=1, opted_in_matched=1)
    yield SendDue(send_id=uuid4(), campaign_id=campaign, run_id=run, step_index=0, recipient=RECIPIENT,
                  content=CONTENT, due_at=NOW)
    yield EmailStatus(send_id=uuid4(), campaign_id=campaign, run_id=run, step_index=0, contact_id=uuid4(),
                      status=DeliveryStatus.DEFERRED, attempt=1, smtp_code=451, smtp_message="later", retry_at=NOW)
    yield CampaignStatusChanged(campaign_id=campaign, status=CampaignStatus.PAUSED, previous=CampaignStatus.ACTIVE)
    yield CampaignScheduled(campaign_id=campaign, run_id=run, recipients=2, sends=4)
    yield ContactUpserted(email="b@example.com", marketing_opt_in=True)
    yield ContactChanged(contact_id=uuid4(), email="c@example.com", marketing_opt_in=True)


@pytest.mark.parametrize("event", list(examples()), ids=lambda e: e.topic)
def test_every_event_survives_a_round_trip(event):
    message = encode(event, correlation_id="corr-1")
    assert message.topic == event.topic
    assert message.key == event.key.encode()
    assert (CORRELATION_HEADER, b"corr-1") in message.headers
    assert decode(message.topic, message.key, message.value) == event


def test_a_deleted_contact_travels_as_a_tombstone():
    gone = ContactChanged(contact_id=uuid4(), deleted=True)
    message = encode(gone)
    assert message.value is None
    decoded = decode(message.topic, message.key, None)
    assert decoded.deleted and decoded.contact_id == gone.contact_id


def test_unknown_fields_are_refused_with_their_path():
    event = CampaignScheduled(campaign_id=uuid4(), run_id=uuid4(), recipients=1, sends=1)
    tampered = encode(event).value.replace(b'"sends":1', b'"sends":1,"surprise":true')
    with pytest.raises(UndecodableMessage, match="surprise"):
        decode(event.topic, None, tampered)


def test_garbage_bytes_are_undecodable():
    with pytest.raises(UndecodableMessage):
        decode("send.due", b"k", b"{not json")


def test_send_ids_are_deterministic_per_run_contact_and_step():
    run, contact = uuid4(), uuid4()
    assert send_id_for(run, contact, 0) == send_id_for(run, contact, 0)
    assert send_id_for(run, contact, 0) != send_id_for(run, contact, 2)


def test_a_template_that_does_not_parse_is_refused():
    with pytest.raises(ValueError, match="does not parse"):
        EmailContent(subject="Hi {{ first_name", text="x")


@pytest.mark.parametrize("ids", [UUID, PgUUID], ids=["uuid", "asyncpg-uuid"])
def test_the_fast_send_due_encoding_decodes_to_the_same_event(ids):
    from contracts.codec import send_due_message

    event = next(e for e in examples() if isinstance(e, SendDue))
    fast = send_due_message(  # the scheduler hands it ids as asyncpg reads them
        send_id=ids(str(event.send_id)), campaign_id=ids(str(event.campaign_id)), run_id=ids(str(event.run_id)),
        contact_id=ids(str(event.recipient.contact_id)), step_index=event.step_index, due_at=event.due_at,
        attempt=event.attempt, recipient_json=event.recipient.model_dump_json(),
        content_json=event.content.model_dump_json(), correlation_id="corr-1",
    )
    slow = encode(event, correlation_id="corr-1")
    decoded = decode(fast.topic, fast.key, fast.value)
    assert decoded.model_copy(update={"event_id": event.event_id, "occurred_at": event.occurred_at}) == event
    assert (fast.topic, fast.key, fast.headers) == (slow.topic, slow.key, slow.headers)


@pytest.mark.parametrize(("status", "code", "text", "retry_at"), [
    (DeliveryStatus.SENT, 250, "2.0.0 Ok: queued", None),
    (DeliveryStatus.DEFERRED, 451, 'busy "now" \u00e9', datetime(2026, 12, 2, 21, 0, 0, 123456, tzinfo=UTC)),
    (DeliveryStatus.SKIPPED_NO_CONSENT, None, None, None),
])
def test_the_fast_email_status_encoding_decodes_to_the_same_event(status, code, text, retry_at):
    from contracts.codec import email_status_message

    event = EmailStatus(send_id=uuid4(), campaign_id=uuid4(), run_id=uuid4(), step_index=2, contact_id=uuid4(),
                        status=status, attempt=3, smtp_code=code, smtp_message=text, retry_at=retry_at)
    fast = email_status_message(
        send_id=event.send_id, campaign_id=event.campaign_id, run_id=PgUUID(str(event.run_id)),
        step_index=event.step_index, contact_id=event.contact_id, status=status.value, attempt=event.attempt, smtp_code=code, smtp_message=text,
        retry_at=retry_at, correlation_id="corr-1",
    )
    slow = encode(event, correlation_id="corr-1")
    decoded = decode(fast.topic, fast.key, fast.value)
    assert decoded.model_copy(update={"event_id": event.event_id, "occurred_at": event.occurred_at}) == event
    assert json.loads(fast.value).keys() == json.loads(slow.value).keys()  # no field left to its default
    assert (fast.topic, fast.key, fast.headers) == (slow.topic, slow.key, slow.headers)


@pytest.mark.parametrize(("consent", "change_seq"), [(True, 0), (False, 41), (True, 2**63 - 1)])
def test_the_fast_contact_changed_encoding_decodes_to_the_same_event(consent, change_seq):
    from contracts.codec import contact_changed_values

    event = ContactChanged(contact_id=uuid4(), email='ann "a" \u00e9@example.com', marketing_opt_in=consent,
                           change_seq=change_seq)
    [(key, value)] = contact_changed_values([(event.contact_id, event.email, consent, change_seq)], event.occurred_at)
    slow = encode(event)
    assert decode(ContactChanged.topic, key, value).model_copy(update={"event_id": event.event_id}) == event
    # The same fields, none left to its default: a field the fast way forgot would decode
    # to the default and pass the line above.
    assert json.loads(value).keys() == json.loads(slow.value).keys()
    assert key == slow.key


@pytest.mark.parametrize("change_seq", [None, "7", 7.0])
def test_the_fast_contact_changed_encoding_refuses_a_change_seq_that_is_no_integer(change_seq):
    from contracts.codec import contact_changed_values

    assert contact_changed_values([(uuid4(), "ann@example.com", True, 7)], NOW)  # the shape is right
    with pytest.raises((TypeError, ValueError), match="format"):
        contact_changed_values([(uuid4(), "ann@example.com", True, change_seq)], NOW)


@pytest.mark.parametrize("last", [False, True])
def test_the_fast_segment_evaluated_encoding_decodes_to_the_same_event(last):
    from contracts.codec import segment_evaluated_message

    event = SegmentEvaluated(
        run_id=uuid4(), campaign_id=uuid4(), batch_no=3, is_last=last,
        total_matched=2 if last else None, opted_in_matched=1 if last else None,
        recipients=[Recipient(contact_id=uuid4(), email="a@example.com", first_name="Zoë", timezone="Europe/Paris",
                              attributes={"plan": "pro", "tags": ["a"], "n": 1.5}),
                    Recipient(contact_id=uuid4(), email="b@example.com")],
    )
    fast = segment_evaluated_message(
        run_id=event.run_id, campaign_id=event.campaign_id, batch_no=3, is_last=last,
        total_matched=event.total_matched, opted_in_matched=event.opted_in_matched, correlation_id="corr-1",
        recipients_json=[json.dumps(r.model_dump(mode="json"), indent=1) for r in event.recipients],
    )
    slow = encode(event, correlation_id="corr-1")
    decoded = decode(fast.topic, fast.key, fast.value)
    assert decoded.model_copy(update={"event_id": event.event_id, "occurred_at": event.occurred_at}) == event
    assert (fast.topic, fast.key, fast.headers) == (slow.topic, slow.key, slow.headers)


def test_event_ids_are_version_4_and_distinct():
    from contracts.events import new_event_id

    ids = {new_event_id() for _ in range(10_000)}
    assert len(ids) == 10_000 and all(i.version == 4 and i.variant == "specified in RFC 4122" for i in ids)


@pytest.mark.parametrize("millis", [None, 1_764_000_000_123])
def test_uuid_texts_are_distinct_uuids_of_their_version(millis):
    from uuid import UUID

    from contracts.events import uuid_texts

    ids = [UUID(text) for text in uuid_texts(10_000, millis)]
    assert len(set(ids)) == 10_000 and all(i.variant == "specified in RFC 4122" for i in ids)
    if millis is None:
        assert all(i.version == 4 for i in ids)
    else:  # RFC 9562: the milliseconds in the first 48 bits
        assert all(i.version == 7 and i.int >> 80 == millis for i in ids)


def test_send_ids_are_uuid5_of_run_contact_and_step():
    from uuid import uuid5

    from contracts.events import _SEND_NAMESPACE

    run, contact = uuid4(), uuid4()
    assert send_id_for(run, contact, 3) == uuid5(_SEND_NAMESPACE, f"{run}:{contact}:3")


def test_a_send_hour_added_by_hand_is_what_the_model_dumps():
    from contracts.codec import SEND_HOUR_BYTES, with_send_hour

    for hour in (0, 9, 23):
        by_hand = with_send_hour(RECIPIENT.model_dump_json(), hour)
        assert Recipient.model_validate_json(by_hand) == RECIPIENT.model_copy(update={"send_hour": hour})
        assert len(by_hand) - len(RECIPIENT.model_dump_json()) <= SEND_HOUR_BYTES
    with pytest.raises(ValueError, match="hour"):
        with_send_hour(RECIPIENT.model_dump_json(), 24)


def test_a_page_written_by_hand_is_what_the_page_model_dumps():
    from pydantic import create_model

    from contracts.codec import page_json

    page = create_model("RecipientPage", items=(list[Recipient], ...), next_cursor=(str | None, None))
    for cursor in (None, 'a"b'):
        by_hand = page_json([RECIPIENT.model_dump_json(), RECIPIENT.model_dump_json()], cursor)
        assert page.model_validate_json(by_hand) == page(items=[RECIPIENT, RECIPIENT], next_cursor=cursor)
        assert json.loads(by_hand)["next_cursor"] == cursor
