import pytest
from pydantic import ValidationError

from segment_svc.contacts import ContactDraft, ContactPatch
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
