"""The one place where events become Kafka messages and messages become events."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import orjson
from pydantic import ValidationError

from contracts.events import (
    EVENT_TYPES,
    ContactChanged,
    EmailStatus,
    Event,
    SegmentEvaluated,
    SendDue,
    new_event_id,
    now_utc,
    uuid_texts,
)

CORRELATION_HEADER = "correlation_id"
EVENT_TYPE_HEADER = "event_type"

# What one message may weigh (key, value and headers) by default: under Kafka's default
# message.max.bytes (1,048,588: a record batch) and aiokafka's max_request_size
# (1,048,576), leaving room for the batch's and record's framing (82 bytes) and for the
# headers a dead letter adds to a message it copies (dlq.error, up to 4,000 bytes).
MESSAGE_BYTES = 1_000_000
# A contact's attributes as the JSON text they are stored and sent as (PostgreSQL's jsonb
# output: segment-svc refuses larger), and a whole recipient: the attributes and the rest
# of it (id, an email of 320 characters, two names of 200, a zone, consent, change
# sequence, send hour: under 4,100 bytes however escaped).
ATTRIBUTES_BYTES = 65_536
RECIPIENT_BYTES = ATTRIBUTES_BYTES + 5_000
# Everything of a send.due but its recipient and content, and of a segment.evaluated but
# its recipients (ids, times, counters, field names), with the key, the headers (a
# correlation id of up to 200 characters) and the record's framing.
ENVELOPE_BYTES = 2_000
# So any valid recipient with any valid email (steps.CONTENT_BYTES) fits one send.due, and
# a flow's emails (steps.FLOW_CONTENT_BYTES) one campaign.activated: tests/unit/test_sizes.py
# builds the largest of each.

_BY_TOPIC: dict[str, type[Event]] = {event_type.topic: event_type for event_type in EVENT_TYPES}


class UndecodableMessage(ValueError):
    """The bytes on a topic are not the event that topic carries."""


@dataclass(frozen=True)
class Message:
    topic: str
    key: bytes
    value: bytes | None
    headers: list[tuple[str, bytes]]


def encode(event: Event, correlation_id: str | None = None) -> Message:
    if isinstance(event, ContactChanged) and event.deleted:
        value = None  # tombstone: compaction forgets the contact
    else:
        value = event.model_dump_json().encode()
    return Message(event.topic, event.key.encode(), value, encode_headers(event.topic, correlation_id))


def encode_headers(topic: str, correlation_id: str | None) -> list[tuple[str, bytes]]:
    headers = [(EVENT_TYPE_HEADER, topic.encode())]
    if correlation_id:
        headers.append((CORRELATION_HEADER, correlation_id.encode()))
    return headers


def _text(value: object) -> str:
    """What orjson does not write itself: asyncpg's UUID (a subclass of uuid.UUID, which
    orjson refuses), as its text."""
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def send_due_message(
    *, send_id: UUID, campaign_id: UUID, run_id: UUID, contact_id: UUID, step_index: int, due_at: datetime,
    attempt: int, recipient_json: str, content_json: str, correlation_id: str | None = None,
) -> Message:
    """What `encode(SendDue(...))` makes, from JSON the scheduler already holds (the
    recipient as stored, the step's content serialised once per run): the emitter's hot
    path, which would otherwise parse JSON only to write it again. A unit test holds the
    two encodings to the same decoded event."""
    head = orjson.dumps({
        "event_id": new_event_id(), "version": 1, "occurred_at": now_utc(), "event_type": SendDue.topic,
        "send_id": send_id, "campaign_id": campaign_id, "run_id": run_id, "step_index": step_index,
        "due_at": due_at, "attempt": attempt,
    }, default=_text)
    value = b"".join([head[:-1], b', "recipient": ', recipient_json.encode(), b', "content": ', content_json.encode(),
                      b"}"])
    return Message(SendDue.topic, str(contact_id).encode(), value, encode_headers(SendDue.topic, correlation_id))


def email_status_message(
    *, send_id: UUID, campaign_id: UUID, run_id: UUID, step_index: int, contact_id: UUID, status: str,
    attempt: int, smtp_code: int | None, smtp_message: str | None, retry_at: datetime | None,
    correlation_id: str | None = None,
) -> Message:
    """What `encode(EmailStatus(...))` makes, from values the mailer holds validated (a
    send.due's, an outcome of its own): one an email, where building and validating the
    model cost twice as much as the rest. A unit test holds the two encodings to the same
    decoded event."""
    value = orjson.dumps({
        "event_id": new_event_id(), "version": 1, "occurred_at": now_utc(), "event_type": EmailStatus.topic,
        "send_id": send_id, "campaign_id": campaign_id, "run_id": run_id, "step_index": step_index,
        "contact_id": contact_id, "status": status, "attempt": attempt, "smtp_code": smtp_code,
        "smtp_message": smtp_message, "retry_at": retry_at,
    }, default=_text)
    return Message(EmailStatus.topic, str(campaign_id).encode(), value, encode_headers(EmailStatus.topic, correlation_id))


def segment_evaluated_message(
    *, run_id: UUID, campaign_id: UUID, batch_no: int, recipients_json: list[str], is_last: bool,
    total_matched: int | None = None, opted_in_matched: int | None = None, correlation_id: str | None = None,
) -> Message:
    """What `encode(SegmentEvaluated(...))` makes, from recipients already JSON (as the
    database writes them): segment-svc's evaluation publishes hundreds of thousands a
    second this way. A unit test holds the two encodings to the same decoded event."""
    head = orjson.dumps({
        "event_id": new_event_id(), "version": 1, "occurred_at": now_utc(), "event_type": SegmentEvaluated.topic,
        "run_id": str(run_id), "campaign_id": str(campaign_id), "batch_no": batch_no, "is_last": is_last,
        "total_matched": total_matched, "opted_in_matched": opted_in_matched,
    })
    value = b"".join([head[:-1], b',"recipients":[', ",".join(recipients_json).encode(), b"]}"])
    return Message(SegmentEvaluated.topic, str(run_id).encode(), value,
                   encode_headers(SegmentEvaluated.topic, correlation_id))


def with_send_hour(recipient_json: str, hour: int) -> str:
    """A recipient's JSON (an object, as the database writes it) with its best hour of day
    added: what `Recipient(**recipient, send_hour=hour)` dumps, without parsing the rest.
    A unit test holds the two to the same decoded recipient."""
    if not 0 <= hour <= 23:
        raise ValueError(f"send_hour {hour} is not an hour of the day")
    return f'{recipient_json.rstrip()[:-1]}, "send_hour": {hour:d}}}'


# What with_send_hour adds to a recipient, at most.
SEND_HOUR_BYTES = len(', "send_hour": 23')


def page_json(items_json: Sequence[str], next_cursor: str | None) -> str:
    """`{"items": [...], "next_cursor": ...}` of items already JSON (`model_dump_json`):
    a page of 500 is not parsed again to be written. Tested against the page model."""
    return f'{{"items": [{",".join(items_json)}], "next_cursor": {json.dumps(next_cursor)}}}'


def message_size(message: Message) -> int:
    """What the message weighs on the broker: key, value, headers and the framing of a
    record batch of one record (61 + 21 bytes, and the lengths' varints)."""
    headers = sum(len(name.encode()) + len(value) + 10 for name, value in message.headers)
    return len(message.key) + len(message.value or b"") + headers + _FRAMING


_FRAMING = 61 + 21 + 3 * 5


def segment_evaluated_room(message_bytes: int, correlation_id: str | None = None) -> int:
    """Bytes left for the recipients' JSON (each with the comma before it) in a
    segment.evaluated of at most `message_bytes`, whatever its batch number and counts."""
    widest = segment_evaluated_message(
        run_id=UUID(int=0), campaign_id=UUID(int=0), batch_no=2**31 - 1, recipients_json=[], is_last=False,
        total_matched=2**63 - 1, opted_in_matched=2**63 - 1, correlation_id=correlation_id,
    )
    return message_bytes - message_size(widest)


def contact_changed_values(
    contacts: Sequence[tuple[UUID | str, str, bool, int]], occurred_at: datetime
) -> list[tuple[bytes, bytes]]:
    """The key and value `encode(ContactChanged(...))` makes (not deleted) for each
    (contact id, email, consent, change sequence): contact imports tell the mailer of a
    million contacts this way, so the JSON is written out by hand. A unit test holds the
    two to the same decoded event."""
    middle = f'","version":1,"occurred_at":"{occurred_at.isoformat()}","event_type":"contact.changed","contact_id":"'
    consent = {True: "true", False: "false"}
    return [
        # str(): asyncpg's UUID is not the standard library's. `:d` refuses a sequence
        # that is not an integer (None, text) rather than write it into the JSON.
        ((contact := str(contact_id)).encode(),
         f'{{"event_id":"{event_id}{middle}{contact}","email":{orjson.dumps(email).decode()},'
         f'"marketing_opt_in":{consent[opted_in]},"deleted":false,"change_seq":{change_seq:d}}}'.encode())
        for event_id, (contact_id, email, opted_in, change_seq)
        in zip(uuid_texts(len(contacts)), contacts, strict=True)
    ]


def decode(topic: str, key: bytes | None, value: bytes | None) -> Event:
    event_type = _BY_TOPIC.get(topic)
    if event_type is None:
        raise UndecodableMessage(f"no event is carried on topic {topic!r}")
    try:
        if value is None:
            return _tombstone(event_type, key)
        return event_type.model_validate_json(value)
    except ValidationError as error:
        raise UndecodableMessage(_describe(error)) from None


def _tombstone(event_type: type[Event], key: bytes | None) -> Event:
    if event_type is not ContactChanged or key is None:
        raise UndecodableMessage("message has no value")
    try:
        return ContactChanged(contact_id=UUID(key.decode()), deleted=True)
    except ValueError:
        raise UndecodableMessage(f"tombstone key {key!r} is not a contact id") from None


def _describe(error: ValidationError) -> str:
    problems = [
        {"path": ".".join(str(part) for part in item["loc"]), "error": item["msg"]}
        for item in error.errors(include_url=False)
    ]
    return json.dumps(problems)
