"""Mail transactions on a connection aiosmtplib opened (greeting, EHLO, STARTTLS, AUTH),
written here because aiosmtplib waits for each reply before the next command and cannot
pipeline. With PIPELINING (RFC 2920) MAIL FROM, RCPT TO and DATA go in one write, and
the message of the transaction before (`Carried`) may open it: one write and one round
trip an email on a busy connection. Without it, the same commands go one at a time."""

import asyncio
import re
from collections import deque
from collections.abc import Callable

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


class Carried:
    """A message whose DATA had its 354, handed on to be written with the commands of the
    next transaction on the connection (RFC 2920 3.1: the message may open a group), and
    the answer to it, for its own send."""

    def __init__(self, message: bytes) -> None:
        self.message = message  # stuffed
        self.written = False
        self.answer: asyncio.Future[SmtpAnswer] = asyncio.get_running_loop().create_future()

    def answered(self, answer: SmtpAnswer) -> None:
        if not self.answer.done():
            self.answer.set_result(answer)


async def write_message(replies: Replies, carried: Carried, timeout: float, commands: bytes = b"") -> SmtpAnswer:
    """The carried message written, with `commands` after it in the same write, and the
    answer to it (the first reply), which it is also given."""
    try:
        replies.write(carried.message + commands)
        carried.written = True
        code, text = await replies.reply(timeout)
        answer = SmtpAnswer(Stage.DATA, code, text)
    except (OSError, TimeoutError) as error:  # ReplyError is an OSError
        answer = SmtpAnswer(Stage.DATA, None, repr(error), handed_over=carried.written)
    carried.answered(answer)
    return answer


async def transaction(replies: Replies, sender: str, recipient: str, message: bytes, smtputf8: bool,
                      pipelining: bool, timeout: float, carried: Carried | None = None,
                      hand_on: Callable[[bytes], Carried | None] | None = None) -> SmtpAnswer | Carried:
    """One mail transaction: the answer that ended it, at its stage. No answer at all is
    code None, `handed_over` once the message itself was written. With PIPELINING, the
    message `carried` from the transaction before opens its first write; and once DATA has
    its 354, `hand_on` may take the message to the next transaction: its Carried is then
    returned, whose answer comes when that one reads it."""
    encoding = "utf-8" if smtputf8 else "ascii"
    commands = [(Stage.MAIL_FROM, b"MAIL FROM:<%s>%s\r\n" % (sender.encode(encoding), b" SMTPUTF8" if smtputf8 else b"")),
                (Stage.RCPT_TO, b"RCPT TO:<%s>\r\n" % recipient.encode(encoding)),
                (Stage.DATA, b"DATA\r\n")]
    stage, handed_over = Stage.MAIL_FROM, False
    if pipelining and carried is not None:
        before = await write_message(replies, carried, timeout, b"".join(command for _, command in commands))
        if before.code is None:  # the connection is gone, and this transaction's commands with it
            return SmtpAnswer(stage, None, before.text)
    try:
        if pipelining and carried is None:
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
        body = stuffed(message)
        if hand_on is not None and (handed := hand_on(body)) is not None:
            return handed
        replies.write(body)
        handed_over = True
        code, text = await replies.reply(timeout)
        return SmtpAnswer(Stage.DATA, code, text)
    except (OSError, TimeoutError) as error:  # ReplyError is an OSError
        return SmtpAnswer(stage, None, repr(error), handed_over=handed_over)


def _expected(stage: Stage, code: int) -> bool:
    if stage is Stage.RCPT_TO:
        return code in (250, 251)
    return code == (354 if stage is Stage.DATA else 250)
