"""Signed links the mailer puts in emails and campaign-api answers: the open pixel, click
redirects and unsubscribe. Each carries which send it belongs to (campaign, run, step,
send, contact, packed into one URL-safe reference) and an HMAC-SHA256 over that reference,
the kind of link and, for a click, its target: a tampered or foreign link is refused, and
a redirect can only lead where the mailer signed it to.
"""

import base64
import hmac
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from urllib.parse import quote
from uuid import UUID

OPEN, CLICK, UNSUBSCRIBE = "open", "click", "unsubscribe"


def sign(secret: str, *parts: str) -> str:
    digest = hmac.digest(secret.encode(), "|".join(parts).encode(), "sha256")  # one C call: 3 a send
    return base64.urlsafe_b64encode(digest[:18]).decode()


def verify(secret: str, token: str, *parts: str) -> bool:
    return hmac.compare_digest(sign(secret, *parts), token)


@dataclass(frozen=True)
class SendRef:
    """The send a link belongs to."""

    campaign_id: UUID
    run_id: UUID
    step_index: int
    send_id: UUID
    contact_id: UUID

    @cached_property
    def encoded(self) -> str:
        raw = (self.campaign_id.bytes + self.run_id.bytes + self.send_id.bytes + self.contact_id.bytes
               + self.step_index.to_bytes(2, "big"))
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decoded(cls, text: str) -> "SendRef | None":
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except ValueError:
            return None
        if len(raw) != 66:
            return None
        ids = [UUID(bytes=raw[i:i + 16]) for i in range(0, 64, 16)]
        return cls(ids[0], ids[1], int.from_bytes(raw[64:], "big"), ids[2], ids[3])


def open_url(base_url: str, secret: str, ref: SendRef) -> str:
    encoded = ref.encoded
    return f"{base_url.rstrip('/')}/t/o/{encoded}/{sign(secret, OPEN, encoded)}.gif"


def click_url(base_url: str, secret: str, ref: SendRef, target: str) -> str:
    encoded = ref.encoded
    return f"{base_url.rstrip('/')}/t/c/{encoded}/{sign(secret, CLICK, encoded, target)}?u={_quoted(target)}"


@lru_cache(maxsize=1024)  # a campaign's few link targets, for every one of its emails
def _quoted(target: str) -> str:
    return quote(target, safe="")


def unsubscribe_url(base_url: str, secret: str, ref: SendRef) -> str:
    encoded = ref.encoded
    return f"{base_url.rstrip('/')}/u/{encoded}/{sign(secret, UNSUBSCRIBE, encoded)}"


def signed_ref(secret: str, kind: str, encoded: str, token: str, *extra: str) -> SendRef | None:
    """The send of a link whose token is right, else None."""
    ref = SendRef.decoded(encoded)
    if ref is None or not verify(secret, token, kind, encoded, *extra):
        return None
    return ref


# Literal http(s) URLs in a template's href attributes: the only ones a click may lead to.
_HREF = re.compile(r"""href\s*=\s*(["'])(https?://[^"'{}<>\s]+)\1""", re.IGNORECASE)


@lru_cache(maxsize=256)  # a campaign's few templates, for every one of its emails
def template_urls(html_template: str) -> frozenset[str]:
    return frozenset(match.group(2) for match in _HREF.finditer(html_template))
