"""When the load has moved onto a service's new replicas: each new one uses at least half of what
the others use on average, over the last two slices; or the watch has lasted its longest."""

from __future__ import annotations

from autoscaler.backends.docker.cgroups import Counters
from autoscaler.backends.docker.collector import Reading
from autoscaler.backends.docker.settle import SLICE, Settling, moved

MS = 1_000_000  # nanoseconds


def reads(at_ms: int, **cpu_ms: int) -> dict[str, Reading]:
    """Each container's CPU used so far (milliseconds), read at `at_ms`."""
    return {cid: Reading(Counters(used * MS, None, None, None), at_ms * MS)
            for cid, used in cpu_ms.items()}  # fmt: skip


def test_the_load_has_moved_once_each_new_replica_uses_half_of_what_the_others_do() -> None:
    before = reads(0, old1=0, old2=0, new=0)
    assert moved(before, reads(200, old1=20, old2=18, new=10), {"new"})  # 10 of a mean of 19
    assert not moved(before, reads(200, old1=20, old2=18, new=9), {"new"})


def test_every_new_replica_must_have_taken_its_share() -> None:
    before = reads(0, old=0, a=0, b=0)
    assert not moved(before, reads(200, old=20, a=20, b=2), {"a", "b"})
    assert moved(before, reads(200, old=20, a=20, b=19), {"a", "b"})


def test_a_replica_read_once_has_no_say_and_without_others_the_load_is_where_it_will_be() -> None:
    assert moved(reads(0, old=0), reads(200, old=20, new=0), {"new"})  # new: just seen
    assert moved(reads(0, new=0), reads(200, new=0), {"new"})  # nothing to compare with


def test_the_watch_compares_over_two_slices_and_gives_up_after_its_longest() -> None:
    watch = Settling(frozenset({"new"}), began=0.0, longest=0.6)
    assert not watch.read(reads(0, old=0, new=0), 0.0)  # one read: nothing to compare yet
    assert watch.next == SLICE
    assert not watch.read(reads(100, old=10, new=0), 0.1)
    # The last two slices: the new one used 10 ms of the old one's 20 between 0 and 200 ms...
    assert watch.read(reads(200, old=20, new=10), 0.2)
    # ...but only its last reads count: idle over the first two slices, busy in the third.
    late = Settling(frozenset({"new"}), began=0.0, longest=0.6)
    for at in (0, 100, 200):
        assert not late.read(reads(at, old=at // 10, new=0), at / 1000)
    assert not late.read(reads(300, old=30, new=9), 0.3)  # 9 of 20 over 100..300 ms
    assert late.read(reads(400, old=40, new=20), 0.4)  # 20 of 20 over 200..400 ms
    # A new replica the balancer never reaches holds the look back no longer than `longest`.
    never = Settling(frozenset({"new"}), began=0.0, longest=0.6)
    assert not never.read(reads(0, old=0, new=0), 0.0)
    assert never.read(reads(600, old=60, new=0), 0.6)
