"""This node's lockout table (core/lockouts.py), with no Redis and no event loop."""

from __future__ import annotations

from tokensmith.core.lockouts import LockoutPolicy, LockoutTable, Reservation, whole_seconds

POLICY = LockoutPolicy(threshold=3, window=600, first_lock=30, longest_lock=120)


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_locks_double_from_the_threshold_up_to_the_longest() -> None:
    table = LockoutTable(monotonic=Ticks())
    assert [table.fail("account:a", POLICY) for _ in range(6)] == [0, 0, 30, 60, 120, 120]
    assert table.lock_left("account:a") == 120


def test_a_reservation_counts_every_name_or_none() -> None:
    table = LockoutTable(monotonic=Ticks())
    names = [("account:a", POLICY), ("address:x", LockoutPolicy(10, 600, 30, 120))]
    assert table.attempt(names, count=False) == Reservation(None)
    assert table.attempt(names, count=True) == Reservation(None, counted_here=True)
    table.attempt(names, count=True)
    assert table.attempt(names, count=True) == Reservation(None, ("account:a",), counted_here=True)
    # Locked: refused, and nothing more is counted under either name.
    assert table.attempt(names, count=True) == Reservation(30)
    table.refund(names)
    assert table.lock_left("account:a") <= 0  # back below the threshold: the lock goes with it
    assert table.attempt(names, count=True).locking == ("account:a",)


def test_a_hold_outlives_refunds_and_expiry_of_failures() -> None:
    ticks = Ticks()
    table = LockoutTable(monotonic=ticks)
    table.fail("client:c", POLICY)
    table.hold("client:c", 300)
    table.refund([("client:c", POLICY)])
    assert table.lock_left("client:c") == 300
    ticks.now += 299
    assert table.attempt([("client:c", POLICY)], count=True).wait == 1
    ticks.now += 1
    assert table.attempt([("client:c", POLICY)], count=True).wait is None


def test_clearing_a_name_and_the_names_below_it() -> None:
    table = LockoutTable(monotonic=Ticks())
    for name in ("client:c", "client:c@198.51.100.1", "client:c@198.51.100.2", "client:cd@x"):
        table.hold(name, 60)
    table.clear("client:c")
    table.clear_below("client:c@")
    assert len(table) == 1 and table.lock_left("client:cd@x") == 60


def test_the_table_is_bounded() -> None:
    table = LockoutTable(max_entries=10, monotonic=Ticks())
    for i in range(1000):
        table.fail(f"address:{i}", POLICY)
    assert len(table) == 10


def test_waits_are_whole_seconds_at_least_one() -> None:
    assert [whole_seconds(s) for s in (0.001, 1.0, 1.2, 59.9)] == [1, 1, 2, 60]
