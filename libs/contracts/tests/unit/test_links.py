from uuid import uuid4

from contracts.links import sign, unsubscribe_url, verify


def test_a_link_verifies_only_with_its_secret_and_its_own_parts():
    send, contact = str(uuid4()), str(uuid4())
    token = sign("secret", "unsubscribe", send, contact)
    assert verify("secret", token, "unsubscribe", send, contact)
    assert not verify("other secret", token, "unsubscribe", send, contact)
    assert not verify("secret", token, "unsubscribe", send, str(uuid4()))
    assert not verify("secret", token[:-1] + ("A" if token[-1] != "A" else "B"), "unsubscribe", send, contact)


def test_the_unsubscribe_url_carries_the_send_the_contact_and_their_token():
    send, contact = uuid4(), uuid4()
    url = unsubscribe_url("https://mail.example.com/", "secret", send, contact)
    assert url.startswith(f"https://mail.example.com/u/{send}/{contact}/")
    assert verify("secret", url.rsplit("/", 1)[1], "unsubscribe", str(send), str(contact))
