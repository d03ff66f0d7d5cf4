"""SMTP delivery through a small pool of persistent connections: aiosmtplib opens each
session, pipeline.py carries its mail transactions."""

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiosmtplib
import structlog

from mailer.adapters.pipeline import Carried, Replies, transaction, write_message
from mailer.domain import CLOSING, SmtpAnswer, Stage
from mailer.settings import Settings

log = structlog.get_logger()


class SmtpPool:
    """Up to `size` connections, each reused across messages and reopened after a failure.
    A connection goes from one send straight to the next one waiting (see SmtpConnection:
    the message of the one may then go in the same write as the commands of the next)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._idle: list[SmtpConnection] = [SmtpConnection(self._client(), settings.smtp_timeout_seconds, self)
                                            for _ in range(settings.smtp_connections)]
        self._waiting: deque[asyncio.Future[SmtpConnection]] = deque()
        # The loop keeps only weak references to tasks: one nobody holds may be collected
        # before it ends, and its message never written.
        self._writing: set[asyncio.Task] = set()

    def _client(self) -> aiosmtplib.SMTP:
        s = self._settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password,
            use_tls=s.smtp_tls == "tls",
            start_tls=True if s.smtp_tls == "starttls" else False,
            timeout=s.smtp_timeout_seconds,
        )

    @asynccontextmanager
    async def connection(self) -> AsyncIterator["SmtpConnection"]:
        """A connection of the pool, for one transaction: whoever holds it may still decide
        not to send (the campaign was paused while it waited for one)."""
        connection = await self._take()
        lease = connection.lease = object()
        try:
            yield connection
        finally:
            if connection.lease is lease:  # else handed on by its send, to the next one waiting
                connection.lease = None
                await connection.write_carried()  # a message handed to this holder, which sent nothing
                self.give_back(connection)

    def someone_waits(self) -> bool:
        while self._waiting and self._waiting[0].done():  # cancelled while waiting
            self._waiting.popleft()
        return bool(self._waiting)

    async def _take(self) -> "SmtpConnection":
        if self._idle:
            return self._idle.pop()
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # given, then cancelled before it ran
                self.give_back(waiter.result())
            raise

    def give_back(self, connection: "SmtpConnection") -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)
        if connection.carries:  # handed on, but its taker was cancelled: the message goes alone
            writing = asyncio.ensure_future(self._write_carried(connection))
            self._writing.add(writing)
            writing.add_done_callback(self._writing.discard)

    async def _write_carried(self, connection: "SmtpConnection") -> None:
        if connection in self._idle:
            self._idle.remove(connection)
            await connection.write_carried()
            self.give_back(connection)

    async def close(self) -> None:
        while self._idle:
            await self._idle.pop().close()


class SmtpConnection:
    """aiosmtplib opens the session (greeting, EHLO, STARTTLS, AUTH); its transactions are
    then pipeline.transaction's, on the same transport.

    With PIPELINING, a send that has its 354 while another waits for a connection hands
    the connection on with its message still to write (`Carried`): the next transaction
    writes it with its own MAIL FROM, RCPT TO and DATA (RFC 2920 3.1 lets the message open
    a group) and reads its answer first. One write and one round trip an email, not two.
    A holder that sends nothing writes it alone as it lets go (SmtpPool.connection)."""

    def __init__(self, client: aiosmtplib.SMTP, timeout: float, pool: SmtpPool | None = None) -> None:
        self._client = client
        self._timeout = timeout
        self._pool = pool
        self._replies: Replies | None = None  # reading the session's transport once it is open
        self._carried: Carried | None = None  # the message of the send before, for the next write
        self.lease: object | None = None  # who holds the connection (SmtpPool.connection)

    @property
    def carries(self) -> bool:
        return self._carried is not None

    async def close(self) -> None:
        """QUIT, politely, if the session is open."""
        await self.write_carried()
        if self._replies is not None and self._client.is_connected:
            try:
                self._replies.write(b"QUIT\r\n")
                await self._replies.reply(min(self._timeout, 5.0))
            except (OSError, TimeoutError):
                pass
        self._drop()

    def _drop(self) -> None:
        self._client.close()
        self._replies = None

    async def send(self, message: bytes, sender: str, recipient: str, smtputf8: bool = False) -> SmtpAnswer:
        """One transaction, and the answer that ended it with the stage it came at (domain.
        is_the_servers tells whose it is). A connection kept from an earlier transaction that
        turns out closed (the server's idle timeout) is opened again once, at once."""
        carried, self._carried = self._carried, None
        try:
            reused = self._client.is_connected
            answer = await self._transaction(message, sender, recipient, smtputf8, carried)
            if (reused and isinstance(answer, SmtpAnswer) and answer.stage in (Stage.EHLO, Stage.MAIL_FROM)
                    and answer.code in (None, CLOSING)):
                log.info("smtp_connection_reopened", answer=str(answer))
                self._drop()
                answer = await self._transaction(message, sender, recipient, smtputf8, None)
        finally:
            if carried is not None and not carried.answer.done():  # this send wrote nothing
                await self._write(carried)
        if isinstance(answer, SmtpAnswer):
            return answer
        return await self._answer_carried(answer)

    async def _transaction(self, message: bytes, sender: str, recipient: str, smtputf8: bool,
                           carried: Carried | None) -> SmtpAnswer | Carried:
        client = self._client
        stage = Stage.CONNECT
        try:
            if not client.is_connected:
                if carried is not None:  # the session it was to end in is gone: it never left
                    carried.answered(SmtpAnswer(Stage.DATA, None, "the connection was lost before the message"))
                self._drop()  # aiosmtplib's state of the session before, if one was lost
                await client.connect()  # greeting, STARTTLS and AUTH as configured
            stage = Stage.EHLO
            if client.is_ehlo_or_helo_needed:
                try:
                    await client.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await client.helo()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            answer = answer_of(error, stage)
            log.warning("smtp_connection_failed", answer=str(answer))
            self._drop()  # opened again by the next transaction
            return answer
        if smtputf8 and not client.supports_extension("smtputf8"):
            # RFC 6531 3.5: what a server without SMTPUTF8 answers to such an address
            return SmtpAnswer(Stage.RCPT_TO, 553, "5.6.7 the server does not support SMTPUTF8,"
                              " which this address needs")
        if self._replies is None:
            self._replies = Replies(client.transport)
        pipelining = client.supports_extension("pipelining")
        answer = await transaction(self._replies, sender, recipient, message, smtputf8, pipelining, self._timeout,
                                   carried, self._hand_on if pipelining and self._pool is not None else None)
        if isinstance(answer, Carried):
            return answer  # the connection is the next send's now: not to be touched
        if answer.code in (None, CLOSING):
            log.warning("smtp_connection_failed", answer=str(answer))
            self._drop()
        elif answer.code >= 300:
            await self._reset()  # refused, the session goes on
        return answer

    def _hand_on(self, message: bytes) -> Carried | None:
        """With a send waiting for a connection: this one, its message to be written by that
        send's transaction (or as it lets go)."""
        if not self._pool.someone_waits():
            return None
        self._carried = carried = Carried(message)
        self.lease = None
        self._pool.give_back(self)
        return carried

    async def _answer_carried(self, carried: Carried) -> SmtpAnswer:
        try:
            # Whoever took the connection writes the message at once and reads its answer first,
            # each reply within the timeout: this bounds a wait that cannot otherwise end.
            return await asyncio.wait_for(asyncio.shield(carried.answer), 3 * self._timeout)
        except TimeoutError:
            return SmtpAnswer(Stage.DATA, None, "no answer to the message in time", handed_over=carried.written)

    async def write_carried(self) -> None:
        """The message handed on to this connection, alone: its holder sends nothing."""
        carried, self._carried = self._carried, None
        if carried is not None:
            await self._write(carried)

    async def _write(self, carried: Carried) -> None:
        if self._replies is None or not self._client.is_connected:
            carried.answered(SmtpAnswer(Stage.DATA, None, "the connection was lost before the message"))
            return
        answer = await write_message(self._replies, carried, self._timeout)
        if answer.code is None or answer.code == CLOSING:
            self._drop()

    async def _reset(self) -> None:
        """After a refusal in a transaction, RSET, so the connection can carry the next one."""
        try:
            self._replies.write(b"RSET\r\n")
            code, _ = await self._replies.reply(self._timeout)
            if code != 250:
                self._drop()
        except (OSError, TimeoutError):
            self._drop()


def answer_of(error: BaseException, stage: Stage) -> SmtpAnswer:
    """aiosmtplib's error, met at `stage` of a transaction, as the answer that ended it.
    Connecting covers the greeting, STARTTLS and AUTH: their errors say which."""
    if isinstance(error, aiosmtplib.SMTPResponseException):
        if isinstance(error, aiosmtplib.SMTPAuthenticationError):
            stage = Stage.AUTH
        elif isinstance(error, aiosmtplib.SMTPConnectResponseError):
            stage = Stage.GREETING
        elif isinstance(error, aiosmtplib.SMTPHeloError):
            stage = Stage.EHLO
        elif stage is Stage.CONNECT:  # answered, after the greeting, while connecting: STARTTLS
            stage = Stage.STARTTLS
        return SmtpAnswer(stage, error.code, error.message)
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused) and error.recipients:
        refused = error.recipients[0]
        return SmtpAnswer(Stage.RCPT_TO, refused.code, refused.message)
    # No answer: no connection, a timeout, the connection lost, or what aiosmtplib refuses
    # to go on with (a server without AUTH while credentials are configured).
    return SmtpAnswer(stage, None, repr(error), handed_over=stage is Stage.DATA)
