"""Recipient addresses as SMTP needs them: validated, the domain IDNA-encoded."""

from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email


class BadAddress(ValueError):
    pass


@dataclass(frozen=True)
class Address:
    display: str  # for the To: header (Unicode allowed)
    envelope: str  # for RCPT TO: ASCII, the domain in IDNA (xn--...)
    domain: str  # ASCII, for per-domain limits
    needs_smtputf8: bool  # a non-ASCII local part can only travel with SMTPUTF8


def parse_address(value: str) -> Address:
    try:
        valid = validate_email(value, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as error:
        raise BadAddress(f"{value!r} is not a deliverable address: {error}") from None
    domain = (valid.ascii_domain or valid.domain).lower()
    return Address(valid.normalized, f"{valid.local_part}@{domain}", domain, not valid.local_part.isascii())
