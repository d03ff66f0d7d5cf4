"""How an evaluation's recipients are cut into segment.evaluated batches.

In the order they are read (by contact id), each batch is the longest run of the next
recipients that holds at most `size` of them and fits `room` bytes: cut by count and by
bytes, whatever size the contacts are, and however the reads fall. The same recipients
therefore always make the same batches, so an evaluation done again after a crash (the
same contacts, evaluated as of the same activation) repeats the batches of the first.
Pure: the handler reads, this cuts, the handler publishes.
"""

from bisect import bisect_right
from itertools import accumulate
from typing import Generic, TypeVar

T = TypeVar("T")

def json_bytes(text: str) -> int:
    """UTF-8 bytes of `text`; an ASCII string (nearly every recipient) knows it at once."""
    return len(text) if text.isascii() else len(text.encode())


class RecipientBatches(Generic[T]):
    """Feed it recipients as they are read, with the JSON each one weighs; it hands back
    the batches they complete, then `rest()` the last one. A recipient that alone does not
    fit `room` cannot travel: it is put aside in `too_large` (segment-svc refuses such
    contacts; only one stored before the limit can be).

    `extra` bytes are counted for each recipient beyond its JSON (and a comma), so that a
    batch's boundaries do not depend on what is added to each later (its send hour)."""

    def __init__(self, size: int, room: int, extra: int = 0) -> None:
        if size < 1 or room < 1:
            raise ValueError("a batch holds at least one recipient")
        self._size, self._room, self._extra = size, room, extra + 1  # + the comma before it
        self._pending: list[T] = []
        self._pending_bytes = 0
        self.too_large: list[tuple[T, int]] = []

    def add(self, recipients: list[T], measured: list[str]) -> list[list[T]]:
        """`measured[i]` is the JSON that `recipients[i]` weighs."""
        costs = [json_bytes(text) + self._extra for text in measured]
        sums = list(accumulate(costs))  # bytes of recipients[:i + 1]
        done: list[list[T]] = []
        start, before = 0, 0  # before: sums[start - 1]
        while start < len(recipients):
            room_left = self._room - self._pending_bytes
            fits = bisect_right(sums, before + room_left, lo=start)  # recipients[start:fits] fit in bytes
            fits = min(fits, start + self._size - len(self._pending))
            if fits == start:
                if self._pending:
                    done.append(self._close())
                else:  # alone, it is larger than a message
                    self.too_large.append((recipients[start], costs[start]))
                    before, start = sums[start], start + 1
                continue
            self._pending.extend(recipients[start:fits])
            self._pending_bytes += sums[fits - 1] - before
            before, start = sums[fits - 1], fits
            if len(self._pending) == self._size or start < len(recipients):
                done.append(self._close())  # full, or the next one does not fit
        return done

    def rest(self) -> list[T]:
        """The last batch: what is left (it may be empty)."""
        return self._close()

    def _close(self) -> list[T]:
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        return batch
