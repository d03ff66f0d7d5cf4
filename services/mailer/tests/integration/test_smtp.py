"""The SMTP adapter on the real aiosmtpd server: each refusal comes back as the answer that
ended the transaction, at its stage, and the domain tells the server's from the recipient's."""

import asyncio
import ssl
import subprocess

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller

from mailer.adapters.pipeline import Replies
from mailer.adapters.smtp import SmtpConnection, SmtpPool
from mailer.domain import SmtpAnswer, Stage, is_the_servers
from mailer.settings import Settings
from tests.support.ports import free_port
from tests.support.smtp import RecordingHandler, SmtpServer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("pipelining")]

SECRET = "integration-tracking-secret"
MESSAGE = b"Subject: hi\r\nMessage-ID: <x@example.com>\r\n\r\nHello\r\n"


@pytest.fixture(params=[True, False], ids=["pipelining", "one-command-at-a-time"])
def pipelining(request, monkeypatch):
    """Every test here runs on a server that offers PIPELINING and on one that does not."""
    monkeypatch.setattr(SmtpServer, "pipelining", request.param)
    return request.param


async def send_one(port: int, auth: tuple[str, str] | None = None, smtp_timeout: float = 5.0) -> SmtpAnswer:
    user, password = auth or (None, None)
    pool = SmtpPool(Settings(smtp_port=port, smtp_username=user, smtp_password=password, smtp_connections=1,
                             smtp_timeout_seconds=smtp_timeout, tracking_secret=SECRET))
    try:
        async with pool.connection() as connection:
            return await connection.send(MESSAGE, "news@example.com", "ada@example.com")
    finally:
        await pool.close()


async def test_a_message_accepted_is_a_2xx_to_its_data():
    with SmtpServer(auth=("user", "secret")) as smtp:
        answer = await send_one(smtp.port, ("user", "secret"))
    assert (answer.stage, answer.code) == (Stage.DATA, 250) and not is_the_servers(answer)
    assert len(smtp.received) == 1


@pytest.mark.parametrize(("refuse", "stage", "code"), [
    ("refuse_greeting", Stage.GREETING, 554),
    ("refuse_auth", Stage.AUTH, 535),
    ("refuse_mail_from", Stage.MAIL_FROM, 550),
])
async def test_the_server_refusing_before_the_recipient_is_the_servers_trouble(refuse, stage, code):
    with SmtpServer(auth=("user", "secret")) as smtp:
        getattr(smtp, refuse)(60)
        answer = await send_one(smtp.port, ("user", "secret"))
    assert (answer.stage, answer.code) == (stage, code), answer
    assert is_the_servers(answer)
    assert not smtp.received


async def test_wrong_credentials_are_an_auth_refusal_and_no_server_is_no_answer():
    with SmtpServer(auth=("user", "secret")) as smtp:
        answer = await send_one(smtp.port, ("user", "wrong"))
    assert (answer.stage, answer.code) == (Stage.AUTH, 535) and is_the_servers(answer)
    nobody = await send_one(free_port(), smtp_timeout=2)
    assert (nobody.stage, nobody.code) == (Stage.CONNECT, None) and is_the_servers(nobody)


@pytest.mark.parametrize(("answer", "code"), [("550 5.1.1 no such user", 550), ("452 4.2.2 mailbox full", 452),
                                               ("554 5.7.1 looks like spam", 554)])
async def test_answers_to_the_message_are_the_recipients(answer, code):
    with SmtpServer() as smtp:
        smtp.handler.answer_next(answer)
        first = await send_one(smtp.port)
        assert (first.stage, first.code) == (Stage.DATA, code) and not is_the_servers(first)
        assert (await send_one(smtp.port)).code == 250, "the session goes on after the refusal"


async def test_a_kept_connection_the_server_dropped_is_opened_again_at_once():
    with SmtpServer() as smtp:
        pool = SmtpPool(Settings(smtp_port=smtp.port, smtp_connections=1, tracking_secret=SECRET))
        try:
            async with pool.connection() as connection:
                assert (await connection.send(MESSAGE, "news@example.com", "a@example.com")).code == 250
            smtp.handler.hang_ups = 1  # the next MAIL FROM finds the connection gone
            async with pool.connection() as connection:
                again = await connection.send(MESSAGE, "news@example.com", "b@example.com")
        finally:
            await pool.close()
    assert (again.stage, again.code) == (Stage.DATA, 250), again
    assert smtp.handler.hang_ups == 0
    assert [mail.envelope_to for mail in smtp.received] == [["a@example.com"], ["b@example.com"]]


async def test_a_refused_recipient_ends_its_transaction_and_the_next_goes_on():
    with SmtpServer() as smtp:
        smtp.handler.refuse_recipients.add("gone@example.com")
        pool = SmtpPool(Settings(smtp_port=smtp.port, smtp_connections=1, tracking_secret=SECRET))
        try:
            async with pool.connection() as connection:
                refused = await connection.send(MESSAGE, "news@example.com", "gone@example.com")
                accepted = await connection.send(MESSAGE, "news@example.com", "ada@example.com")
        finally:
            await pool.close()
    assert (refused.stage, refused.code) == (Stage.RCPT_TO, 550) and not is_the_servers(refused)
    assert (accepted.stage, accepted.code) == (Stage.DATA, 250), accepted
    assert [mail.envelope_to for mail in smtp.received] == [["ada@example.com"]]


async def test_the_message_arrives_as_written_whatever_its_lines_start_with():
    body = "first\r\n.a line that starts with a dot\r\n..two\r\n.\r\nlast"
    with SmtpServer() as smtp:
        raw = f"Subject: dots\r\nMessage-ID: <d@example.com>\r\n\r\n{body}\r\n".encode()
        pool = SmtpPool(Settings(smtp_port=smtp.port, smtp_connections=1, tracking_secret=SECRET))
        try:
            async with pool.connection() as connection:
                assert (await connection.send(raw, "news@example.com", "ada@example.com")).code == 250
                assert (await connection.send(MESSAGE, "news@example.com", "bob@example.com")).code == 250
        finally:
            await pool.close()
    assert smtp.received[0].message.get_content().replace("\r\n", "\n") == body.replace("\r\n", "\n") + "\n"
    assert [mail.envelope_to for mail in smtp.received] == [["ada@example.com"], ["bob@example.com"]]


@pytest.fixture(scope="module")
def server_tls(tmp_path_factory) -> ssl.SSLContext:
    """A self-signed certificate for 127.0.0.1, made with openssl for this module."""
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


@pytest.mark.parametrize("tls", ["starttls", "tls"])
async def test_transactions_go_over_the_tls_session_aiosmtplib_opened(tls, server_tls):
    handler = RecordingHandler()
    port = free_port()
    encrypted = {"tls_context": server_tls, "require_starttls": True} if tls == "starttls" else {"ssl_context": server_tls}
    controller = Controller(handler, hostname="127.0.0.1", port=port, **encrypted)
    controller.start()
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=tls == "starttls", use_tls=tls == "tls",
                             validate_certs=False, timeout=5)
    connection = SmtpConnection(client, timeout=5)
    try:
        answers = [await connection.send(MESSAGE, "news@example.com", f"{name}@example.com") for name in ("ada", "bob")]
    finally:
        await connection.close()
        controller.stop()
    assert [(answer.stage, answer.code) for answer in answers] == [(Stage.DATA, 250)] * 2, answers
    assert [mail.envelope_to for mail in handler.received] == [["ada@example.com"], ["bob@example.com"]]


async def _send_side_by_side(pool: SmtpPool, recipients: list[str]) -> list[SmtpAnswer]:
    async def one(recipient: str) -> SmtpAnswer:
        async with pool.connection() as connection:
            return await connection.send(MESSAGE.replace(b"<x@", f"<{recipient}@".encode()), "news@example.com",
                                         recipient)

    return await asyncio.gather(*(one(recipient) for recipient in recipients))


async def test_sends_waiting_for_the_connection_each_go_in_one_write_with_the_message_before(monkeypatch,
                                                                                             pipelining):
    writes = []
    original = Replies.write
    monkeypatch.setattr(Replies, "write", lambda self, data: (writes.append(data), original(self, data))[1])
    recipients = [f"r{n}@example.com" for n in range(20)]
    with SmtpServer() as smtp:
        smtp.handler.answer_next("554 5.7.1 looks like spam")  # the first message, carried by the second's write
        pool = SmtpPool(Settings(smtp_port=smtp.port, smtp_connections=1, tracking_secret=SECRET))
        try:
            answers = await _send_side_by_side(pool, recipients)
        finally:
            await pool.close()
    assert [(answer.stage, answer.code) for answer in answers] == [(Stage.DATA, 554 if n == 0 else 250)
                                                                   for n in range(20)]
    assert sorted(mail.envelope_to[0] for mail in smtp.received) == sorted(set(recipients) - {"r0@example.com"})
    transactions = len([data for data in writes if data != b"QUIT\r\n"])
    # One write an email (and the last message alone), against two a transaction before;
    # without PIPELINING each command still goes alone.
    assert transactions == (21 if pipelining else 20 * 4 + 1), transactions


async def test_a_message_handed_on_is_written_alone_when_its_taker_sends_nothing(pipelining):
    with SmtpServer() as smtp:
        pool = SmtpPool(Settings(smtp_port=smtp.port, smtp_connections=1, tracking_secret=SECRET))
        taken = asyncio.Event()

        async def first() -> SmtpAnswer:
            async with pool.connection() as connection:
                taken.set()
                return await connection.send(MESSAGE, "news@example.com", "ada@example.com")

        async def second_sends_nothing() -> None:  # its campaign was paused while it waited
            await taken.wait()
            async with pool.connection():
                pass

        try:
            answer, _ = await asyncio.gather(first(), second_sends_nothing())
            again = await _send_side_by_side(pool, ["bob@example.com"])
        finally:
            await pool.close()
    assert (answer.stage, answer.code) == (Stage.DATA, 250), answer
    assert again[0].code == 250
    assert [mail.envelope_to for mail in smtp.received] == [["ada@example.com"], ["bob@example.com"]]


async def test_a_connection_lost_behind_a_handed_on_message_still_answers_it_and_the_next_goes_again(pipelining):
    with SmtpServer() as smtp:
        pool = SmtpPool(Settings(smtp_port=smtp.port, smtp_connections=1, tracking_secret=SECRET))
        try:
            # The second MAIL FROM, written after the first message, finds the line cut.
            smtp.handler.hang_ups, smtp.handler.mails_before_hang_up = 1, 1
            answers = await _send_side_by_side(pool, ["a@example.com", "b@example.com", "c@example.com"])
        finally:
            await pool.close()
    assert [answer.code for answer in answers] == [250, 250, 250], answers
    assert smtp.handler.hang_ups == 0
    assert sorted(mail.envelope_to[0] for mail in smtp.received) == ["a@example.com", "b@example.com", "c@example.com"]
