"""SMTP delivery through a small pool of persistent aiosmtplib connections."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiosmtplib
import structlog

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

    async def send(self, message: bytes, sender: str, recipient: str, smtputf8: bool = False) -> tuple[int | None, str]:
        """The server's answer as (code, text); code None when no answer came (a
        connection that failed or timed out)."""
        client = self._client
        try:
            if not client.is_connected:
                await client.connect()
            options = ["SMTPUTF8"] if smtputf8 else []
            _, answer = await client.sendmail(sender, [recipient], message, mail_options=options)
            return 250, answer  # sendmail returns only once DATA was accepted (2xx)
        except aiosmtplib.SMTPRecipientsRefused as error:
            refused = error.recipients[0]
            return refused.code, refused.message
        except aiosmtplib.SMTPResponseException as error:  # aiosmtplib has sent RSET
            return error.code, error.message
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            log.warning("smtp_connection_failed", error=repr(error))
            client.close()
            return None, f"no answer: {error!r}"
