"""The collector's arithmetic: CPU percent of a limit from two counter readings, and memory."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.collector import Reading, sample_of
from autoscaler.labels import Replica, ServiceKey

SECOND = 1_000_000_000


def replica(cpu_limit: float | None = None, memory_limit: int | None = None) -> Replica:
    inspect: dict[str, Any] = {}
    return Replica(
        id="c", name="c", key=ServiceKey("p", "s"), labels={}, status="running", health=None,
        pid=1, started_at=0.0, number=1, clone_of=None, cpu_limit=cpu_limit,
        memory_limit=memory_limit, inspect=inspect,
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
    before = Reading(cpu_ns=10 * SECOND, at_ns=100 * SECOND)
    after = Reading(cpu_ns=before.cpu_ns + used_ns, at_ns=before.at_ns + over_ns)
    sample = sample_of(replica(cpu_limit=limit), before, after, None, "cgroup")
    assert sample.cpu == pytest.approx(percent)


def test_the_first_reading_and_a_counter_that_went_back_have_no_cpu() -> None:
    reading = Reading(cpu_ns=5 * SECOND, at_ns=10 * SECOND)
    assert sample_of(replica(), None, reading, None, "cgroup").cpu is None
    restarted = Reading(cpu_ns=SECOND, at_ns=11 * SECOND)
    assert sample_of(replica(), reading, restarted, None, "cgroup").cpu is None


def test_memory_is_percent_of_its_limit_and_unknown_without_one() -> None:
    reading = Reading(0, 0)
    limited = sample_of(replica(memory_limit=200 * 2**20), None, reading, 50 * 2**20, "api")
    assert (limited.memory_bytes, limited.memory, limited.source) == (50 * 2**20, 25.0, "api")
    assert sample_of(replica(), None, reading, 50 * 2**20, "api").memory is None
