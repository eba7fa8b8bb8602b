"""Policies by name: the built-ins, plus any third party's registered under the entry-point group
`autoscaler.policies` (`name = "package.module:Class"`).

A policy class has a pydantic `Options` model whose field aliases are label keys below
`autoscaler.` (e.g. `cpu.target`) and is constructed as `Class(options)`. It may name defaults
of its own for the behaviour labels every policy shares (`behavior_defaults`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from policies.base import Policy
from policies.options import BehaviorOptions
from policies.predictive import Predictive
from policies.step import Step
from policies.target_tracking import Hpa, TargetTracking

ENTRY_POINT_GROUP = "autoscaler.policies"
DEFAULT = "target-tracking"

_Model = TypeVar("_Model", bound=BaseModel)

_BUILTINS: dict[str, type[Any]] = {cls.name: cls for cls in (TargetTracking, Hpa, Step, Predictive)}


class PolicyClass(Protocol):
    name: ClassVar[str]
    Options: ClassVar[type[BaseModel]]

    def __call__(self, options: Any) -> Policy: ...


class PolicyError(ValueError):
    """An option is wrong: `key` is the label key below `autoscaler.`, `value` what it held."""

    def __init__(self, key: str, value: str | None, reason: str) -> None:
        super().__init__(f"{key}={value!r}: {reason}" if value is not None else f"{key}: {reason}")
        self.key = key
        self.value = value
        self.reason = reason


@cache
def _registered() -> dict[str, EntryPoint | type[Any]]:
    """Every policy by name; a plugin's class is loaded when first asked for."""
    found: dict[str, EntryPoint | type[Any]] = dict(_BUILTINS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return found


def names() -> list[str]:
    return sorted(_registered())


@cache
def lookup(name: str) -> type[Any]:
    """Policy class `name`; a plugin that cannot be loaded is that service's error, not all."""
    found = _registered().get(name)
    if found is None:
        raise PolicyError("policy", name, f"unknown policy; known: {', '.join(names())}")
    if not isinstance(found, EntryPoint):
        return found
    try:
        loaded: type[Any] = found.load()
    except Exception as exc:
        raise PolicyError("policy", name, f"plugin {found.value} did not load: {exc!r}") from exc
    return loaded


def option_keys(name: str) -> frozenset[str]:
    """The label keys (below `autoscaler.`) that policy `name` reads."""
    options: type[BaseModel] = lookup(name).Options
    return frozenset(f.alias or n for n, f in options.model_fields.items())


BEHAVIOR_KEYS = frozenset(f.alias or n for n, f in BehaviorOptions.model_fields.items())
"""The behaviour labels (below `autoscaler.`) that every policy shares."""


def create(name: str, raw: Mapping[str, str]) -> Policy:
    """Build policy `name` from its label values; a wrong value raises PolicyError naming it."""
    cls = lookup(name)
    policy: Policy = cls(validate(cls.Options, raw))
    return policy


def behavior(name: str, raw: Mapping[str, str]) -> BehaviorOptions:
    """The behaviour options of a service whose policy is `name`, from its behaviour labels;
    the policy's own defaults apply where a label is not set."""
    defaults: Mapping[str, str] = getattr(lookup(name), "behavior_defaults", {})
    return validate(BehaviorOptions, {**defaults, **raw})


def validate(model: type[_Model], raw: Mapping[str, str]) -> _Model:
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        # A rule over several labels names the one it is about in its context.
        named = (first.get("ctx") or {}).get("label")
        key = ".".join(str(part) for part in first["loc"]) or named or "policy"
        raise PolicyError(key, raw.get(key), first["msg"]) from exc


def build(name: str, labels: Mapping[str, str]) -> tuple[Policy, BehaviorOptions]:
    """Policy `name` and its behaviour from `labels` (keys below `autoscaler.`), each taking only
    the labels it knows: how the simulator runs several policies on one set of tuned labels."""
    known = option_keys(name)
    policy = create(name, {k: v for k, v in labels.items() if k in known})
    return policy, behavior(name, {k: v for k, v in labels.items() if k in BEHAVIOR_KEYS})
