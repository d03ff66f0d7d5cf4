import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from contracts.codec import ATTRIBUTES_BYTES
from segment_svc.contacts import (
    ContactDraft,
    ContactPatch,
    _validated,
    attributes_fit,
    new_contact_id,
    normal_email,
    stored_json_bytes,
)
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
# Addresses are built from parts (st.from_regex drew them ten times slower): dot-atoms of
# the characters the fast path takes, and any run of them with dots anywhere, at any length
# around the limits of 64 and 254, on the domains and TLDs email_validator treats apart.
_ATOM = string.ascii_letters + string.digits + "_+!#'~-"
_LABEL = string.ascii_letters + string.digits + "-"
_TLDS = st.sampled_from(["", ".com", ".org", ".test", ".local", ".a1", ".123", ".xn--abc", ".x"])
WELL_FORMED = st.builds("{}@{}{}".format,
                        st.lists(st.text(_ATOM, min_size=1, max_size=24), min_size=1, max_size=4).map(".".join),
                        st.lists(st.text(_LABEL, min_size=1, max_size=64), min_size=1, max_size=5).map(".".join),
                        _TLDS)
ANY_ASCII = st.builds("{}@{}{}".format, st.text(_ATOM + ".", max_size=70), st.text(_LABEL + ".", max_size=70), _TLDS)


@pytest.mark.parametrize("address", TRICKY_ADDRESSES)
def test_the_fast_path_answers_as_email_validator_does_on_the_tricky_addresses(address):
    assert _answer(normal_email, address) == _answer(_validated, address)


@settings(max_examples=150, deadline=None)
@given(WELL_FORMED | ANY_ASCII | st.text(max_size=40))
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


def test_attributes_larger_than_a_recipient_may_carry_are_refused_naming_the_limit():
    fits = {"bio": "x" * (ATTRIBUTES_BYTES - 11)}  # {"bio": "..."}: 11 bytes around the text
    assert stored_json_bytes(fits) == ATTRIBUTES_BYTES
    assert ContactDraft(email="a@example.com", attributes=fits).attributes == fits
    with pytest.raises(ValidationError) as error:
        ContactDraft(email="a@example.com", attributes={"bio": "x" * (ATTRIBUTES_BYTES - 10)})
    [problem] = invalid(error.value).extra["errors"]
    assert problem["path"] == "$.attributes" and f"at most {ATTRIBUTES_BYTES:,} bytes" in problem["message"]
    assert paths(ContactPatch, attributes={"bio": "é" * ATTRIBUTES_BYTES}) == ["$.attributes"]


def test_attributes_are_measured_as_postgresql_writes_them():
    assert stored_json_bytes({"a": [1, 2.5, True, None, "x"], "b": {}}) == len('{"a": [1, 2.5, true, null, "x"], "b": {}}')
    assert stored_json_bytes([1e16, 1.5e-7]) == len("[10000000000000000, 0.00000015]")
    assert stored_json_bytes('é"\n\u0001') == len('"é\\"\\n\\u0001"'.encode())


def test_numbers_written_with_an_exponent_count_in_full():
    many = [1e300] * 300  # 1,800 bytes as orjson writes them, 90,000 as PostgreSQL does
    assert paths(ContactDraft, email="a@example.com", attributes={"n": many}) == ["$.attributes"]


_SCALARS = (st.none() | st.booleans() | st.integers(-10**15, 10**15) | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(max_size=20))
_JSON = st.recursive(_SCALARS, lambda children: st.lists(children, max_size=5) | st.dictionaries(
    st.text(max_size=5), children, max_size=5), max_leaves=10)
# Large values made cheaply, a short piece repeated (text, or a list of one JSON value), so
# that attributes land on both sides of the limit: by bytes of text (escapes, non-ASCII) or
# by numbers whose exponent PostgreSQL writes out in full. Drawing every character of a
# large text took hypothesis 10 s for 300 cases.
_LARGE = (st.builds(lambda piece, times: piece * times, st.text(min_size=1, max_size=3), st.integers(0, 30_000))
          | st.builds(lambda value, times: [value] * times, _JSON, st.integers(0, 400)))


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(max_size=5), _JSON | _LARGE, max_size=4))
def test_the_quick_check_answers_as_the_exact_count_does(attributes):
    assert _quick(attributes) == (stored_json_bytes(attributes) <= ATTRIBUTES_BYTES)


@pytest.mark.parametrize("attributes", [
    # Just under the limit as stored, and just over: 1e300 is 301 digits there, 1.5e-7 ten.
    {"n": [1e300] * 216}, {"n": [1e300] * 217}, {"n": [1.5e-7] * 5460}, {"n": [1.5e-7] * 5461},
    {"bio": "\u0001" * 10_920}, {"bio": "\u0001" * 10_921}, {"bio": "é" * 32_762}, {"bio": "é" * 32_763},
])
def test_the_quick_check_answers_as_the_exact_count_does_at_the_limit(attributes):
    assert _quick(attributes) == (stored_json_bytes(attributes) <= ATTRIBUTES_BYTES)


def _quick(attributes) -> bool:
    try:
        attributes_fit(attributes)
        return True
    except ValueError:
        return False
