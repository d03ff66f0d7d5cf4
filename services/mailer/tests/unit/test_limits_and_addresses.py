import asyncio

import pytest

from mailer.addresses import BadAddress, parse_address
from mailer.limits import SendingLimits, TokenBucket


def test_a_bucket_lets_a_burst_through_then_paces_at_its_rate():
    bucket = TokenBucket(rate=10, burst=2, now=0.0)
    assert [bucket.take(0.0), bucket.take(0.0)] == [0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.1)
    assert bucket.take(1.0) == 0.0  # a second later, tokens came back


async def test_a_domain_never_has_more_transactions_at_once_than_allowed():
    limits = SendingLimits(global_rate=0, domain_rate=0, domain_concurrency=2)
    inside = {"example.com": 0, "other.test": 0}
    most = dict(inside)

    async def send(domain: str):
        async with limits.slot(domain):
            key = domain.lower()
            inside[key] += 1
            most[key] = max(most[key], inside[key])
            for _ in range(3):  # let the others try to come in
                await asyncio.sleep(0)
            inside[key] -= 1

    await asyncio.gather(*(send("example.com") for _ in range(6)), *(send("OTHER.test") for _ in range(3)))
    assert most == {"example.com": 2, "other.test": 2}


async def test_the_global_rate_paces_sending():
    now, waits = [0.0], []

    async def sleep(seconds: float) -> None:  # the clock moves on by the wait, and nobody waits
        waits.append(seconds)
        now[0] += seconds

    limits = SendingLimits(global_rate=100, domain_rate=0, domain_concurrency=0, clock=lambda: now[0], sleep=sleep)
    for _ in range(20):
        async with limits.slot("example.com"):
            now[0] += 0.001
    assert len(waits) == 10, "a burst of a tenth of a second's worth (10), then paced"
    assert now[0] >= 0.1  # the 10 after the burst at 100/s


async def test_a_domain_is_paced_at_its_own_rate_whatever_its_case():
    now, waits = [0.0], []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    limits = SendingLimits(global_rate=0, domain_rate=10, domain_concurrency=0, clock=lambda: now[0], sleep=sleep)
    for domain in ("example.com", "EXAMPLE.com", "other.test"):
        async with limits.slot(domain):
            pass
    assert waits == [pytest.approx(0.1)], "the second to example.com waits, other.test has its own"


def test_a_unicode_domain_travels_in_idna():
    address = parse_address("jorg@bücher.example")
    assert (address.envelope, address.domain, address.needs_smtputf8) == (
        "jorg@xn--bcher-kva.example", "xn--bcher-kva.example", False)
    assert parse_address("Jörg@bücher.example").needs_smtputf8


@pytest.mark.parametrize("bad", ["no-at-sign", "a@b@c.example", "a@-bad-.example", "a\r\n@x.example"])
def test_an_invalid_address_is_refused(bad):
    with pytest.raises(BadAddress):
        parse_address(bad)


def test_empty_smtp_credentials_mean_no_auth(monkeypatch):
    from mailer.settings import Settings

    monkeypatch.setenv("TRACKING_SECRET", "unit-test-secret")
    monkeypatch.setenv("SMTP_USERNAME", "")
    monkeypatch.setenv("SMTP_PASSWORD", "")
    assert (Settings().smtp_username, Settings().smtp_password) == (None, None)
