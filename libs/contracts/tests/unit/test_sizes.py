"""The size budget: the largest valid recipient with the largest valid email fits one
send.due, the largest flow one campaign.activated, each under MESSAGE_BYTES and so under
what Kafka and aiokafka take by default; content over its limit is refused, naming it."""

from datetime import UTC, date, datetime, time
from uuid import uuid4

import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from pydantic import ValidationError

from contracts.codec import (
    ATTRIBUTES_BYTES,
    ENVELOPE_BYTES,
    MESSAGE_BYTES,
    RECIPIENT_BYTES,
    Message,
    encode,
    message_size,
    segment_evaluated_message,
    segment_evaluated_room,
    send_due_message,
)
from contracts.events import CampaignActivated, Recipient
from contracts.steps import (
    CONTENT_BYTES,
    FLOW_CONTENT_BYTES,
    MAX_STEPS,
    EmailContent,
    SendEmailStep,
    WaitConfig,
    WaitStep,
    content_bytes,
    flow_content_bytes,
)

KAFKA_MESSAGE_MAX_BYTES = 1024 * 1024 + 12  # the broker's default message.max.bytes (a record batch)
AIOKAFKA_MAX_REQUEST_SIZE = 1024 * 1024  # the producer's default max_request_size
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CORRELATION = "c" * 200


def aiokafka_estimate(message: Message) -> int:
    return DefaultRecordBatchBuilder.estimate_size_in_bytes(message.key, message.value, message.headers)


def test_the_budget_adds_up_under_kafka_defaults():
    assert ENVELOPE_BYTES + RECIPIENT_BYTES + CONTENT_BYTES <= MESSAGE_BYTES
    assert ENVELOPE_BYTES + FLOW_CONTENT_BYTES + MAX_STEPS * 100 <= MESSAGE_BYTES
    assert MESSAGE_BYTES + 4_100 < min(KAFKA_MESSAGE_MAX_BYTES, AIOKAFKA_MAX_REQUEST_SIZE), "room for dead-letter headers"


def largest_content() -> EmailContent:
    subject = "\u0001" * 998  # six bytes each as JSON
    rest = CONTENT_BYTES - content_bytes(subject, "", "") - 4  # the two empty strings' quotes
    return EmailContent(subject=subject, html="é" * (rest // 4), text="é" * (rest // 4))


def test_the_largest_recipient_with_the_largest_email_fits_one_send_due():
    content = largest_content()
    assert CONTENT_BYTES - 8 <= content.size <= CONTENT_BYTES
    recipient = Recipient(
        contact_id=uuid4(), email="é" * 64 + "@" + "a" * 185 + ".fr", first_name="\u0001" * 200, last_name='"' * 200,
        timezone="America/Argentina/ComodRivadavia", send_hour=23, marketing_opt_in=True, change_seq=2**63 - 1,
        attributes={"bio": "\u0001" * ((ATTRIBUTES_BYTES - 11) // 6)})
    recipient_json = recipient.model_dump_json()
    assert len(recipient_json.encode()) <= RECIPIENT_BYTES
    message = send_due_message(
        send_id=uuid4(), campaign_id=uuid4(), run_id=uuid4(), contact_id=recipient.contact_id, step_index=99,
        due_at=NOW, attempt=2**31 - 1, recipient_json=recipient_json, content_json=content.model_dump_json(),
        correlation_id=CORRELATION)
    assert aiokafka_estimate(message) <= message_size(message) <= MESSAGE_BYTES


def test_the_largest_flow_fits_one_campaign_activated():
    per_email = FLOW_CONTENT_BYTES // 2
    emails = [SendEmailStep(type="SEND_EMAIL", config=EmailContent(subject="s", text="x" * (per_email - 9)))] * 2
    waits = [WaitStep(type="WAIT", config=WaitConfig(days=1, hours=1, minutes=1, seconds=1))] * (MAX_STEPS - 2)
    steps = [emails[0], *waits, emails[1]]
    assert flow_content_bytes(steps) <= FLOW_CONTENT_BYTES
    activated = CampaignActivated(campaign_id=uuid4(), run_id=uuid4(), segment_id=uuid4(), steps=steps,
                                  start_date=date(2026, 3, 1), start_time_of_day=time(9), timezone="America/Argentina/ComodRivadavia",
                                  optimize_send_time=True, send_in_recipient_timezone=True, start_at=NOW,
                                  activated_at=NOW, status_seq=2**31)
    message = encode(activated, CORRELATION)
    assert aiokafka_estimate(message) <= message_size(message) <= MESSAGE_BYTES


def test_a_segment_evaluated_filled_to_its_room_fits():
    room = segment_evaluated_room(MESSAGE_BYTES, CORRELATION)
    recipient = '{"contact_id": "x"}'
    recipients = [recipient] * (room // (len(recipient) + 1))
    message = segment_evaluated_message(run_id=uuid4(), campaign_id=uuid4(), batch_no=2**31 - 1,
                                        recipients_json=recipients, is_last=False, total_matched=2**63 - 1,
                                        opted_in_matched=2**63 - 1, correlation_id=CORRELATION)
    assert MESSAGE_BYTES - 50 <= message_size(message) <= MESSAGE_BYTES


def test_an_email_too_large_to_travel_is_refused_naming_the_limit():
    with pytest.raises(ValidationError) as error:
        EmailContent(subject="Hi", html="é" * (CONTENT_BYTES // 2))  # 2 bytes each
    assert f"at most {CONTENT_BYTES:,}" in str(error.value)
    with pytest.raises(ValidationError) as error:
        EmailContent(subject="Hi", text='"' * (CONTENT_BYTES // 2))  # \" each
    assert f"at most {CONTENT_BYTES:,}" in str(error.value)
    assert EmailContent(subject="Hi", text="x" * (CONTENT_BYTES - 10)).size == CONTENT_BYTES - 2
