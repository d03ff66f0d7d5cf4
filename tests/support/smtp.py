"""A real SMTP server on loopback (aiosmtpd) that records what it receives, can answer
4xx or 5xx on demand, and can be slowed down like a busy server."""

import asyncio
import time
from collections import Counter, deque
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

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

    def answer_next(self, *answers: str) -> None:
        self.answers.extend(answers)

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.attempts.update(envelope.rcpt_tos)
        if self.answers:
            return self.answers.popleft()
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        self.received.append(Received(time.monotonic(), list(envelope.rcpt_tos), message))
        return "250 OK"


class SmtpServer:
    def __init__(self) -> None:
        self.handler = RecordingHandler()
        self.port = free_port()
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

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
