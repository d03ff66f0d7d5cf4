from uuid import uuid4

from contracts.links import (
    OPEN,
    UNSUBSCRIBE,
    SendRef,
    sign,
    signed_ref,
    template_urls,
    unsubscribe_url,
    verify,
)


def test_a_link_verifies_only_with_its_secret_and_its_own_parts():
    send, contact = str(uuid4()), str(uuid4())
    token = sign("secret", "unsubscribe", send, contact)
    assert verify("secret", token, "unsubscribe", send, contact)
    assert not verify("other secret", token, "unsubscribe", send, contact)
    assert not verify("secret", token, "unsubscribe", send, str(uuid4()))
    assert not verify("secret", token[:-1] + ("A" if token[-1] != "A" else "B"), "unsubscribe", send, contact)


def ref() -> SendRef:
    return SendRef(uuid4(), uuid4(), 7, uuid4(), uuid4())


def test_a_send_reference_packs_and_unpacks_every_part():
    original = ref()
    assert SendRef.decoded(original.encoded) == original
    assert SendRef.decoded("not-base64!") is None and SendRef.decoded("QUJD") is None


def test_the_unsubscribe_url_carries_the_send_and_its_token():
    original = ref()
    url = unsubscribe_url("https://mail.example.com/", "secret", original)
    assert url.startswith(f"https://mail.example.com/u/{original.encoded}/")
    encoded, token = url.split("/")[-2:]
    assert signed_ref("secret", UNSUBSCRIBE, encoded, token) == original
    assert signed_ref("secret", OPEN, encoded, token) is None, "a token is for one kind of link"


def test_template_urls_are_the_literal_http_links_of_the_template():
    template = ('<a href="https://a.example/x?y=1&amp;z=2">a</a> <A HREF=\'http://b.example\'>b</A>'
                ' <a href="{{ attributes.url }}">c</a> <a href="https://c.example/{{ first_name }}">d</a>'
                ' <a href="mailto:m@example.com">e</a>')
    assert template_urls(template) == {"https://a.example/x?y=1&amp;z=2", "http://b.example"}
