"""The hand-built MIME, parsed back by the standard library."""

import base64
import html
import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from uuid import uuid4

from contracts.events import Recipient, SendDue
from contracts.steps import EmailContent
from mailer.addresses import parse_address
from mailer.message import _base64_lines, build_message


def parsed(subject="Hello {{ first_name }}", first_name="Ada", html="<p>Hi {{ first_name }}</p>",
           to="ada@example.com", mail_from="News <news@example.com>"):
    send = SendDue(
        send_id=uuid4(), campaign_id=uuid4(), run_id=uuid4(), step_index=0, due_at=datetime(2026, 6, 1, tzinfo=UTC),
        recipient=Recipient(contact_id=uuid4(), email=to, first_name=first_name),
        content=EmailContent(subject=subject, text="Hi {{ first_name }}", html=html),
    )
    raw = build_message(send, parse_address(to), mail_from, "https://x.test", "secret")
    return send, raw, message_from_bytes(raw, policy=policy.default)


def test_a_multipart_alternative_with_text_then_html_and_the_headers_a_sender_needs():
    send, raw, message = parsed()
    assert message.get_content_type() == "multipart/alternative" and not message.defects
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message.get_body(("plain",)).get_content() == "Hi Ada"
    html_part = message.get_body(("html",)).get_content()
    assert html_part.startswith("<p>Hi Ada</p><img src=\"https://x.test/t/o/") and html_part.endswith('.gif" width="1" height="1" alt="">')
    assert message["Subject"] == "Hello Ada" and message["To"] == "ada@example.com"
    assert message["From"].addresses[0].display_name == "News"
    assert message["Message-ID"] == f"<{send.send_id}@example.com>"
    assert message["List-Unsubscribe"].startswith("<https://x.test/u/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert b"\n" not in raw.replace(b"\r\n", b""), "every line ends in CRLF"


def test_non_ascii_subjects_and_names_travel_encoded_and_come_back_whole():
    _, raw, message = parsed(subject="Grüße, {{ first_name }} 🎉", first_name="Zoë", mail_from="Bücher Co <b@example.com>")
    assert raw.isascii()
    assert message["Subject"] == "Grüße, Zoë 🎉"
    assert message["From"].addresses[0].display_name == "Bücher Co"
    assert message.get_body(("plain",)).get_content() == "Hi Zoë"


def test_a_long_subject_is_folded_under_the_line_limit_and_unfolds_intact():
    subject = "word " * 150 + "{{ first_name }}"
    _, raw, message = parsed(subject=subject)
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert message["Subject"] == ("word " * 150 + "Ada")


def test_a_subject_with_cr_lf_cannot_add_a_header():
    _, raw, message = parsed(subject="{{ first_name }}", first_name="x\r\nBcc: victim@example.com")
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in headers and message["Bcc"] is None
    assert message["Subject"] == "x Bcc: victim@example.com"


def test_names_are_escaped_in_the_html_part():
    _, _, message = parsed(first_name="<script>")
    assert "&lt;script&gt;" in message.get_body(("html",)).get_content()


def test_an_email_with_text_only_has_no_html_part():
    _, _, message = parsed(html="")
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain"]


def test_links_written_in_the_template_are_signed_redirects_and_others_are_left_alone():
    from urllib.parse import parse_qs, urlsplit

    from contracts.links import CLICK, OPEN, signed_ref

    template = ('<body><a href="https://shop.example/sale?a=1&amp;b=2">Sale</a>'
                ' <a href="{{ attributes.own }}">Yours</a> <a href="mailto:x@example.com">Mail</a></body>')
    send, _, message = parsed(html=template)
    body = message.get_body(("html",)).get_content()
    hrefs = re.findall(r'href="([^"]*)"', body)
    assert hrefs[1:] == ["", "mailto:x@example.com"]  # from contact data, or not http: not tracked
    click = urlsplit(html.unescape(hrefs[0]))
    assert click.netloc == "x.test" and click.path.startswith("/t/c/")
    _, _, _, encoded, token = click.path.split("/")
    target = parse_qs(click.query)["u"][0]
    assert target == "https://shop.example/sale?a=1&b=2"
    ref = signed_ref("secret", CLICK, encoded, token, target)
    assert (ref.send_id, ref.contact_id, ref.campaign_id) == (send.send_id, send.recipient.contact_id, send.campaign_id)
    assert signed_ref("secret", CLICK, encoded, token, "https://evil.example/") is None
    assert signed_ref("other secret", CLICK, encoded, token, target) is None
    pixel = re.search(r'<img src="([^"]*)"', body).group(1)
    _, _, _, encoded, token = urlsplit(pixel).path.split("/")
    assert body.index("<img") < body.index("</body>")
    assert signed_ref("secret", OPEN, encoded, token.removesuffix(".gif")).send_id == send.send_id


def test_a_part_is_in_the_base64_lines_of_the_standard_library_crlf_ended():
    for size in (0, 1, 56, 57, 58, 114, 1000, 4097):
        data = bytes(range(256)) * (size // 256 + 1)
        assert _base64_lines(data[:size]) == base64.encodebytes(data[:size]).decode().replace("\n", "\r\n")
