"""Contacts: what a valid one is, and what a change of one means for the mailer."""

import re
import time
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from uuid import UUID

import orjson
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationInfo, field_validator

from contracts.codec import ATTRIBUTES_BYTES
from contracts.events import ContactChanged, uuid_texts
from contracts.steps import omittable
from contracts.timeline import is_known_zone


def new_contact_ids(count: int) -> list[str]:
    """Version 7 (RFC 9562), as text: this millisecond, then 74 random bits. Time-ordered,
    so that a million new contacts append to the primary key rather than scatter across it."""
    return uuid_texts(count, millis=time.time_ns() // 1_000_000)


def new_contact_id() -> UUID:
    return UUID(new_contact_ids(1)[0])


class ContactNotFound(LookupError):
    pass


class EmailTaken(ValueError):
    pass


# RFC 5322 dot-atom, ASCII: the local parts email_validator accepts as they are.
_PLAIN_LOCAL_PART = re.compile(r"[a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~]+(?:\.[a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~]+)*\Z")


def normal_email(value: str) -> str:
    """Validated and lower-cased: one contact per address, whatever its case.

    email_validator takes ~25 µs an address, most of it on the domain, so a plain ASCII
    local part is checked here and the domain's verdict is remembered (imports repeat
    domains). Anything else takes the full path; a unit test holds both to one answer.
    """
    local, at, domain = value.rpartition("@")
    if at and len(local) <= 64 and _PLAIN_LOCAL_PART.match(local):
        normal_domain = _domain_verdict(domain)
        if normal_domain is not None and len(local) + 1 + len(normal_domain) <= 254:
            return f"{local}@{normal_domain}".lower()
    return _validated(value)


@lru_cache(maxsize=4096)
def _domain_verdict(domain: str) -> str | None:
    try:
        return validate_email(f"x@{domain}", check_deliverability=False).domain
    except EmailNotValidError:
        return None


def _validated(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        raise ValueError(f"not a valid email address: {error}") from None


def known_zone(value: str | None) -> str | None:
    if value is not None and not is_known_zone(value):
        raise ValueError(f"{value!r} is not an IANA timezone (e.g. Europe/Paris)")
    return value


class ContactTooLarge(ValueError):
    """Attributes larger than a recipient may carry (ATTRIBUTES_BYTES), once merged."""

    def __init__(self, size: int) -> None:
        super().__init__(f"the attributes would be {size:,} bytes as JSON with those stored: {_LIMIT}")


_LIMIT = (f"a contact's attributes may have at most {ATTRIBUTES_BYTES:,} bytes as JSON (they travel with each"
          " of its emails)")
_ATTRIBUTES = f"a free JSON object; {_LIMIT}"


def stored_json_bytes(value: Any) -> int:
    """Bytes of `value` as PostgreSQL writes jsonb out as text, which is what a recipient
    carries (migration 0005): ", " and ": " between items, numbers in plain notation (1e16
    is 17 digits), UTF-8 as it is, quotes, backslashes and control characters escaped.
    (-0.0 is counted one byte longer than PostgreSQL's 0.0.)"""
    if isinstance(value, str):
        return len(orjson.dumps(value))
    if value is None or value is True:
        return 4
    if value is False:
        return 5
    if isinstance(value, int):
        return len(str(value))
    if isinstance(value, float):
        text = orjson.dumps(value).decode()
        return len(format(Decimal(text), "f")) if "e" in text else len(text)
    if isinstance(value, dict):
        return (2 + 2 * max(len(value) - 1, 0)
                + sum(stored_json_bytes(str(key)) + 2 + stored_json_bytes(item) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return 2 + 2 * max(len(value) - 1, 0) + sum(stored_json_bytes(item) for item in value)
    raise TypeError(f"not JSON: {type(value).__name__}")


_EXPONENT = re.compile(rb"[0-9][eE]")


def attributes_fit(attributes: dict[str, Any]) -> dict[str, Any]:
    """Refuses attributes over ATTRIBUTES_BYTES as stored. Their compact JSON (orjson, a
    microsecond) settles nearly all: spaces at most double it, and only a number with an
    exponent grows otherwise; the exact count is taken when that could pass the limit."""
    try:
        compact = orjson.dumps(attributes, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError as error:
        raise ValueError(f"cannot be stored as JSON: {error}") from None
    if 2 * len(compact) <= ATTRIBUTES_BYTES and not _EXPONENT.search(compact):
        return attributes
    if (size := stored_json_bytes(attributes)) > ATTRIBUTES_BYTES:
        raise ValueError(f"the attributes are {size:,} bytes as JSON: {_LIMIT}")
    return attributes


class ContactFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    timezone: str | None = None
    marketing_opt_in: StrictBool = False
    attributes: dict[str, Any] = Field(default_factory=dict, description=_ATTRIBUTES)

    _zone = field_validator("timezone")(known_zone)

    @field_validator("attributes")
    @classmethod
    def _fit(cls, attributes: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if info.context and info.context.get("stored"):
            return attributes  # read back: a contact stored before the limit can still be read
        return attributes_fit(attributes)


class ContactDraft(ContactFields):
    email: str = Field(max_length=320, json_schema_extra={"format": "email"})

    _email = field_validator("email")(normal_email)


class ContactPatch(BaseModel):
    """PATCH: only the fields sent change; `attributes` is merged key by key."""

    model_config = ConfigDict(extra="forbid")

    # email, consent and attributes cannot be null; names and timezone can (cleared).
    email: str = omittable({"format": "email"}, max_length=320)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    timezone: str | None = None
    marketing_opt_in: StrictBool = omittable()
    attributes: dict[str, Any] = omittable({"description": f"merged key by key into those stored; {_LIMIT}"})

    _email = field_validator("email")(normal_email)
    _zone = field_validator("timezone")(known_zone)
    _fit = field_validator("attributes")(attributes_fit)


class Contact(ContactDraft):
    id: UUID
    created_at: datetime
    updated_at: datetime

    def changed(self, change_seq: int) -> ContactChanged:
        """What the mailer hears of this state of the contact; `change_seq` is the one the
        database gave it (migration 0007), which is not part of the API's contact."""
        return ContactChanged(contact_id=self.id, email=self.email, marketing_opt_in=self.marketing_opt_in,
                              change_seq=change_seq)


def patched(before: Contact, patch: ContactPatch) -> dict[str, Any]:
    """The contact's fields once `patch` is applied: those sent replace those stored, and
    attributes are merged key by key, which must still fit (ContactTooLarge)."""
    fields = patch.model_dump(exclude_unset=True)
    merged = before.model_dump() | fields
    merged["attributes"] = before.attributes | (fields.get("attributes") or {})
    if fields.get("attributes"):
        try:
            attributes_fit(merged["attributes"])
        except ValueError:
            raise ContactTooLarge(stored_json_bytes(merged["attributes"])) from None
    return merged


SEARCH_LENGTH = 320  # the longest email


def search_problem(q: str) -> str | None:
    """Why `q` cannot be searched for (`GET /api/contacts?q=`), or None: it has 1 to
    SEARCH_LENGTH characters, none of them NUL (which no text column holds)."""
    if not 1 <= len(q) <= SEARCH_LENGTH:
        return f"must have 1 to {SEARCH_LENGTH} characters"
    if "\x00" in q:
        return "NUL characters are not allowed"
    return None


def matters_to_the_mailer(before: Contact, after: Contact) -> bool:
    """Consent and address are what the mailer keeps; other changes are not published."""
    return (before.email, before.marketing_opt_in) != (after.email, after.marketing_opt_in)
