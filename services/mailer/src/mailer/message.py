"""Builds the email of a send as the bytes SMTP carries: rendered templates in a
multipart/alternative (text, then HTML), headers that cannot be injected into.

Written out directly rather than through email.message.EmailMessage, whose header
registry and generator cost a millisecond an email; the unit tests parse the result
back with the standard library's parser to hold it to the same standard."""

import base64
import html
import os
import re
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr
from functools import lru_cache
from uuid import UUID

from contracts.events import EmailTest, SendDue
from contracts.links import SendRef, click_url, open_url, template_urls, unsubscribe_url
from contracts.steps import EmailContent
from contracts.templates import render
from mailer.addresses import Address

CRLF = "\r\n"


def _one_line(value: str) -> str:
    """Header values never carry CR or LF: nothing a template renders can add a header."""
    return " ".join(value.splitlines()).strip()


def _header(name: str, value: str) -> str:
    """`Name: value`, folded, non-ASCII as RFC 2047 encoded words."""
    value = _one_line(value)
    if value.isascii() and len(name) + 2 + len(value) <= _SHORT_LINE and "=?" not in value:
        return value  # what Header gives a short ASCII value, in a fiftieth of its time
    return Header(value, "utf-8" if not value.isascii() else None, header_name=name).encode(linesep=CRLF)


# RFC 5322 2.1.1's 78, less a margin: Header folds at 76.
_SHORT_LINE = 76


def _part(content_type: str, body: str) -> str:
    encoded = _base64_lines(body.encode())
    return (f"Content-Type: {content_type}; charset=utf-8{CRLF}Content-Transfer-Encoding: base64{CRLF}{CRLF}"
            f"{encoded}")


def _base64_lines(data: bytes) -> str:
    """What base64.encodebytes gives (lines of 76, RFC 2045 6.8), CRLF-ended, in one
    encoding of the whole: encodebytes encodes and joins line by line in Python."""
    encoded = base64.b64encode(data).decode()
    return "".join(f"{encoded[start:start + 76]}{CRLF}" for start in range(0, len(encoded), 76))


def build_message(send: SendDue, to: Address, mail_from: str, public_base_url: str, secret: str) -> bytes:
    fields = send.recipient.template_fields()
    content = send.content
    domain = _domain_of(mail_from)
    ref = SendRef(send.campaign_id, send.run_id, send.step_index, send.send_id, send.recipient.contact_id)
    link = unsubscribe_url(public_base_url, secret, ref)
    mailto = f"mailto:unsubscribe@{domain}?subject=unsubscribe%20{send.send_id}"  # a UUID needs no quoting
    headers = [
        f"From: {_from(mail_from)}",
        f"To: {_to(to)}",
        f"Subject: {_header('Subject', render(content.subject, fields))}",
        f"Date: {formatdate(send.due_at.timestamp(), usegmt=True)}",
        # Stable: a resend after a crash carries the same id, so receivers can drop the copy.
        f"Message-ID: <{send.send_id}@{domain}>",
        f"List-Unsubscribe: <{link}>, <{mailto}>",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
    ]
    html_part = None
    if content.html:
        rendered = render(content.html, fields, html=True)
        html_part = tracked(rendered, template_urls(content.html), public_base_url, secret, ref)
    return _message(headers, _text(content, fields), html_part)


@dataclass(frozen=True)
class RenderedTest:
    """A test of an email step, rendered once for its recipient (as a real send of the step
    would be, less the tracking): what each of its addresses is sent."""

    test_id: UUID
    subject: str  # "[Test] " and the rendered subject
    text: str
    html: str | None  # as rendered: no click redirects, no open pixel


def render_test(test: EmailTest) -> RenderedTest:
    """Raises what the templates raise when they cannot render for this recipient."""
    fields = test.recipient.template_fields()
    content = test.content
    html_part = render(content.html, fields, html=True) if content.html else None
    return RenderedTest(test.test_id, "[Test] " + render(content.subject, fields), _text(content, fields), html_part)


def build_test_message(test: RenderedTest, index: int, to: Address, mail_from: str, now: datetime) -> bytes:
    """The email of a test to its `index`-th address: no List-Unsubscribe (a test is not a
    send of a campaign, and has no send to unsubscribe from), a Message-ID of its own per
    address, stable across retries."""
    domain = _domain_of(mail_from)
    headers = [
        f"From: {_from(mail_from)}",
        f"To: {_to(to)}",
        f"Subject: {_header('Subject', test.subject)}",
        f"Date: {formatdate(now.timestamp(), usegmt=True)}",
        f"Message-ID: <{test.test_id}.{index}@{domain}>",
    ]
    return _message(headers, test.text, test.html)


@lru_cache(maxsize=16)  # MAIL_FROM: the same for every email
def _domain_of(mail_from: str) -> str:
    return parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"


@lru_cache(maxsize=16)
def _from(mail_from: str) -> str:
    name, address = parseaddr(mail_from)
    return formataddr((_one_line(name), address), charset="utf-8")


def _to(to: Address) -> str:
    return to.display if to.needs_smtputf8 else to.envelope


def _text(content: EmailContent, fields: dict) -> str:
    return render(content.text, fields) if content.text else "This email has an HTML part only."


def _message(headers: list[str], text: str, html_part: str | None) -> bytes:
    """The headers, then multipart/alternative: the text, and the HTML when there is one."""
    parts = [_part("text/plain", text)]
    if html_part is not None:
        parts.append(_part("text/html", html_part))
    boundary = "=_" + os.urandom(12).hex()
    body = "".join(f"--{boundary}{CRLF}{part}" for part in parts) + f"--{boundary}--{CRLF}"
    headers = [*headers, "MIME-Version: 1.0", f'Content-Type: multipart/alternative; boundary="{boundary}"']
    return (CRLF.join(headers) + CRLF + CRLF + body).encode()


_HREF = re.compile(r"""(href\s*=\s*)(["'])([^"']*)\2""", re.IGNORECASE)


def tracked(rendered: str, allowed: frozenset[str], base_url: str, secret: str, ref: SendRef) -> str:
    """Links whose address was written in the template go through a signed click redirect
    (one made of a contact's data does not: it was never the template's); an open pixel
    closes the body."""
    def redirect(match: re.Match) -> str:
        if match.group(3) not in allowed:
            return match.group(0)
        target = html.unescape(match.group(3))
        return f"{match.group(1)}{match.group(2)}{html.escape(click_url(base_url, secret, ref, target))}{match.group(2)}"

    pixel = f'<img src="{html.escape(open_url(base_url, secret, ref))}" width="1" height="1" alt="">'
    body = _HREF.sub(redirect, rendered)
    closing = body.lower().rfind("</body>")
    return body[:closing] + pixel + body[closing:] if closing >= 0 else body + pixel
