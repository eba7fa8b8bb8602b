"""Which service a container belongs to, by its labels."""

from __future__ import annotations

import pytest

from autoscaler.labels import ServiceKey, service_key

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
