"""Which clones are broken, and the crash-loop backoff between repairs."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.labels import Replica, ServiceKey
from autoscaler.repairs import CrashLoop, broken

KEY = ServiceKey("shop", "web")


def replica(
    name: str,
    status: str = "running",
    *,
    clone: bool = True,
    health: str | None = None,
    restart: str = "no",
    retries: int = 0,
    restarts: int = 0,
    exit_code: int = 0,
) -> Replica:
    inspect: dict[str, Any] = {
        "HostConfig": {"RestartPolicy": {"Name": restart, "MaximumRetryCount": retries}},
        "State": {"ExitCode": exit_code},
        "RestartCount": restarts,
    }
    return Replica(
        id=name, name=name, key=KEY, labels={}, status=status, health=health, pid=1,
        started_at=0.0, number=1, clone_of="t" if clone else None, cpu_limit=None,
        memory_limit=None, inspect=inspect,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("r", "why"),
    [
        pytest.param(replica("a"), None, id="running-is-fine"),
        pytest.param(replica("a", "restarting"), None, id="the-engine-is-restarting-it"),
        pytest.param(replica("a", "created"), "a was created but never started", id="orphan"),
        pytest.param(replica("a", "exited", exit_code=137), "a exited with code 137", id="died"),
        pytest.param(replica("a", "exited", restart="always", exit_code=1), None, id="restart-policy-owns-it"),
        pytest.param(replica("a", "exited", restart="on-failure", exit_code=0), "a exited with code 0", id="on-failure-after-a-clean-exit"),
        pytest.param(replica("a", "exited", restart="on-failure", retries=3, restarts=1, exit_code=2), None, id="on-failure-still-retrying"),
        pytest.param(replica("a", "exited", restart="on-failure", retries=3, restarts=3, exit_code=2), "a exited with code 2; its restart policy gave up after 3 restarts", id="on-failure-gave-up"),
        pytest.param(replica("a", "exited", restart="on-failure", exit_code=2), None, id="on-failure-without-a-limit-retries-forever"),
        pytest.param(replica("a", "dead"), "a is dead", id="dead"),
        pytest.param(replica("a", health="unhealthy"), "a is unhealthy", id="unhealthy"),
        pytest.param(replica("a", "exited", clone=False), None, id="never-a-users-container"),
    ],
)  # fmt: skip
def test_broken(r: Replica, why: str | None) -> None:
    assert broken(r) == why


def test_orphans_are_removed_and_the_dead_replaced() -> None:
    repair = CrashLoop().plan(
        [replica("t", clone=False), replica("o", "created"), replica("d", "exited")], now=0
    )
    assert repair is not None
    assert [r.name for r in repair.remove] == ["o", "d"]
    assert repair.replace == 1


def test_a_crash_loop_backs_off_exponentially_and_a_quiet_spell_resets_it() -> None:
    repairs, dead = CrashLoop(), [replica("d", "exited")]
    times = [0.0, 0.5, 1.0, 1.5, 3.0, 6.0, 7.0, 7.5, 400.0]
    done = [t for t in times if repairs.plan(dead, t) is not None]
    # Repairs at 0, then waits of 1, 2 and 4 s; five quiet minutes start the streak over.
    assert done == [0.0, 1.0, 3.0, 7.0, 400.0]
