"""Mail transactions on a connection aiosmtplib opened (greeting, EHLO, STARTTLS, AUTH),
written here because aiosmtplib waits for each reply before the next command and cannot
pipeline. With PIPELINING (RFC 2920) MAIL FROM, RCPT TO and DATA go in one write and the
message in a second: two writes and two round trips an email instead of four (against
smtp-sink, 16 connections: about 50 µs of CPU an email, where aiosmtplib took 160).
Without it, the same commands go one at a time."""

import asyncio
import re
from collections import deque

from mailer.domain import SmtpAnswer, Stage

_LONGEST_REPLY = 64 * 1024  # RFC 5321 4.5.3.1.5: 512 a line; a few lines at most
_LINE_START_DOT = re.compile(rb"(?m)^\.")
_LONE_LINE_ENDS = re.compile(rb"\r\n|\r|\n")


class ReplyError(ConnectionError):
    """The connection is gone, or the server said something that is not an SMTP reply."""


class Replies(asyncio.Protocol):
    """The server's replies on a transport taken over from aiosmtplib, read in order."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._buffer = bytearray()
        self._lines: list[str] = []  # of a multi-line reply still coming
        self._replies: deque[tuple[int, str]] = deque()
        self._waiter: asyncio.Future | None = None
        self._lost: ReplyError | None = None
        transport.set_protocol(self)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\n")) >= 0:
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[:end + 1]
            if len(line) < 3 or not line[:3].isdigit() or line[3:4] not in (b"", b" ", b"-"):
                return self._fail(ReplyError(f"not an SMTP reply: {line[:100]!r}"))
            self._lines.append(line[4:].decode("utf-8", "surrogateescape").strip())
            if line[3:4] != b"-":
                self._replies.append((int(line[:3]), "\n".join(self._lines)))
                self._lines = []
        if len(self._buffer) > _LONGEST_REPLY:
            return self._fail(ReplyError("reply too long"))
        self._wake()

    def eof_received(self) -> bool:
        self._fail(ReplyError("the server closed the connection"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = self._lost or ReplyError(f"connection lost: {exc!r}" if exc else "connection closed")
        self._wake()

    def _fail(self, error: ReplyError) -> None:
        self._lost = error
        self._transport.close()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def write(self, data: bytes) -> None:
        if self._lost is not None or self._transport.is_closing():
            raise self._lost or ReplyError("connection closed")
        self._transport.write(data)

    async def reply(self, timeout: float) -> tuple[int, str]:
        """The next reply: raises ReplyError when the connection is gone, TimeoutError when
        none comes within `timeout` seconds."""
        while not self._replies:
            if self._lost is not None:
                raise self._lost
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            timer = loop.call_later(timeout, _expire, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        return self._replies.popleft()


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("no reply in time"))


def stuffed(message: bytes) -> bytes:
    """The message as DATA carries it: CRLF line ends, a leading dot doubled, and the end."""
    if message.count(b"\n") != message.count(b"\r\n") or message.count(b"\r") != message.count(b"\r\n"):
        message = _LONE_LINE_ENDS.sub(b"\r\n", message)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    if b"\n." in message or message.startswith(b"."):
        message = _LINE_START_DOT.sub(b"..", message)
    return message + b".\r\n"


async def transaction(replies: Replies, sender: str, recipient: str, message: bytes, smtputf8: bool,
                      pipelining: bool, timeout: float) -> SmtpAnswer:
    """One mail transaction: the answer that ended it, at its stage. No answer at all is
    code None, `handed_over` once the message itself was written."""
    encoding = "utf-8" if smtputf8 else "ascii"
    commands = [(Stage.MAIL_FROM, b"MAIL FROM:<%s>%s\r\n" % (sender.encode(encoding), b" SMTPUTF8" if smtputf8 else b"")),
                (Stage.RCPT_TO, b"RCPT TO:<%s>\r\n" % recipient.encode(encoding)),
                (Stage.DATA, b"DATA\r\n")]
    stage, handed_over = Stage.MAIL_FROM, False
    try:
        if pipelining:
            replies.write(b"".join(command for _, command in commands))
        refusal = None
        for stage, command in commands:
            if not pipelining:
                replies.write(command)
            code, text = await replies.reply(timeout)
            if not _expected(stage, code):
                refusal = refusal or SmtpAnswer(stage, code, text)  # the first: the others follow from it
                if not pipelining:
                    return refusal
            elif refusal is not None and stage is Stage.DATA:
                # RFC 2920 3.1: a DATA accepted after a refused recipient gets an empty message.
                replies.write(b".\r\n")
                await replies.reply(timeout)
        if refusal is not None:
            return refusal
        stage = Stage.DATA
        replies.write(stuffed(message))
        handed_over = True
        code, text = await replies.reply(timeout)
        return SmtpAnswer(Stage.DATA, code, text)
    except (OSError, TimeoutError) as error:  # ReplyError is an OSError
        return SmtpAnswer(stage, None, repr(error), handed_over=handed_over)


def _expected(stage: Stage, code: int) -> bool:
    if stage is Stage.RCPT_TO:
        return code in (250, 251)
    return code == (354 if stage is Stage.DATA else 250)
