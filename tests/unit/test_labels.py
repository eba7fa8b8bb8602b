"""Labels to a service spec: defaults, and an error naming the service, label and value."""

from __future__ import annotations

import pytest

from autoscaler.errors import LabelError
from autoscaler.labels import ServiceKey, service_key
from autoscaler.spec import parse

KEY = ServiceKey("shop", "web")
COMPOSE = {"com.docker.compose.project": "shop", "com.docker.compose.service": "web"}
GOOD = COMPOSE | {
    "autoscaler.enable": "true",
    "autoscaler.max": "5",
    "autoscaler.cpu.target": "60",
}


def test_defaults() -> None:
    spec = parse(KEY, GOOD)
    assert (spec.minimum, spec.maximum, spec.policy_name, spec.paused) == (
        1, 5, "target-tracking", False,
    )  # fmt: skip


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
    ("change", "label", "value", "words"),
    [
        pytest.param({"autoscaler.max": None}, "autoscaler.max", None, "required", id="max-missing"),
        pytest.param({"autoscaler.max": "many"}, "autoscaler.max", "many", "whole number", id="max-not-a-number"),
        pytest.param({"autoscaler.min": "2.5"}, "autoscaler.min", "2.5", "whole number", id="min-fraction"),
        pytest.param({"autoscaler.min": "0"}, "autoscaler.min", "0", "at least 1", id="min-zero"),
        pytest.param({"autoscaler.min": "9"}, "autoscaler.min", "9", "greater than max 5", id="min-above-max"),
        pytest.param({"autoscaler.cpu.target": None}, "autoscaler.cpu.target", None, "required", id="target-missing"),
        pytest.param({"autoscaler.cpu.target": "high"}, "autoscaler.cpu.target", "high", "number", id="target-text"),
        pytest.param({"autoscaler.cpu.target": "-5"}, "autoscaler.cpu.target", "-5", "greater than 0", id="target-negative"),
        pytest.param({"autoscaler.memory.target": "150"}, "autoscaler.memory.target", "150", "less than or equal to 100", id="memory-over-100"),
        pytest.param({"autoscaler.scale-down.tolerance": "2"}, "autoscaler.scale-down.tolerance", "2", "less than 1", id="tolerance-too-wide"),
        pytest.param({"autoscaler.scale-down.stabilization": "soon"}, "autoscaler.scale-down.stabilization", "soon", "duration", id="duration-text"),
        pytest.param({"autoscaler.maxx": "5"}, "autoscaler.maxx", "5", "unknown label", id="typo"),
        pytest.param({"autoscaler.policy": "magic"}, "autoscaler.policy", "magic", "unknown policy", id="unknown-policy"),
        pytest.param({"autoscaler.paused": "maybe"}, "autoscaler.paused", "maybe", "true or false", id="paused-not-bool"),
        pytest.param({"autoscaler.enable": "ture"}, "autoscaler.enable", "ture", "true or false", id="enable-typo"),
    ],
)  # fmt: skip
def test_bad_labels_name_service_label_and_value(
    change: dict[str, str | None], label: str, value: str | None, words: str
) -> None:
    labels = {k: v for k, v in (GOOD | change).items() if v is not None}
    with pytest.raises(LabelError) as caught:
        parse(KEY, labels)
    error = caught.value
    assert (error.service, error.label, error.value) == ("shop/web", label, value)
    assert words in str(error)
    assert str(error).startswith(f"service shop/web: label {label}")


def test_outside_compose_the_service_label_is_required() -> None:
    labels = {k: v for k, v in GOOD.items() if not k.startswith("com.docker")}
    with pytest.raises(LabelError, match=r"autoscaler\.service: required outside Compose"):
        parse(ServiceKey("standalone", "x-1"), labels)
