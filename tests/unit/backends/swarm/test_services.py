"""Swarm services and tasks as the controller sees them: keys, counts and readiness."""

from __future__ import annotations

import json
from typing import Any, cast

import aiodocker
import pytest

from autoscaler.backends.swarm.services import (
    SwarmView,
    asleep_replica,
    service_key,
    task_replica,
)
from autoscaler.control.replicas import counted
from autoscaler.labels import ServiceKey

SERVICE: dict[str, Any] = {
    "ID": "svc1",
    "Spec": {
        "Name": "shop_web",
        "Labels": {"com.docker.stack.namespace": "shop", "autoscaler.enable": "true"},
        "TaskTemplate": {"Resources": {"Limits": {"NanoCPUs": 500_000_000}}},
        "Mode": {"Replicated": {"Replicas": 2}},
    },
}


def task(state: str, container: str | None = "c1") -> dict[str, Any]:
    status: dict[str, Any] = {"State": state, "Timestamp": "2026-01-01T00:00:00Z"}
    if container:
        status["ContainerStatus"] = {"ContainerID": container}
    return {"ID": "task1", "Slot": 3, "NodeID": "n1", "Status": status}


def test_a_stack_service_is_keyed_by_its_stack_and_its_name_within_it() -> None:
    # Never the key of a Compose project `shop`'s service `web`: the scope keeps them apart.
    assert service_key(SERVICE) == ServiceKey("shop", "web", scope="swarm")
    assert service_key(SERVICE) != ServiceKey("shop", "web")
    assert str(service_key(SERVICE)) == "swarm/shop/web"
    alone = {"ID": "s", "Spec": {"Name": "web", "Labels": {}}}
    assert str(service_key(alone)) == "swarm/swarm/web"


@pytest.mark.parametrize(
    ("state", "is_counted", "ready"),
    [
        ("running", True, True),
        ("preparing", True, False),
        ("starting", True, False),
        ("pending", True, False),
        ("failed", False, False),
        ("shutdown", False, False),
    ],
)
def test_a_task_on_its_way_is_counted_but_is_not_a_ready_sample(
    state: str, is_counted: bool, ready: bool
) -> None:
    replica = task_replica(SERVICE, task(state))
    assert bool(counted([replica])) is is_counted
    assert replica.running is ready
    assert replica.cpu_limit == 0.5
    assert replica.id == "c1"
    assert replica.name == "shop_web.3"
    assert replica.scheduled and not replica.users  # Swarm places and mends it


def test_a_service_the_autoscaler_put_to_zero_stands_as_one_replica_that_never_counts() -> None:
    # No task, but its controller needs the service's labels to wake it.
    asleep = asleep_replica(SERVICE)
    assert asleep.key == ServiceKey("shop", "web", scope="swarm")
    assert asleep.labels["autoscaler.enable"] == "true"
    assert counted([asleep]) == []


class Manager:
    """A manager's answers to the listing, its desired-state filter kept as Swarm keeps it."""

    def __init__(self, tasks: list[dict[str, Any]]) -> None:
        self.tasks = tasks

    async def _query_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        if path == "services":
            return [SERVICE | {"Spec": SERVICE["Spec"] | {"Mode": {"Replicated": {"Replicas": 3}}}}]
        if path == "nodes":
            return [{"ID": n, "Description": {"Hostname": n}} for n in ("n1", "n2", "n3")]
        wanted = json.loads((params or {})["filters"])["desired-state"]
        return [t for t in self.tasks if t["DesiredState"] in wanted]


def slot(number: int, desired: str, state: str, node: str) -> dict[str, Any]:
    return {"ID": f"t{number}{node}", "ServiceID": "svc1", "Slot": number, "NodeID": node,
            "DesiredState": desired, "Status": {"State": state, "ContainerStatus": {
                "ContainerID": f"c{number}{node}"}}}  # fmt: skip


async def test_a_replacement_swarm_holds_back_counts_once_a_slot_as_on_its_way() -> None:
    # Node n3 went down: its task of slot 2 is shut down, and Swarm's replacement on n2 waits
    # out the restart delay at desired `ready`. Slot 3's rolling update waits at `ready` too,
    # beside its running task. The service is what its Spec says: 3, never 2 nor 4.
    manager = Manager([
        slot(1, "running", "running", "n1"),
        slot(2, "shutdown", "running", "n3"), slot(2, "ready", "ready", "n2"),
        slot(3, "running", "running", "n2"), slot(3, "ready", "ready", "n1"),
    ])  # fmt: skip
    found = await SwarmView(cast(aiodocker.Docker, manager)).refresh()
    replicas = found[ServiceKey("shop", "web", scope="swarm")]
    assert len(counted(replicas)) == 3
    assert sorted(r.id for r in replicas) == ["c1n1", "c2n2", "c3n2"]
    assert [r.running for r in replicas if r.id == "c2n2"] == [False]  # on its way, no sample
