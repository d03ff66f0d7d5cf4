"""SMTP delivery through a small pool of persistent connections: aiosmtplib opens each
session, pipeline.py carries its mail transactions."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiosmtplib
import structlog

from mailer.adapters.pipeline import Replies, transaction
from mailer.domain import CLOSING, SmtpAnswer, Stage
from mailer.settings import Settings

log = structlog.get_logger()


class SmtpPool:
    """Up to `size` connections, each reused across messages and reopened after a failure."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._idle: asyncio.Queue[SmtpConnection] = asyncio.Queue()
        for _ in range(settings.smtp_connections):
            self._idle.put_nowait(SmtpConnection(self._client(), settings.smtp_timeout_seconds))

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
        connection = await self._idle.get()
        try:
            yield connection
        finally:
            self._idle.put_nowait(connection)

    async def close(self) -> None:
        while not self._idle.empty():
            await self._idle.get_nowait().close()


class SmtpConnection:
    """aiosmtplib opens the session (greeting, EHLO, STARTTLS, AUTH); its transactions are
    then pipeline.transaction's, on the same transport."""

    def __init__(self, client: aiosmtplib.SMTP, timeout: float) -> None:
        self._client = client
        self._timeout = timeout
        self._replies: Replies | None = None  # reading the session's transport once it is open

    async def close(self) -> None:
        """QUIT, politely, if the session is open."""
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
        reused = self._client.is_connected
        answer = await self._transaction(message, sender, recipient, smtputf8)
        if reused and answer.stage in (Stage.EHLO, Stage.MAIL_FROM) and answer.code in (None, CLOSING):
            log.info("smtp_connection_reopened", answer=str(answer))
            self._drop()
            answer = await self._transaction(message, sender, recipient, smtputf8)
        return answer

    async def _transaction(self, message: bytes, sender: str, recipient: str, smtputf8: bool) -> SmtpAnswer:
        client = self._client
        stage = Stage.CONNECT
        try:
            if not client.is_connected:
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
        answer = await transaction(self._replies, sender, recipient, message, smtputf8,
                                   client.supports_extension("pipelining"), self._timeout)
        if answer.code in (None, CLOSING):
            log.warning("smtp_connection_failed", answer=str(answer))
            self._drop()
        elif answer.code >= 300:
            await self._reset()  # refused, the session goes on
        return answer

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
