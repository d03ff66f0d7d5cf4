import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from segment_svc.contacts import ContactDraft, ContactPatch, _validated, new_contact_id, normal_email
from servicekit.http import invalid


def paths(model, **fields) -> list[str]:
    with pytest.raises(ValidationError) as error:
        model(**fields)
    return [e["path"] for e in invalid(error.value).extra["errors"]]


def test_an_email_is_validated_and_kept_lower_case():
    assert ContactDraft(email="Ada.Lovelace@Example.COM").email == "ada.lovelace@example.com"
    assert paths(ContactDraft, email="not-an-address") == ["$.email"]


def test_a_timezone_must_be_an_iana_zone():
    assert ContactDraft(email="a@example.com", timezone="Europe/Paris").timezone == "Europe/Paris"
    assert paths(ContactDraft, email="a@example.com", timezone="Mars/Olympus") == ["$.timezone"]
    assert paths(ContactPatch, timezone="CEST+2") == ["$.timezone"]


def test_unknown_fields_are_refused():
    assert paths(ContactDraft, email="a@example.com", shoe_size=42) == ["$.shoe_size"]


TRICKY_ADDRESSES = [
    "a@example.com", "A.B@EXAMPLE.COM", "a..b@example.com", ".a@example.com", "a.@example.com",
    "a@localhost", "a@example.local", "a@sub.example.test", "a@invalid", "a@example", "a@123.456",
    "a@-example.com", "a@example-.com", "a@exa_mple.com", "a@xn--abc.com", "a@xn--80ak6aa92e.com",
    "a@" + "b" * 64 + ".com", "x" * 64 + "@example.com", "x" * 65 + "@example.com",
    "a@" + ".".join(["b" * 60] * 5) + ".com", "a@b@example.com", "@example.com", "a@", "a@[127.0.0.1]",
    " a@example.com", "a@example.com ", "a@ex ample.com", "a@example..com", "a@.example.com",
]
ASCII_ADDRESSES = st.from_regex(
    r"\A[A-Za-z0-9._+!#'~\-]{0,70}@[A-Za-z0-9.\-]{0,70}(\.(com|org|test|local|a1|123|xn--abc|x))?\Z"
)


@settings(max_examples=3000, deadline=None)
@given(ASCII_ADDRESSES | st.text(max_size=40) | st.sampled_from(TRICKY_ADDRESSES))
def test_the_fast_path_answers_as_email_validator_does(address):
    assert _answer(normal_email, address) == _answer(_validated, address)


def _answer(check, address):
    try:
        return check(address)
    except ValueError:
        return "refused"


def test_contact_ids_are_version_7_distinct_and_in_time_order():
    import time

    ids = [new_contact_id() for _ in range(20_000)]
    assert len(set(ids)) == 20_000 and all(i.version == 7 and i.variant == "specified in RFC 4122" for i in ids)
    milliseconds = [i.int >> 80 for i in ids]
    assert milliseconds == sorted(milliseconds)
    assert abs(milliseconds[-1] - time.time_ns() // 1_000_000) < 5000
