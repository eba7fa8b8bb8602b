"""The chaos run's invariants (bench/chaos/watch.py) as the engine's events and the broker's
messages feed them: each one is seen broken when it is, and none when nothing is wrong. And the
jobs (bench/chaos/jobs.py) the `lost jobs` one counts: none seen done twice that was not."""

from __future__ import annotations

from typing import Any

from bench.chaos.jobs import Jobs
from bench.chaos.watch import Watch

PROJECT, LEASE = "chaos1", "chaos-lease-chaos1"


def event(action: str, ident: str, number: int, *, clone: bool = True, term: str = "1",
          name: str | None = None) -> dict[str, Any]:  # fmt: skip
    attrs = {"name": name or f"{PROJECT}-worker-{number}", "com.docker.compose.project": PROJECT,
             "com.docker.compose.service": "worker",
             "com.docker.compose.container-number": str(number)}  # fmt: skip
    if clone:
        attrs |= {"autoscaler.clone-of": "t", "autoscaler.term": term}
    return {"Action": action, "Actor": {"ID": ident, "Attributes": attrs}}


def lease(term: str, holder: str = "a", at: float = 100.0) -> dict[str, Any]:
    return {"Action": "create", "timeNano": int(at * 1e9), "Actor": {"ID": "l", "Attributes": {
        "name": LEASE, "autoscaler.lease.term": term, "autoscaler.lease.holder": holder}}}  # fmt: skip


def watch() -> Watch:
    w = Watch(PROJECT, {"worker": 2}, LEASE)
    w.engine(lease("1"))
    w.engine(event("start", "u1", 1, clone=False))
    return w


def test_a_clean_scale_up_and_down_breaks_nothing() -> None:
    w = watch()
    for e in (event("create", "c2", 2), event("start", "c2", 2), event("die", "c2", 2),
              event("destroy", "c2", 2)):  # fmt: skip
        w.engine(e)
    w.broker("p/chaos1/worker/events", {"Action": "scale_up", "id": "a"})
    assert not any(w.violations.values())
    assert w.count("worker") == 1 and w.actions == 1


def test_more_than_max_running_two_with_one_number_and_a_stale_create_are_each_seen() -> None:
    w = watch()
    w.engine(event("start", "c2", 2))
    w.engine(event("start", "c3", 2))  # number 2 twice, and 3 running for a max of 2
    w.engine(lease("2"))  # taken over
    w.engine(event("create", "c4", 4, term="1"))  # by the old term, after it
    assert [len(w.violations[k]) for k in ("over max", "same number", "stale create")] == [1, 1, 1]


def test_the_users_container_removed_by_anyone_but_the_user_and_anything_after_down() -> None:
    w = watch()
    w.engine(event("destroy", "u1", 1, clone=False))
    assert len(w.violations["user's removed"]) == 1
    w.users_own, w.down_at = True, 0.0
    w.engine(event("destroy", "u1", 1, clone=False))  # the user's own down: theirs
    w.engine(event("create", "c5", 5))
    assert len(w.violations["user's removed"]) == 1 and len(w.violations["left behind"]) == 1


def test_an_action_told_twice_by_id_is_a_violation() -> None:
    w = watch()
    for _ in range(2):
        w.broker("p/chaos1/worker/events", {"Action": "scale_down", "id": "same"})
    w.broker("p/chaos1/worker/events", {"Action": "error", "id": "same"})  # not an action
    assert len(w.violations["events"]) == 1


def test_an_action_told_by_an_instance_that_lost_the_lease_is_a_violation_past_a_second() -> None:
    w = watch()
    w.engine(lease("2", holder="b", at=200.0))  # b took over from a at 200 s

    def told(by: str, at: float) -> None:
        w.broker("p/chaos1/worker/events", {"Action": "scale_down", "timeNano": int(at * 1e9),
                                            "Actor": {"Attributes": {"instance": by}}})  # fmt: skip

    told("a", 200.5)  # an action of a's that ended as b took over: told just after
    told("b", 230.0)
    assert not w.violations["stale action"]
    told("a", 210.0)  # a, frozen and back, acting on
    assert len(w.violations["stale action"]) == 1


async def test_jobs_pushed_after_an_unanswered_push_never_reuse_its_ids() -> None:
    queue: list[str] = []
    answered = iter([False, True])

    async def send(ids: list[str]) -> int:
        queue.extend(ids)  # it lands, answered or not
        if not next(answered):
            raise OSError("the engine went away before it answered")
        return len(queue)

    jobs, demand = Jobs(), {"jobs": 0}
    await jobs.push(send, 3, demand)
    await jobs.push(send, 3, demand)
    assert len(set(queue)) == len(queue) == 6, queue
    assert jobs.pushed == queue[3:] and jobs.unanswered == 3 and demand["jobs"] == 6
