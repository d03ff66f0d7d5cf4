"""Builds the email of a send: rendered templates, multipart/alternative, safe headers."""

from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, parseaddr
from urllib.parse import quote

from contracts.events import SendDue
from contracts.links import unsubscribe_url
from contracts.templates import render
from mailer.addresses import Address


def _one_line(value: str) -> str:
    """Header values never carry CR or LF: nothing a template renders can add a header."""
    return " ".join(value.splitlines()).replace("\r", " ").replace("\n", " ").strip()


def build_message(send: SendDue, to: Address, mail_from: str, public_base_url: str, secret: str) -> EmailMessage:
    fields = send.recipient.template_fields()
    content = send.content
    message = EmailMessage(policy=SMTPUTF8 if to.needs_smtputf8 else SMTP)
    from_name, from_address = parseaddr(mail_from)
    domain = from_address.rpartition("@")[2] or "localhost"
    message["From"] = HeaderAddress(_one_line(from_name), addr_spec=from_address) if from_name else from_address
    message["To"] = HeaderAddress(addr_spec=to.display if to.needs_smtputf8 else to.envelope)
    message["Subject"] = _one_line(render(content.subject, fields))
    message["Date"] = format_datetime(send.due_at)
    # Stable: a resend after a crash carries the same id, so receivers can drop the copy.
    message["Message-ID"] = f"<{send.send_id}@{domain}>"
    link = unsubscribe_url(public_base_url, secret, send.send_id, send.recipient.contact_id)
    message["List-Unsubscribe"] = f"<{link}>, <mailto:unsubscribe@{domain}?subject={quote('unsubscribe ' + str(send.send_id))}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    text = render(content.text, fields) if content.text else None
    html = render(content.html, fields, html=True) if content.html else None
    message.set_content(text or "This email has an HTML part only.")
    if html:
        message.add_alternative(html, subtype="html")
    return message
