"""Swarm services and tasks as the controller sees them: keys, counts and readiness."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.backends.swarm.services import asleep_replica, service_key, task_replica
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
