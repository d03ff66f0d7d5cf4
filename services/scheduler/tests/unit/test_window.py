from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from scheduler.domain import share_window

BIG, SMALL, THIRD = UUID(int=1), UUID(int=2), UUID(int=3)


def test_a_small_run_started_during_a_large_one_gets_the_room_first():
    assert share_window(1000, 500, {BIG: (990, 200_000), SMALL: (0, 10)}) == {SMALL: 10}
    assert share_window(1000, 500, {BIG: (900, 200_000), SMALL: (0, 10)}) == {SMALL: 10, BIG: 90}


def test_runs_with_equal_claims_share_the_room_evenly():
    assert share_window(1000, 600, {BIG: (0, 10_000), SMALL: (0, 10_000), THIRD: (0, 10_000)}) == {
        BIG: 200, SMALL: 200, THIRD: 200}


def test_nothing_is_emitted_while_the_window_is_full():
    assert share_window(1000, 500, {BIG: (1000, 5), SMALL: (0, 5)}) == {}
    assert share_window(1000, 500, {BIG: (1200, 5)}) == {}


runs = st.dictionaries(st.integers(0, 20).map(lambda n: UUID(int=n)),
                       st.tuples(st.integers(0, 3000), st.integers(0, 3000)), max_size=8)


@given(st.integers(0, 5000), st.integers(1, 3000), runs)
def test_the_window_and_the_batch_are_never_exceeded_and_no_room_is_wasted(window, batch, demand):
    quotas = share_window(window, batch, demand)
    in_flight = sum(f for f, _ in demand.values())
    room = max(0, min(batch, window - in_flight))
    assert all(0 < quotas[run] <= demand[run][1] for run in quotas)
    assert sum(quotas.values()) == min(room, sum(due for _, due in demand.values()))
