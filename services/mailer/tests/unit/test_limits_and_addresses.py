import asyncio

import pytest

from mailer.addresses import BadAddress, parse_address
from mailer.limits import SendingLimits, rate_limiter

from . import clock


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


def entered(limits: SendingLimits, domains: list[str], together: bool = False) -> list[float]:
    """When (loop time, from 0) each slot was entered, on a loop whose clock jumps instead
    of waiting: one after another, each holding its slot a millisecond, or all at once."""
    async def main() -> list[float]:
        loop, times = asyncio.get_running_loop(), []

        async def send(domain: str) -> None:
            async with limits.slot(domain):
                times.append(loop.time())
                await asyncio.sleep(0.001)

        if together:
            await asyncio.gather(*(send(domain) for domain in domains))
        else:
            for domain in domains:
                await send(domain)
        return times

    return clock.run(main())


def test_the_global_rate_lets_a_tenth_of_a_second_through_then_paces_sending():
    times = entered(SendingLimits(global_rate=100, domain_rate=0, domain_concurrency=0), ["example.com"] * 20)
    assert times[9] < 0.011, "a burst of a tenth of a second's worth (10) at once"
    gaps = [later - earlier for earlier, later in zip(times[10:], times[11:], strict=False)]
    assert all(gap == pytest.approx(0.01, abs=1e-6) for gap in gaps), gaps
    assert times[-1] == pytest.approx(0.1 + 0.001, abs=0.002)  # the 10 after the burst at 100/s


def test_senders_waiting_together_are_paced_as_one_after_another():
    times = entered(SendingLimits(global_rate=100, domain_rate=0, domain_concurrency=0), ["example.com"] * 30,
                    together=True)
    assert sorted(times)[-1] == pytest.approx(0.2, abs=0.002), "30 at 100/s with 10 at once: 0.2 s"
    assert sum(1 for at in times if at < 0.05) == 10 + 4


def test_a_domain_is_paced_at_its_own_rate_whatever_its_case():
    times = entered(SendingLimits(global_rate=0, domain_rate=10, domain_concurrency=0),
                    ["example.com", "EXAMPLE.com", "other.test"])
    assert times[1] - times[0] == pytest.approx(0.1, abs=1e-6), "the second to example.com waits a tenth"
    assert times[2] - times[1] == pytest.approx(0.001, abs=1e-6), "other.test has its own"


def test_a_rate_below_ten_a_second_still_lets_one_through_at_once():
    limiter = rate_limiter(2)
    assert (limiter.max_rate, limiter.time_period) == (1.0, 0.5)
    assert rate_limiter(0) is None
    times = entered(SendingLimits(global_rate=2, domain_rate=0, domain_concurrency=0), ["a.example"] * 3)
    assert times == [0.0, pytest.approx(0.5, abs=1e-6), pytest.approx(1.0, abs=1e-6)]


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


def _by_email_validator(value: str):
    """The whole address through email_validator, as every address went before the fast path."""
    from email_validator import EmailNotValidError, validate_email

    from mailer.addresses import Address
    try:
        valid = validate_email(value, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        return BadAddress
    domain = (valid.ascii_domain or valid.domain).lower()
    return Address(valid.normalized, f"{valid.local_part}@{domain}", domain, not valid.local_part.isascii())


@pytest.mark.parametrize("value", [
    "ada@example.com", "Ada.Lovelace+news@Example.COM", "a@b.co", "x_y-z!#$%&'*=?^`{|}~@shop.example",
    "a..b@example.com", ".a@example.com", "a.@example.com", "a@example", "a@localhost", "a@x.local",
    "a@x.invalid", "a@x.test", "a@x.onion", "a@123.456", "a@[127.0.0.1]", "a@example.com.", "a@.example.com",
    "a@exa_mple.com", "a@-x.example", "a@x-.example", "a" * 64 + "@example.com", "a" * 65 + "@example.com",
    "a@" + "b" * 64 + ".example", "a@" + ".".join(["b" * 60] * 5) + ".example", '"quoted"@example.com',
    "a b@example.com", "a@example.com\n", "@example.com", "a@", "jorg@bücher.example", "Jörg@bücher.example",
    "A@B.EXAMPLE",
])
def test_an_address_is_read_as_email_validator_reads_it(value):
    try:
        read = parse_address(value)
    except BadAddress:
        read = BadAddress
    assert read == _by_email_validator(value)
