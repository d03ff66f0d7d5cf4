"""What the mailer knows of the SMTP server between sends: whether it was unusable at the
last try (shared by the chunks), and within a chunk whether its sends should still try it."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from mailer.domain import Outcome, Unsent


@dataclass
class SmtpTrouble:
    """Why the SMTP server was unusable at the last try (None: it was not), shared by the
    chunks: while it is set, a chunk tries the server with one send before the others, so
    that a server refusing AUTH is not sent a connection per send on every retry."""

    reason: str | None = None


class ChunkServer:
    """What one chunk's sends learn of the SMTP server: whether it is unusable (then the
    sends not yet begun do not try it), and whether it answered a transaction. When it was
    unusable at the last try, the first send to reach it goes alone (`turn`)."""

    def __init__(self, suspect: bool) -> None:
        self.unusable: str | None = None
        self.answered = False
        self._probing = suspect
        self._probed = asyncio.Event()
        self._probe_taken = False

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        if self._probing and not self._probe_taken:
            self._probe_taken = True
            try:
                yield
            finally:  # whatever became of the probe, the others may go (or learn it is unusable)
                self._probing = False
                self._probed.set()
            return
        if self._probing:
            await self._probed.wait()
        yield

    def heard(self, settled: Outcome | Unsent) -> None:
        if isinstance(settled, Unsent):
            self.unusable = self.unusable or settled.reason
        else:
            self.answered = True
