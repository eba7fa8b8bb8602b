"""When the load has moved onto a service's new replicas: each new one uses at least half of what
the others use on average, over two spans of two slices in a row, and none is still starting by
its health check; or the watch has lasted its longest."""

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


def watch_from(**kwargs: float) -> Settling:
    return Settling(frozenset({"new"}), began=0.0, longest=kwargs.get("longest", 1.0))


def test_the_watch_needs_two_spans_in_a_row_where_each_new_replica_took_its_share() -> None:
    watch = watch_from()
    assert not watch.read(reads(0, old=0, new=0), 0.0)  # one read: nothing to compare yet
    assert watch.next == SLICE
    used = [0, 10, 20, 30, 40]  # the new one keeps up with the old one from the start
    for at in (100, 200, 300):
        assert not watch.read(reads(at, old=at // 10, new=used[at // 100]), at / 1000)
    # Over 0..200 and 200..400 ms it used what the old one did: the load has moved.
    assert watch.read(reads(400, old=40, new=40), 0.4)


def test_a_burst_as_a_new_replica_starts_is_not_its_share_of_the_load() -> None:
    # Its start used 10 ms in the first slice, then nothing until it took load at 300 ms.
    watch = watch_from()
    for at, new in ((0, 0), (100, 10), (200, 10), (300, 10)):
        assert not watch.read(reads(at, old=at // 10, new=new), at / 1000)
    # Over 0..200 ms the burst reads as half a share; over 200..400, 9 ms of 20 are not.
    assert not watch.read(reads(400, old=40, new=19), 0.4)
    assert not watch.read(reads(500, old=50, new=29), 0.5)  # 100..300: nothing at all
    assert not watch.read(reads(600, old=60, new=39), 0.6)  # 200..400 again
    assert watch.read(reads(700, old=70, new=49), 0.7)  # 300..500 and 500..700: its share


def test_a_new_replica_still_starting_by_its_health_check_has_not_taken_its_share() -> None:
    watch = watch_from()
    for at in (0, 100, 200, 300):
        assert not watch.read(reads(at, old=at // 10, new=at // 10), at / 1000, {"new"})
    assert not watch.read(reads(400, old=40, new=40), 0.4, {"new"})
    assert watch.read(reads(500, old=50, new=50), 0.5, {"other"})  # healthy now; the old ones
    # may be starting (restarted by their policy): only the new ones' verdict holds the look.


def test_a_replica_the_balancer_never_reaches_holds_the_look_back_for_its_longest() -> None:
    never = watch_from(longest=0.6)
    assert not never.read(reads(0, old=0, new=0), 0.0)
    assert never.read(reads(600, old=60, new=0), 0.6)
    starting = watch_from(longest=0.6)
    assert not starting.read(reads(0, old=0, new=0), 0.0, {"new"})
    assert starting.read(reads(600, old=60, new=0), 0.6, {"new"})
