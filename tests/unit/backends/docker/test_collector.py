"""The collector's arithmetic: CPU percent of a limit from two counter readings, and memory;
and whose windows a sample of some replicas ends."""

from __future__ import annotations

import itertools
from typing import Any, cast

import aiodocker
import pytest

from autoscaler.backends.docker.cgroups import CgroupLocator, Counters
from autoscaler.backends.docker.collector import SHOWN, Collector, Reading, sample_of
from autoscaler.control.replicas import Replica
from autoscaler.labels import ServiceKey

SECOND = 1_000_000_000


def reading(
    cpu_ns: int, *, at: int, memory: int | None = None, periods: int | None = None,
    throttled: int | None = None,
) -> Reading:  # fmt: skip
    return Reading(Counters(cpu_ns, memory, periods, throttled), at)


def replica(
    cpu_limit: float | None = None, memory_limit: int | None = None, id: str = "c"
) -> Replica:
    return Replica(
        id=id, name=id, key=ServiceKey("p", "s"), labels={}, status="running", health=None,
        pid=1, started_at=0.0, number=1, clone_of=None, cpu_limit=cpu_limit,
        memory_limit=memory_limit,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("limit", "used_ns", "over_ns", "percent"),
    [
        pytest.param(None, SECOND // 2, SECOND, 50.0, id="half-a-core-without-a-limit"),
        pytest.param(0.5, SECOND // 2, SECOND, 100.0, id="half-a-core-of-a-half-core-limit"),
        pytest.param(0.25, SECOND // 8, 2 * SECOND, 25.0, id="over-two-seconds"),
        pytest.param(2.0, 3 * SECOND, SECOND, 150.0, id="three-cores-of-two"),
    ],
)
def test_cpu_is_percent_of_the_limit_between_two_readings(
    limit: float | None, used_ns: int, over_ns: int, percent: float
) -> None:
    before = reading(10 * SECOND, at=100 * SECOND)
    after = reading(10 * SECOND + used_ns, at=100 * SECOND + over_ns)
    sample = sample_of(replica(cpu_limit=limit), before, after, "cgroup")
    assert sample.cpu == pytest.approx(percent)


def test_the_first_reading_a_short_window_and_a_counter_that_went_back_have_no_cpu() -> None:
    first = reading(5 * SECOND, at=10 * SECOND)
    assert sample_of(replica(), None, first, "cgroup").cpu is None
    too_soon = reading(5 * SECOND + SECOND // 10, at=10 * SECOND + SECOND // 5)
    assert sample_of(replica(), first, too_soon, "cgroup").cpu is None
    restarted = reading(SECOND, at=11 * SECOND)
    assert sample_of(replica(), first, restarted, "cgroup").cpu is None


@pytest.mark.parametrize(
    ("periods", "throttled", "share"),
    [
        pytest.param((100, 120), (10, 30), 1.0, id="every-period"),
        pytest.param((100, 140), (10, 20), 0.25, id="a-quarter"),
        pytest.param((100, 100), (10, 10), None, id="no-period-ran"),
        pytest.param((None, None), (None, None), None, id="no-limit"),
    ],
)
def test_throttling_is_the_share_of_cfs_periods_held_at_the_limit(
    periods: tuple[int | None, int | None],
    throttled: tuple[int | None, int | None],
    share: float | None,
) -> None:
    before = reading(0, at=0, periods=periods[0], throttled=throttled[0])
    after = reading(SECOND // 10, at=SECOND, periods=periods[1], throttled=throttled[1])
    assert sample_of(replica(cpu_limit=0.1), before, after, "cgroup").throttled == share


def test_memory_is_percent_of_its_limit_and_unknown_without_one() -> None:
    now = reading(0, at=0, memory=50 * 2**20)
    limited = sample_of(replica(memory_limit=200 * 2**20), None, now, "api")
    assert (limited.memory_bytes, limited.memory, limited.source) == (50 * 2**20, 25.0, "api")
    assert sample_of(replica(), None, now, "api").memory is None


def test_the_network_s_rates_are_bytes_a_second_over_the_window() -> None:
    before = Reading(Counters(0, None, None, None, received=1000, sent=500), 0)
    after = Reading(Counters(SECOND, None, None, None, received=5000, sent=500), 2 * SECOND)
    sample = sample_of(replica(), before, after, "cgroup")
    assert (sample.received, sample.sent) == (2000.0, 0.0)


def test_no_network_rate_when_the_counters_went_back_or_are_not_known() -> None:
    before = Reading(Counters(0, None, None, None, received=5000, sent=None), 0)
    after = Reading(Counters(SECOND, None, None, None, received=1000, sent=None), SECOND)
    sample = sample_of(replica(), before, after, "cgroup")
    assert (sample.received, sample.sent) == (None, None)


class _Stats:
    """An engine whose stats API says every container used a tenth of a core so far, more at
    each call."""

    def __init__(self) -> None:
        self.used = itertools.count(0, SECOND // 10)

    async def _query_json(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        return {"cpu_stats": {"cpu_usage": {"total_usage": next(self.used)}}, "memory_stats": {}}


def _collector() -> Collector:
    """Readings a second apart: every window between two samples is long enough to measure."""
    engine = cast(aiodocker.Docker, _Stats())
    return Collector(engine, use_cgroups=False, clock=itertools.count(0, SECOND).__next__)


async def test_a_look_at_some_replicas_keeps_the_windows_of_the_others() -> None:
    collector = _collector()
    looked, other = replica(id="looked"), replica(id="other")
    await collector.sample([looked, other])
    await collector.sample([looked], every=False)  # a look between two rounds
    assert (await collector.sample([looked, other]))["other"].cpu is not None


async def test_a_round_ends_the_windows_of_containers_it_no_longer_lists() -> None:
    collector = _collector()
    kept, gone = replica(id="kept"), replica(id="gone")
    await collector.sample([kept, gone])
    await collector.sample([kept])
    # Listed again (a container of that id back): a new window, nothing measured yet.
    assert (await collector.sample([kept, gone]))["gone"].cpu is None


class _Files:
    """A container's cgroup files whose counters grow at each read by a tenth of a core-second
    and 1,000 bytes received; what each read was asked to read is kept."""

    def __init__(self) -> None:
        self.reads = 0
        self.asked: list[tuple[bool, bool]] = []  # (memory, network), a read each

    def read(
        self, *, throttling: bool = True, memory: bool = True, network: bool = True
    ) -> Counters:
        self.reads += 1
        self.asked.append((memory, network))
        return Counters(
            self.reads * SECOND // 10, 4096 * self.reads if memory else None, None, None,
            received=1000 * self.reads if network else None, sent=0 if network else None,
        )  # fmt: skip

    def close(self) -> None:
        pass


class _Locator:
    def __init__(self) -> None:
        self.files: dict[str, _Files] = {}

    def locate(self, pid: int, container_id: str) -> _Files:
        return self.files.setdefault(container_id, _Files())


def _cgroup_collector(interval: float) -> tuple[Collector, _Locator]:
    """A cgroup-reading collector whose readings are an interval apart."""
    locator = _Locator()
    collector = Collector(
        cast(aiodocker.Docker, _Stats()), interval=interval,
        clock=itertools.count(0, int(interval * SECOND)).__next__,
        locator=cast(CgroupLocator, locator),
    )  # fmt: skip
    return collector, locator


async def test_what_is_only_shown_is_read_at_a_container_s_first_round_then_in_turn() -> None:
    collector, locator = _cgroup_collector(interval=2.0)
    assert collector.turns == round(SHOWN / 2.0)
    replicas = [replica(id=f"c{i}") for i in range(10)]
    for _ in range(2 * collector.turns + 1):
        await collector.sample(replicas)
    for files in locator.files.values():
        shown = [i for i, (memory, network) in enumerate(files.asked) if memory or network]
        # Its first round, then once every `turns` rounds: the two turns it had since.
        assert shown[0] == 0 and len(shown) == 3
        assert shown[2] - shown[1] == collector.turns
    # The containers' turns are spread over the rounds, not all in one.
    turns = {[i for i, (_, net) in enumerate(f.asked) if net][1] for f in locator.files.values()}
    assert len(turns) == collector.turns


async def test_between_its_turns_a_container_shows_its_memory_and_rates_as_last_read() -> None:
    collector, locator = _cgroup_collector(interval=2.0)
    samples = [(await collector.sample([replica()]))["c"] for _ in range(2 * collector.turns)]
    read = [i for i, (_, network) in enumerate(locator.files["c"].asked) if network]
    # No rate before its second reading; from then on, the rate between the two last ones
    # (1,000 bytes a read, a read every 2 s).
    assert {s.received for s in samples[: read[1]]} == {None}
    assert {s.received for s in samples[read[1] :]} == {500.0}
    assert None not in {s.memory_bytes for s in samples}
    # CPU is measured every round all the same.
    assert None not in {s.cpu for s in samples[1:]}


async def test_a_memory_limited_container_s_memory_is_read_every_round() -> None:
    collector, locator = _cgroup_collector(interval=2.0)
    for _ in range(collector.turns):
        await collector.sample([replica(memory_limit=2**30)])
    assert all(memory for memory, _ in locator.files["c"].asked)


async def test_a_replica_a_look_sees_first_shows_all_at_its_first_round() -> None:
    collector, locator = _cgroup_collector(interval=2.0)
    await collector.sample([replica(id="old")])
    new = replica(id="new")  # made by a scale-up, measured by a look before the next round
    await collector.sample([new], every=False)
    for _ in range(collector.turns):
        await collector.sample([replica(id="old"), new])
    asked = locator.files["new"].asked
    assert asked[0] == (False, False)  # the look reads only what decisions read
    assert asked[1] == (True, True)  # its first round: its memory and network too
