"""Option models shared by policies: label values are strings, validated here into numbers."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


YEAR = 366 * 86_400.0
"""The longest duration a label may give: every window, cooldown and lead fits in a year, and a
longer one (`9999999999h`) would overflow a date it is added to."""


def seconds(text: str) -> float:
    """`300`, `300s`, `5m`, `1.5h`, `250ms` -> seconds, a year at most; ValueError for anything
    else."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError("expected a duration such as 30, 30s, 5m or 1h")
    value = float(match.group(1)) * _UNIT[match.group(2)]
    if not value <= YEAR:  # and not infinite: float("9" * 400) is
        raise ValueError(f"expected a duration of at most a year ({YEAR / 3600:g}h)")
    return value


def _seconds(value: object) -> object:
    return seconds(value) if isinstance(value, str) else value


Seconds = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]


class PolicyOptions(BaseModel):
    """Base of every policy's options: immutable, label keys as aliases, nothing unknown."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")


class BehaviorOptions(PolicyOptions):
    """How fast a proposal may be followed, the same labels for every policy; the defaults are
    the Kubernetes HPA's."""

    up_stabilization: Seconds = Field(default=0.0, alias="scale-up.stabilization")
    """Follow the lowest proposal of this window when scaling up (0: the newest)."""
    down_stabilization: Seconds = Field(default=300.0, alias="scale-down.stabilization")
    """Follow the highest proposal of this window when scaling down."""
    up_period: Seconds = Field(default=15.0, alias="scale-up.period", gt=0)
    up_max_replicas: int = Field(default=4, alias="scale-up.max-replicas", ge=0)
    """Per period, add at most the larger of this many replicas and max-percent."""
    up_max_percent: float = Field(default=100.0, alias="scale-up.max-percent", ge=0)
    up_saturated_max_percent: float = Field(
        default=100.0, alias="scale-up.saturated-max-percent", ge=0
    )
    """While the service is saturated, each decision may add this percent of the current count
    (or `scale-up.max-replicas`, whichever is more), whatever the period's rate limit and the
    scale-up cooldown say."""
    down_period: Seconds = Field(default=15.0, alias="scale-down.period", gt=0)
    down_max_replicas: int | None = Field(default=None, alias="scale-down.max-replicas", ge=0)
    """Per period, remove at most the larger of this many replicas and max-percent."""
    down_max_percent: float = Field(default=100.0, alias="scale-down.max-percent", ge=0, le=100)
    up_cooldown: Seconds = Field(default=0.0, alias="scale-up.cooldown")
    """No scale-up until this long after the last scale action."""
    down_cooldown: Seconds = Field(default=0.0, alias="scale-down.cooldown")
    """No scale-down until this long after the last scale action."""
    to_zero_after: Seconds = Field(default=300.0, alias="scale-down.to-zero-after")
    """With `min: "0"`: how long the metric must stay below activation before the last
    replica goes (policies/zero.py)."""
