"""SMTP delivery through a small pool of persistent aiosmtplib connections."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiosmtplib
import structlog

from mailer.domain import CLOSING, SmtpAnswer, Stage
from mailer.settings import Settings

log = structlog.get_logger()


class SmtpPool:
    """Up to `size` connections, each reused across messages and reopened after a failure."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        for _ in range(settings.smtp_connections):
            self._idle.put_nowait(self._client())

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
        client = await self._idle.get()
        try:
            yield SmtpConnection(client)
        finally:
            self._idle.put_nowait(client)

    async def close(self) -> None:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()


class SmtpConnection:
    def __init__(self, client: aiosmtplib.SMTP) -> None:
        self._client = client

    async def send(self, message: bytes, sender: str, recipient: str, smtputf8: bool = False) -> SmtpAnswer:
        """One transaction, and the answer that ended it with the stage it came at (domain.
        is_the_servers tells whose it is). A connection kept from an earlier transaction that
        turns out closed (the server's idle timeout) is opened again once, at once."""
        reused = self._client.is_connected
        answer = await self._transaction(message, sender, recipient, smtputf8)
        if reused and answer.stage in (Stage.EHLO, Stage.MAIL_FROM) and answer.code in (None, CLOSING):
            log.info("smtp_connection_reopened", answer=str(answer))
            self._client.close()
            answer = await self._transaction(message, sender, recipient, smtputf8)
        return answer

    async def _transaction(self, message: bytes, sender: str, recipient: str, smtputf8: bool) -> SmtpAnswer:
        client = self._client
        stage = Stage.CONNECT
        try:
            if not client.is_connected:
                await client.connect()  # greeting, STARTTLS and AUTH as configured
            stage = Stage.EHLO
            if client.is_ehlo_or_helo_needed:
                try:
                    await client.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await client.helo()
            if smtputf8 and not client.supports_extension("smtputf8"):
                # RFC 6531 3.5: what a server without SMTPUTF8 answers to such an address
                return SmtpAnswer(Stage.RCPT_TO, 553, "5.6.7 the server does not support SMTPUTF8,"
                                  " which this address needs")
            encoding = "utf-8" if smtputf8 else "ascii"
            stage = Stage.MAIL_FROM
            await client.mail(sender, options=["SMTPUTF8"] if smtputf8 else [], encoding=encoding)
            stage = Stage.RCPT_TO
            await client.rcpt(recipient, encoding=encoding)
            stage = Stage.DATA
            response = await client.data(message)
            return SmtpAnswer(Stage.DATA, response.code, response.message)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            answer = answer_of(error, stage)
            if answer.stage in _IN_TRANSACTION and answer.code not in (None, CLOSING):
                await self._reset()  # refused, the session goes on
            else:
                log.warning("smtp_connection_failed", answer=str(answer))
                client.close()  # opened again by the next transaction
            return answer

    async def _reset(self) -> None:
        """After a refusal in a transaction, RSET, so the connection can carry the next one."""
        try:
            await self._client.rset()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            self._client.close()


_IN_TRANSACTION = frozenset({Stage.MAIL_FROM, Stage.RCPT_TO, Stage.DATA})


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
