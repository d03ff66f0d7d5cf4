"""A real SMTP server on loopback (aiosmtpd) that records what it receives, can answer
4xx or 5xx on demand, can be slowed down like a busy server, can require AUTH, and can
refuse for a while the greeting (554), AUTH (535) or MAIL FROM (550), as a server that is
down, whose credentials were rotated, or that blocks the sender would."""

import asyncio
import time
import warnings
from collections import Counter, deque
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from tests.support.ports import free_port


@dataclass
class Received:
    at: float  # time.monotonic() when DATA ended
    envelope_to: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def text(self) -> str:
        part = self.message.get_body(("plain",))
        return part.get_content() if part else ""


class RecordingHandler:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.attempts: Counter[str] = Counter()  # DATA commands per recipient, refused ones too
        self.answers: deque[str] = deque()  # e.g. "451 4.3.0 try later"; used first-in first-out
        self.delay = 0.0  # seconds each DATA takes: with the mailer's 16 connections, 0.08 is ~200 messages/s

        self.credentials: tuple[str, str] | None = None  # AUTH required with these (SmtpServer(auth=...))
        self._refusing: dict[str, tuple[float, str]] = {}  # "greeting", "auth", "mail_from": (until, answer)
        self.refused: Counter[str] = Counter()  # refusals made, by what was refused
        self.hang_ups = 0  # MAIL FROM commands still to be answered by closing the connection
        self.mails_before_hang_up = 0  # MAIL FROM commands answered before the hang-ups begin
        self.pipelining = True  # offered in EHLO (aiosmtpd reads commands in order, however they come)
        self.refuse_recipients: set[str] = set()  # answered 550 at RCPT TO

    def answer_next(self, *answers: str) -> None:
        self.answers.extend(answers)

    def refuse(self, what: str, seconds: float, answer: str) -> None:
        self._refusing[what] = (time.monotonic() + seconds, answer)

    def refusal(self, what: str) -> str | None:
        """The answer that refuses `what` now, if it is being refused; counted."""
        until, answer = self._refusing.get(what, (0.0, ""))
        if time.monotonic() >= until:
            return None
        self.refused[what] += 1
        return answer

    def authenticate(self, server, session, envelope, mechanism: str, auth_data) -> AuthResult:
        if (refused := self.refusal("auth")) is not None:
            return AuthResult(success=False, handled=False, message=refused)
        if not isinstance(auth_data, LoginPassword) or self.credentials is None:
            return AuthResult(success=False, handled=False)
        given = (auth_data.login.decode(), auth_data.password.decode())
        return AuthResult(success=given == self.credentials, handled=False)

    async def handle_EHLO(self, server, session, envelope, hostname, responses) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]] if self.pipelining else responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address in self.refuse_recipients:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> str:
        if self.hang_ups and self.mails_before_hang_up:
            self.mails_before_hang_up -= 1
        elif self.hang_ups:  # the connection goes without an answer, as one the server dropped while idle
            self.hang_ups -= 1
            server.transport.close()
            return "421 4.4.2 gone"  # never read: the connection is closed
        if (refused := self.refusal("mail_from")) is not None:
            return refused
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.attempts.update(envelope.rcpt_tos)
        if self.answers:
            return self.answers.popleft()
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        self.received.append(Received(time.monotonic(), list(envelope.rcpt_tos), message))
        return "250 OK"


class _Smtp(SMTP):
    async def _handle_client(self) -> None:
        if (refused := self.event_handler.refusal("greeting")) is not None:
            await self.push(refused)  # and goes: a server that will not serve this connection
            self.transport.close()
            return
        await super()._handle_client()


class _Controller(Controller):
    def factory(self) -> SMTP:
        with warnings.catch_warnings():  # AUTH over plain text: on loopback, in a test
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return _Smtp(self.handler, **self.SMTP_kwargs)


class SmtpServer:
    """`SmtpServer(auth=("user", "secret"))` requires AUTH (over plain text: a test)."""

    pipelining = True  # offered to clients (a test may take it away)

    def __init__(self, auth: tuple[str, str] | None = None) -> None:
        self.handler = RecordingHandler()
        self.handler.credentials = auth
        self.handler.pipelining = self.pipelining
        self.port = free_port()
        extra = {"authenticator": self.handler.authenticate, "auth_required": True,
                 "auth_require_tls": False} if auth else {}
        self._controller = _Controller(self.handler, hostname="127.0.0.1", port=self.port, **extra)

    def __enter__(self) -> "SmtpServer":
        self._controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self._controller.stop()

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    @property
    def attempts(self) -> Counter[str]:
        return self.handler.attempts

    @property
    def refused(self) -> Counter[str]:
        return self.handler.refused

    def refuse_greeting(self, seconds: float, answer: str = "554 5.3.2 not accepting connections now") -> None:
        self.handler.refuse("greeting", seconds, answer)

    def refuse_auth(self, seconds: float, answer: str = "535 5.7.8 Authentication credentials invalid") -> None:
        self.handler.refuse("auth", seconds, answer)

    def refuse_mail_from(self, seconds: float, answer: str = "550 5.7.1 sender not allowed now") -> None:
        self.handler.refuse("mail_from", seconds, answer)
