"""Which of a service's replicas count, which is the template, and which are the user's own."""

from __future__ import annotations

from dataclasses import replace

import pytest

from autoscaler.control.replicas import Replica, counted, own, template_of, victims, woken
from autoscaler.errors import TemplateError
from autoscaler.labels import ServiceKey

KEY = ServiceKey("shop", "web")


def replica(name: str, status: str = "running", *, number: int = 1, clone: bool = False,
            scheduled: bool = False) -> Replica:  # fmt: skip
    return Replica(
        id=name, name=name, key=KEY, labels={}, status=status, health=None, pid=1,
        started_at=0.0, number=number, clone_of="t" if clone else None, cpu_limit=None,
        memory_limit=None, scheduled=scheduled,
    )  # fmt: skip


def test_what_counts_is_what_runs_or_is_on_its_way() -> None:
    every = [
        replica(s, s) for s in ("running", "restarting", "starting", "exited", "paused", "created")
    ]
    assert [r.status for r in counted(every)] == ["running", "restarting", "starting"]


def test_the_template_is_the_users_own_that_serves_first() -> None:
    first = replica("web-1", number=1)
    second = replica("web-2", number=2)
    clone = replica("web-3", number=3, clone=True)
    assert template_of(KEY, [clone, second, first]) is first
    leaving = replace(first, stopping_since=1.0)  # Compose replacing it: the other one serves
    assert template_of(KEY, [leaving, second, clone]) is second
    with pytest.raises(TemplateError, match="no template container"):
        template_of(KEY, [clone])


def test_the_users_own_are_neither_clones_nor_a_schedulers() -> None:
    assert own([replica("a"), replica("b", clone=True), replica("c", "exited")]) == 2
    # A Swarm service's tasks are its scheduler's: it has no "own" at all.
    assert own([replica("t1", scheduled=True), replica("t2", scheduled=True)]) is None
    assert not replica("t1", scheduled=True).users


def numbered(number: int, health: str | None = None, *, clone: bool = True) -> Replica:
    return Replica(
        id=f"c{number}", name=f"web-{number}", key=ServiceKey("p", "web"), labels={},
        status="running", health=health, pid=1, started_at=0.0, number=number,
        clone_of="t" if clone else None, cpu_limit=None, memory_limit=None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("live", "count", "removed"),
    [
        pytest.param([numbered(1, clone=False), numbered(2), numbered(3)], 1, [3], id="newest-first"),
        pytest.param([numbered(2, "unhealthy"), numbered(3, "healthy")], 1, [2], id="unhealthy-before-newer"),
        pytest.param([numbered(2, "healthy"), numbered(3, "starting")], 1, [3], id="no-verdict-before-healthy"),
        pytest.param([numbered(2, "healthy"), numbered(3)], 1, [3], id="no-health-check-before-healthy"),
        pytest.param([numbered(1, clone=False), numbered(2, clone=False), numbered(3)], 2, [3], id="never-a-users-container"),
        pytest.param([numbered(2), numbered(3, "unhealthy"), numbered(4)], 3, [3, 4, 2], id="all-in-order"),
        pytest.param([numbered(2), replace(numbered(3, "healthy"), removing=True), numbered(4, "unhealthy")], 1, [3], id="one-whose-removal-began-first"),
    ],
)  # fmt: skip
def test_a_scale_down_removes_clones_unhealthy_first_then_newest(
    live: list[Replica], count: int, removed: list[int]
) -> None:
    assert [r.number for r in victims(live, count)] == removed


def test_a_wake_starts_only_the_users_own_containers_its_sleep_stopped() -> None:
    slept = replica("web-1", "exited", number=1)
    by_hand = replica("web-2", "exited", number=2)  # its owner stopped it before the sleep
    clone = replica("web-3", "exited", number=3, clone=True)
    assert woken([slept, by_hand, clone], frozenset({"web-1"})) == [slept]
    assert woken([slept, by_hand], frozenset({"web-1", "web-2"})) == [slept, by_hand]


@pytest.mark.parametrize("stopped", [None, frozenset({"gone"})], ids=["no record", "replaced"])
def test_a_wake_with_no_record_of_what_is_there_starts_every_stopped_container_of_the_users(
    stopped: frozenset[str] | None,
) -> None:
    exited, created = replica("web-1", "exited"), replica("web-2", "created", number=2)
    running = replica("web-3", number=3)
    assert woken([exited, created, running], stopped) == [exited, created]
