"""Recipient addresses as SMTP needs them: validated, the domain IDNA-encoded."""

import re
from dataclasses import dataclass
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email


class BadAddress(ValueError):
    pass


@dataclass(frozen=True)
class Address:
    display: str  # for the To: header (Unicode allowed)
    envelope: str  # for RCPT TO: ASCII, the domain in IDNA (xn--...)
    domain: str  # ASCII, for per-domain limits
    needs_smtputf8: bool  # a non-ASCII local part can only travel with SMTPUTF8


# RFC 5322 3.2.3: a dot-atom of atext, the local part most addresses have.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*\Z")


def parse_address(value: str) -> Address:
    """The common case, an ASCII dot-atom local part, checked here and its domain once per
    domain (validating the whole address was a fifth of the mailer's time per email); any
    other address by email_validator whole. Both give the same answer (unit-tested)."""
    local, at, domain = value.rpartition("@")
    if at and value.isascii() and len(local) <= 64 and len(value) <= 254 and _DOT_ATOM.match(local):
        try:
            domain = _ascii_domain(domain)
        except EmailNotValidError as error:
            raise BadAddress(f"{value!r} is not a deliverable address: {error}") from None
        return Address(f"{local}@{domain}", f"{local}@{domain}", domain, False)
    try:
        valid = validate_email(value, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as error:
        raise BadAddress(f"{value!r} is not a deliverable address: {error}") from None
    domain = (valid.ascii_domain or valid.domain).lower()
    return Address(valid.normalized, f"{valid.local_part}@{domain}", domain, not valid.local_part.isascii())


@lru_cache(maxsize=4096)  # a campaign's recipients share a few thousand domains at most
def _ascii_domain(domain: str) -> str:
    valid = validate_email(f"x@{domain}", check_deliverability=False, allow_smtputf8=True)
    return (valid.ascii_domain or valid.domain).lower()
