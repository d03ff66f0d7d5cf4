"""How an evaluation's recipients are cut into segment.evaluated batches: by count and by
bytes, the same batches however the reads fall."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segment_svc.evaluation import RecipientBatches, json_bytes

RECIPIENTS = st.lists(st.text(alphabet="abé\u0001", min_size=1, max_size=30), max_size=60)


def cut(recipients: list[str], size: int, room: int, reads: list[int] | None = None, extra: int = 0):
    """(batches, too large), the recipients fed in reads of the given lengths."""
    cutter = RecipientBatches(size, room, extra)
    batches, start = [], 0
    for length in [*(reads or []), len(recipients)]:
        chunk = recipients[start:start + length]
        batches += cutter.add(chunk, chunk)
        start += len(chunk)
    return [*batches, cutter.rest()], [recipient for recipient, _ in cutter.too_large]


def weight(batch: list[str], extra: int = 0) -> int:
    return sum(json_bytes(recipient) + 1 + extra for recipient in batch)


def test_small_recipients_fill_a_batch_by_count_and_large_ones_by_bytes():
    assert cut(["a"] * 5, size=2, room=100)[0] == [["a", "a"], ["a", "a"], ["a"]]
    batches, _ = cut(["x" * 9] * 5, size=100, room=25)  # each weighs 10 with its comma
    assert [len(batch) for batch in batches] == [2, 2, 1]
    assert cut([], size=2, room=100)[0] == [[]], "no match: one empty last batch"


def test_bytes_are_counted_as_utf8():
    batches, _ = cut(["éé"] * 4, size=10, room=10)  # 4 bytes and a comma each
    assert [len(batch) for batch in batches] == [2, 2]


def test_a_recipient_larger_than_a_message_is_put_aside():
    batches, too_large = cut(["a", "b" * 50, "c"], size=10, room=20)
    assert (batches, too_large) == ([["a"], ["c"]], ["b" * 50])


@settings(max_examples=120, deadline=None)
@given(RECIPIENTS, st.integers(1, 7), st.integers(3, 80), st.lists(st.integers(0, 20), max_size=6),
       st.integers(0, 3))
def test_batches_are_the_longest_runs_that_fit_however_the_reads_fall(recipients, size, room, reads, extra):
    batches, too_large = cut(recipients, size, room, reads, extra)
    assert (batches, too_large) == cut(recipients, size, room, extra=extra), "the same, read at once"
    kept = [r for r in recipients if r not in too_large]
    assert [r for batch in batches for r in batch] == kept, "every recipient, in order, once"
    assert all(json_bytes(r) + 1 + extra > room for r in too_large)
    for batch, following in zip(batches, batches[1:], strict=False):
        assert 1 <= len(batch) <= size and weight(batch, extra) <= room
        if following:  # it ended because the next one did not fit (unless one too large came between)
            assert len(batch) == size or weight([*batch, following[0]], extra) > room or too_large


def test_nonsense_sizes_are_refused():
    with pytest.raises(ValueError):
        RecipientBatches(0, 100)
