"""Which clones are broken, and the crash-loop backoff between repairs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from autoscaler.control.repairs import (
    STOPPED_GRACE,
    CrashLoop,
    being_removed,
    broken,
    changing,
    heeded,
    held,
    restore,
    roll,
    stale,
)
from autoscaler.control.replicas import Replica, Restart
from autoscaler.labels import ServiceKey

KEY = ServiceKey("shop", "web")
NOW = 1_800_000_000.0


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
    crashed: bool = True,
    finished: float = 0.0,
) -> Replica:
    """`finished`: seconds before NOW it exited (0: long ago)."""
    return Replica(
        id=name, name=name, key=KEY, labels={}, status=status, health=health, pid=1,
        started_at=0.0, number=1, clone_of="t" if clone else None, cpu_limit=None,
        memory_limit=None, exit_code=exit_code, finished_at=NOW - finished if finished else 0.0,
        restart=Restart(restart, retries, restarts), crashed=crashed and status == "exited",
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
        pytest.param(replica("a", "exited", crashed=False, finished=1), None, id="just-stopped-by-someone-who-removes-it-next"),
        pytest.param(replica("a", "exited", crashed=False, finished=30), "a exited with code 0", id="stopped-by-someone-and-left"),
        pytest.param(replica("a", "exited", exit_code=1, finished=1), "a exited with code 1", id="crashed-just-now"),
    ],
)  # fmt: skip
def test_broken(r: Replica, why: str | None) -> None:
    assert broken(r, wall=NOW) == why


def test_orphans_are_removed_and_the_dead_replaced() -> None:
    repair = CrashLoop().plan(
        [replica("t", clone=False), replica("o", "created"), replica("d", "exited")],
        now=0,
        wall=NOW,
        decided=2,
    )
    assert repair is not None
    assert [r.name for r in repair.remove] == ["o", "d"]
    assert repair.replace == 1


def test_a_crash_loop_backs_off_exponentially_and_a_quiet_spell_resets_it() -> None:
    repairs, dead = CrashLoop(), [replica("d", "exited")]
    times = [0.0, 0.5, 1.0, 1.5, 3.0, 6.0, 7.0, 7.5, 400.0]
    done = [t for t in times if repairs.plan(dead, t, NOW, decided=2) is not None]
    # Repairs at 0, then waits of 1, 2 and 4 s; five quiet minutes start the streak over.
    assert done == [0.0, 1.0, 3.0, 7.0, 400.0]


def test_a_replacement_only_fills_the_decided_count() -> None:
    # A clone stopped a while ago whose place was restored already: removed, not replaced.
    left = replica("s", "exited", crashed=False, finished=30)
    running = [replica("t", clone=False), replica("a"), replica("b")]
    repair = CrashLoop().plan([*running, left], now=0, wall=NOW, decided=3)
    assert repair is not None and [r.name for r in repair.remove] == ["s"]
    assert repair.replace == 0
    # An unhealthy one that still counts is replaced.
    sick = replica("u", health="unhealthy")
    repair = CrashLoop().plan([*running, sick], now=0, wall=NOW, decided=4)
    assert repair is not None and repair.replace == 1


def test_a_clone_its_owner_stopped_rests_until_they_start_or_remove_it() -> None:
    # `docker compose stop` long ago, then `start`: the template runs again, its clones are
    # started one by one after it. Meanwhile they are neither broken nor gone.
    template = replace(replica("t", clone=False), started_at=NOW - 1)
    stopped = [replica(n, "exited", crashed=False, finished=600) for n in ("a", "b")]
    assert [broken(r, NOW, since=template.started_at) for r in stopped] == [None, None]
    assert restore([template, *stopped], 3, NOW) is None
    # Its owner left them stopped: broken once the grace is over, and replaced.
    later = NOW + STOPPED_GRACE + 1
    assert broken(stopped[0], later, since=template.started_at) == "a exited with code 0"
    repair = CrashLoop().plan([template, *stopped], now=0, wall=later, decided=3)
    assert repair is not None and repair.replace == 2


def test_a_paused_replica_is_not_gone() -> None:
    paused = [replica("t", clone=False), replica("a", "paused"), replica("b", "paused")]
    assert restore(paused, 3, NOW) is None
    gone = restore([replica("t", clone=False), replica("a", "paused")], 3, NOW)
    assert gone is not None and gone.replace == 1


def with_config(r: Replica, *, clone_of: str, env: str, config_hash: str) -> Replica:
    """`r` made from template `clone_of`, of a configuration its environment and Compose's
    hash sum up (backends/docker/replicas.py's fingerprint)."""
    return replace(r, clone_of=clone_of, fingerprint=f"{config_hash}/{env}")


def test_vanished_replicas_are_restored_to_the_decided_count() -> None:
    live = [replica("t", clone=False), replica("a")]
    repair = restore(live, decided=4, wall=NOW)
    assert repair is not None
    assert (repair.kind, repair.replace, repair.remove) == ("restore", 2, ())
    assert repair.reasons == ("2 of 4 replicas went away outside the autoscaler",)
    assert restore(live, decided=2, wall=NOW) is None


def test_clones_of_a_replaced_template_are_rolled_in_surge_batches() -> None:
    old = dict(env="V=1", config_hash="h1")
    new_template = replace(with_config(replica("t2", clone=False), clone_of="", env="V=2",
                                       config_hash="h2"), clone_of=None)  # fmt: skip
    clones = [
        replace(with_config(replica(f"c{n}"), clone_of="t1", **old), number=n) for n in (2, 3, 4)
    ]
    current = replace(with_config(replica("c5"), clone_of="t2", env="V=2", config_hash="h2"),
                      number=5)  # fmt: skip
    service = [new_template, *clones, current]
    assert [r.name for r in stale(service, new_template)] == ["c2", "c3", "c4"]
    repair = roll(service, new_template, decided=5)
    assert repair is not None
    assert (repair.kind, repair.surge, repair.replace) == ("roll", True, 3)
    assert [r.name for r in repair.remove] == ["c2", "c3", "c4"]
    # Half the decided count at a time.
    assert [r.name for r in roll(service, new_template, decided=3).remove] == ["c2", "c3"]  # type: ignore[union-attr]


def test_a_clone_made_from_the_current_template_or_of_the_same_config_is_not_stale() -> None:
    template = replace(with_config(replica("t2", clone=False), clone_of="", env="V=1",
                                   config_hash="h1"), clone_of=None)  # fmt: skip
    same_config = with_config(replica("c2"), clone_of="t1", env="V=1", config_hash="h1")
    assert stale([template, same_config], template) == []
    assert roll([template, same_config], template, decided=2) is None


def test_what_another_hand_is_changing_holds_the_service() -> None:
    template = replace(replica("t", clone=False), started_at=NOW - 600)
    stopping = replace(replica("a"), stopping_since=NOW - 1)
    resting_clone = replica("b", "exited", crashed=False, finished=1)
    crashed = replica("c", "exited", exit_code=1, finished=1)
    created = replace(replica("n", "created", clone=False), created_at=NOW - 1)
    left = replace(created, created_at=NOW - 60)
    found = changing([template, stopping, resting_clone, crashed, created, left], NOW)
    assert [r.name for r in found] == ["a", "b", "n"]


def test_a_stop_ignored_past_its_timeout_is_no_stop() -> None:
    asked = replace(replica("a"), stopping_since=NOW - 5)
    assert heeded([asked], NOW)[0].stopping  # within its 10 s and the grace
    ignored = replace(replica("a"), stopping_since=NOW - 10 - STOPPED_GRACE - 1)
    assert not heeded([ignored], NOW)[0].stopping
    quick = replace(ignored, stop_timeout=60)
    assert heeded([quick], NOW)[0].stopping  # its own, longer stop timeout


SERVING = replace(replica("t", clone=False), started_at=NOW - 600)


@pytest.mark.parametrize(
    ("replicas", "words"),
    [
        pytest.param([SERVING, replica("a")], None, id="serving"),
        pytest.param([SERVING, replace(replica("a"), stopping_since=NOW)], "another hand is creating, stopping or removing 1 of its containers", id="a-clone-being-removed"),
        pytest.param([replace(SERVING, stopping_since=NOW), replica("a")], "its own containers are being stopped or replaced", id="down-or-replaced"),
        pytest.param([replace(SERVING, status="paused"), replica("a", "paused")], "paused (docker compose pause)", id="paused"),
        pytest.param([replica("t", "exited", clone=False, crashed=False), replica("a")], "no container of the service's own is running", id="stopped"),
    ],
)  # fmt: skip
def test_what_the_owner_holds(replicas: list[Replica], words: str | None) -> None:
    why = held(replicas, NOW)
    assert why == words if words is None else why is not None and words in why


def test_a_service_whose_template_went_first_is_being_removed_not_broken() -> None:
    leaving = [
        replace(replica("a"), stopping_since=NOW),
        replica("b", "exited", crashed=False, finished=1),
    ]
    assert being_removed(leaving, NOW)
    assert not being_removed([*leaving, replica("c")], NOW)  # one that still serves
    assert not being_removed([SERVING, *leaving], NOW)
    assert not being_removed([], NOW)


def test_a_clone_an_autoscaler_stopped_to_remove_is_removed_at_once_and_never_rests() -> None:
    # An instance marked it as being removed and stopped it, then was frozen (SIGSTOP past its
    # lease's ttl) before it removed it. The instance that leads now finishes the removal at
    # once: no owner's stop to wait STOPPED_GRACE out, nor a change that holds the service.
    users = replica("a", "exited", crashed=False, finished=1)
    ours = replace(replica("b", "exited", crashed=False, finished=1), removing=True)
    assert broken(users, NOW) is None
    assert broken(ours, NOW) == "b was being removed by the autoscaler"
    assert held([SERVING, ours], NOW) is None
    assert held([SERVING, users], NOW) is not None
    repair = CrashLoop().plan([SERVING, replica("c"), ours], now=0, wall=NOW, decided=2)
    assert repair is not None and repair.remove == (ours,) and repair.replace == 0
    # Marked but still running (frozen before its stop): it serves, and nothing is broken.
    assert broken(replace(replica("d"), removing=True), NOW) is None
