"""Policies by name: the built-ins, plus any third party's registered under the entry-point group
`autoscaler.policies` (`name = "package.module:Class"`).

A policy class has a pydantic `Options` model whose field aliases are label keys below
`autoscaler.` (e.g. `cpu.target`) and is constructed as `Class(options)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ValidationError

from policies.base import Policy
from policies.step import Step
from policies.target_tracking import Hpa, TargetTracking

ENTRY_POINT_GROUP = "autoscaler.policies"
DEFAULT = "target-tracking"

_BUILTINS: dict[str, type[Any]] = {cls.name: cls for cls in (TargetTracking, Hpa, Step)}


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
def _registered() -> dict[str, type[Any]]:
    found = dict(_BUILTINS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in found:
            found[ep.name] = ep.load()
    return found


def names() -> list[str]:
    return sorted(_registered())


def lookup(name: str) -> type[Any]:
    try:
        return _registered()[name]
    except KeyError:
        raise PolicyError("policy", name, f"unknown policy; known: {', '.join(names())}") from None


def option_keys(name: str) -> frozenset[str]:
    """The label keys (below `autoscaler.`) that policy `name` reads."""
    options: type[BaseModel] = lookup(name).Options
    return frozenset(f.alias or n for n, f in options.model_fields.items())


def create(name: str, raw: Mapping[str, str]) -> Policy:
    """Build policy `name` from its label values; a wrong value raises PolicyError naming it."""
    cls = lookup(name)
    try:
        options = cls.Options.model_validate(dict(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "policy"
        raise PolicyError(key, raw.get(key), first["msg"]) from exc
    policy: Policy = cls(options)
    return policy
