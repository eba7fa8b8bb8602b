"""Which clones a scale-down removes: the least useful first, never a container the user made."""

from __future__ import annotations

import pytest

from autoscaler.actuator import victims
from autoscaler.labels import Replica, ServiceKey


def replica(number: int, health: str | None = None, *, clone: bool = True) -> Replica:
    return Replica(
        id=f"c{number}", name=f"web-{number}", key=ServiceKey("p", "web"), labels={},
        status="running", health=health, pid=1, started_at=0.0, number=number,
        clone_of="t" if clone else None, cpu_limit=None, memory_limit=None, inspect={},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("live", "count", "removed"),
    [
        pytest.param([replica(1, clone=False), replica(2), replica(3)], 1, [3], id="newest-first"),
        pytest.param([replica(2, "unhealthy"), replica(3, "healthy")], 1, [2], id="unhealthy-before-newer"),
        pytest.param([replica(2, "healthy"), replica(3, "starting")], 1, [3], id="no-verdict-before-healthy"),
        pytest.param([replica(2, "healthy"), replica(3)], 1, [3], id="no-health-check-before-healthy"),
        pytest.param([replica(1, clone=False), replica(2, clone=False), replica(3)], 2, [3], id="never-a-users-container"),
        pytest.param([replica(2), replica(3, "unhealthy"), replica(4)], 3, [3, 4, 2], id="all-in-order"),
    ],
)  # fmt: skip
def test_victims(live: list[Replica], count: int, removed: list[int]) -> None:
    assert [r.number for r in victims(live, count)] == removed
