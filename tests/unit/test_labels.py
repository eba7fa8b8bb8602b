"""Which service a container belongs to, by its labels."""

from __future__ import annotations

import pytest

from autoscaler.labels import ServiceKey, opted_in, service_key

COMPOSE = {"com.docker.compose.project": "shop", "com.docker.compose.service": "web"}


@pytest.mark.parametrize(
    ("labels", "service"),
    [
        pytest.param(COMPOSE, ServiceKey("shop", "web"), id="compose-project-and-service"),
        pytest.param({"autoscaler.service": "worker"}, ServiceKey("standalone", "worker"), id="outside-compose"),
        pytest.param(COMPOSE | {"autoscaler.service": "api"}, ServiceKey("shop", "api"), id="label-overrides-compose"),
        pytest.param({}, ServiceKey("standalone", "lonely-1"), id="unnamed-is-its-own-service"),
    ],
)  # fmt: skip
def test_which_service_a_container_belongs_to(labels: dict[str, str], service: ServiceKey) -> None:
    assert service_key(labels, "lonely-1") == service


@pytest.mark.parametrize(
    ("labels", "opted"),
    [
        pytest.param(COMPOSE | {"autoscaler.enable": "true"}, True, id="opted-in"),
        pytest.param(COMPOSE | {"autoscaler.enable": "yes please"}, True, id="wrong-value-still-seen-to-be-reported"),
        pytest.param(COMPOSE, False, id="not-opted-in"),
        pytest.param(COMPOSE | {"autoscaler.enable": "true", "com.docker.compose.oneoff": "False"}, True, id="a-replica"),
        pytest.param(COMPOSE | {"autoscaler.enable": "true", "com.docker.compose.oneoff": "True"}, False, id="compose-run-one-off"),
        pytest.param({"autoscaler.enable": "true", "com.docker.swarm.task.id": "x"}, False, id="swarm-task"),
    ],
)  # fmt: skip
def test_which_containers_are_replicas_of_an_opted_in_service(
    labels: dict[str, str], opted: bool
) -> None:
    assert opted_in(labels) is opted
