"""Container labels -> which service a container belongs to, and that service's validated spec.

autoscaler.enable=true        opt in (required)
autoscaler.service=NAME       the service outside Compose (Compose labels name it otherwise)
autoscaler.min=1              replicas never go below this
autoscaler.max=N              replicas never go above this (required)
autoscaler.policy=NAME        target-tracking by default; its options are labels too
autoscaler.paused=false       hold the service at its current count
autoscaler.clone-of=ID        set by the autoscaler on the containers it creates
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from autoscaler.errors import LabelError
from policies import registry
from policies.base import Policy

PREFIX = "autoscaler."
ENABLE = "autoscaler.enable"
SERVICE = "autoscaler.service"
CLONE_OF = "autoscaler.clone-of"
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_NUMBER = "com.docker.compose.container-number"
STANDALONE_PROJECT = "standalone"

_COMMON = frozenset({"enable", "service", "clone-of", "min", "max", "policy", "paused"})
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True, slots=True, order=True)
class ServiceKey:
    project: str
    service: str

    def __str__(self) -> str:
        return f"{self.project}/{self.service}"


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    key: ServiceKey
    minimum: int
    maximum: int
    policy: Policy
    policy_name: str
    paused: bool
    labels: Mapping[str, str]
    """The `autoscaler.*` labels this spec was parsed from, to notice when they change."""


def opted_in(labels: Mapping[str, str]) -> bool:
    """True when the container carries `autoscaler.enable`, whatever its value: a wrong value is
    reported by `parse`, not silently ignored."""
    return ENABLE in labels


def service_key(labels: Mapping[str, str], container_name: str) -> ServiceKey:
    if SERVICE in labels:
        return ServiceKey(labels.get(COMPOSE_PROJECT, STANDALONE_PROJECT), labels[SERVICE])
    if COMPOSE_PROJECT in labels and COMPOSE_SERVICE in labels:
        return ServiceKey(labels[COMPOSE_PROJECT], labels[COMPOSE_SERVICE])
    # Without a service name the container is a service of its own, so the error has a home.
    return ServiceKey(STANDALONE_PROJECT, container_name)


def _bool(key: ServiceKey, label: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise LabelError(str(key), label, value, "expected true or false")


def _int(key: ServiceKey, label: str, value: str, minimum: int) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise LabelError(str(key), label, value, "expected a whole number") from None
    if number < minimum:
        raise LabelError(str(key), label, value, f"must be at least {minimum}")
    return number


def parse(key: ServiceKey, labels: Mapping[str, str]) -> ServiceSpec:
    """Validate a service's labels (those of its template); raise LabelError naming the label."""
    own = {k: v for k, v in labels.items() if k.startswith(PREFIX)}
    if not _bool(key, ENABLE, own.get(ENABLE, "")):
        raise LabelError(str(key), ENABLE, own[ENABLE], "set to false, so not managed")
    if SERVICE not in own and not (COMPOSE_PROJECT in labels and COMPOSE_SERVICE in labels):
        raise LabelError(str(key), SERVICE, None, "required outside Compose to name the service")
    if "autoscaler.max" not in own:
        raise LabelError(str(key), "autoscaler.max", None, "required")
    minimum = _int(key, "autoscaler.min", own.get("autoscaler.min", "1"), 1)
    maximum = _int(key, "autoscaler.max", own["autoscaler.max"], 1)
    if minimum > maximum:
        raise LabelError(
            str(key), "autoscaler.min", own.get("autoscaler.min"), f"greater than max {maximum}"
        )
    paused = _bool(key, "autoscaler.paused", own.get("autoscaler.paused", "false"))

    policy_name = own.get("autoscaler.policy", registry.DEFAULT).strip()
    try:
        known = _COMMON | registry.option_keys(policy_name)
        options = {
            k.removeprefix(PREFIX): v
            for k, v in own.items()
            if k.removeprefix(PREFIX) not in _COMMON
        }
        for option in options:
            if option not in known:
                raise LabelError(str(key), PREFIX + option, options[option], _unknown(policy_name))
        policy = registry.create(policy_name, options)
    except registry.PolicyError as exc:
        raise LabelError(str(key), PREFIX + exc.key, exc.value, exc.reason) from exc
    return ServiceSpec(
        key=key,
        minimum=minimum,
        maximum=maximum,
        policy=policy,
        policy_name=policy_name,
        paused=paused,
        labels=MappingProxyType(own),
    )


def _unknown(policy_name: str) -> str:
    keys = sorted(_COMMON | registry.option_keys(policy_name))
    return f"unknown label (policy {policy_name} knows: {', '.join(PREFIX + k for k in keys)})"
