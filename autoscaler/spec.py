"""A service's labels (those of its template) -> a frozen, validated `ServiceSpec`, or a
`LabelError` that names the service, the label and its value.

Three kinds of label: the common ones (`enable`, `min`, `max`, `policy`, `paused`, ...), the
behaviour labels every policy shares (`scale-up.*`, `scale-down.stabilization`, ...), and the
options of the chosen policy. A label that is none of these is an error, for every policy alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

from autoscaler import labels
from autoscaler.errors import LabelError
from autoscaler.labels import ServiceKey
from policies import registry
from policies.base import Policy
from policies.options import BehaviorOptions

_COMMON = frozenset({"enable", "service", "clone-of", "min", "max", "policy", "paused"})
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    key: ServiceKey
    minimum: int
    maximum: int
    paused: bool
    policy_name: str
    policy_class: type[Any]
    policy_options: BaseModel
    behavior: BehaviorOptions
    labels: Mapping[str, str]
    """The `autoscaler.*` labels this spec was parsed from, to notice when they change."""

    def new_policy(self) -> Policy:
        """A fresh policy object; it keeps state of its own for as long as the spec stands."""
        policy: Policy = self.policy_class(self.policy_options)
        return policy


def own_labels(all_labels: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in all_labels.items() if k.startswith(labels.PREFIX)}


def parse(key: ServiceKey, all_labels: Mapping[str, str]) -> ServiceSpec:
    """Validate a service's labels (those of its template); raise LabelError naming the label."""
    own = own_labels(all_labels)
    if not _bool(key, labels.ENABLE, own.get(labels.ENABLE, "")):
        raise LabelError(
            str(key), labels.ENABLE, own[labels.ENABLE], "set to false, so not managed"
        )
    compose = labels.COMPOSE_PROJECT in all_labels and labels.COMPOSE_SERVICE in all_labels
    if labels.SERVICE not in own and not compose:
        raise LabelError(
            str(key), labels.SERVICE, None, "required outside Compose to name the service"
        )
    if labels.MAX not in own:
        raise LabelError(str(key), labels.MAX, None, "required")
    minimum = _int(key, labels.MIN, own.get(labels.MIN, "1"), 1)
    maximum = _int(key, labels.MAX, own[labels.MAX], 1)
    if minimum > maximum:
        raise LabelError(str(key), labels.MIN, own.get(labels.MIN), f"greater than max {maximum}")
    paused = _bool(key, labels.PAUSED, own.get(labels.PAUSED, "false"))

    policy_name = own.get(labels.POLICY, registry.DEFAULT).strip()
    try:
        policy_keys = registry.option_keys(policy_name)
        options: dict[str, str] = {}
        behavior: dict[str, str] = {}
        for label, value in own.items():
            short = label.removeprefix(labels.PREFIX)
            if short in _COMMON:
                continue
            if short in registry.BEHAVIOR_KEYS:
                behavior[short] = value
            elif short in policy_keys:
                options[short] = value
            else:
                raise LabelError(str(key), label, value, _unknown(policy_name))
        policy_class = registry.lookup(policy_name)
        policy_options = registry.validate(policy_class.Options, options)
        behavior_options = registry.behavior(policy_name, behavior)
    except registry.PolicyError as exc:
        raise LabelError(str(key), labels.PREFIX + exc.key, exc.value, exc.reason) from exc
    return ServiceSpec(
        key=key,
        minimum=minimum,
        maximum=maximum,
        paused=paused,
        policy_name=policy_name,
        policy_class=policy_class,
        policy_options=policy_options,
        behavior=behavior_options,
        labels=MappingProxyType(own),
    )


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


def _unknown(policy_name: str) -> str:
    keys = sorted(_COMMON | registry.BEHAVIOR_KEYS | registry.option_keys(policy_name))
    known = ", ".join(labels.PREFIX + k for k in keys)
    return f"unknown label (policy {policy_name} knows: {known})"
