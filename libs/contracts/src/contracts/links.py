"""Signed links the mailer puts in emails and campaign-api answers (unsubscribe, and
later tracking): an HMAC-SHA256 over what the link is about, so a tampered or foreign
link is refused."""

import base64
import hashlib
import hmac
from uuid import UUID


def sign(secret: str, *parts: str) -> str:
    digest = hmac.new(secret.encode(), "|".join(parts).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def verify(secret: str, token: str, *parts: str) -> bool:
    return hmac.compare_digest(sign(secret, *parts), token)


def unsubscribe_url(base_url: str, secret: str, send_id: UUID, contact_id: UUID) -> str:
    token = sign(secret, "unsubscribe", str(send_id), str(contact_id))
    return f"{base_url.rstrip('/')}/u/{send_id}/{contact_id}/{token}"
