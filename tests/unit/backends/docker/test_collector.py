"""The collector's arithmetic: CPU percent of a limit from two counter readings, and memory;
and whose windows a sample of some replicas ends."""

from __future__ import annotations

import itertools
from typing import Any, cast

import aiodocker
import pytest

from autoscaler.backends.docker.cgroups import Counters
from autoscaler.backends.docker.collector import Collector, Reading, sample_of
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
