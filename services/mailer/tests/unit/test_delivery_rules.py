import random
from datetime import UTC, datetime, timedelta

import pytest

from contracts.enums import DeliveryStatus
from mailer.domain import RetryPolicy, classify

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
POLICY = RetryPolicy(initial_seconds=300, max_seconds=3600, lifetime_seconds=259200)


def outcome(code, attempt=1, first=NOW):
    return classify(code, "text", POLICY, attempt, first, NOW, random.Random(7))


def test_2xx_is_sent_and_5xx_fails_for_good():
    assert outcome(250).status is DeliveryStatus.SENT
    assert outcome(550).status is DeliveryStatus.FAILED and outcome(550).retry_at is None


@pytest.mark.parametrize("code", [421, 451, None])
def test_4xx_or_no_answer_is_deferred_with_backoff_and_jitter(code):
    first = outcome(code, attempt=1)
    assert first.status is DeliveryStatus.DEFERRED
    assert NOW + timedelta(seconds=150) <= first.retry_at <= NOW + timedelta(seconds=300)
    fifth = outcome(code, attempt=5)
    assert NOW + timedelta(seconds=1800) <= fifth.retry_at <= NOW + timedelta(seconds=3600)  # capped


def test_a_deferral_past_the_lifetime_fails():
    late = outcome(451, attempt=9, first=NOW - timedelta(days=3))
    assert late.status is DeliveryStatus.FAILED
