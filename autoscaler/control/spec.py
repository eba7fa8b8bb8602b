"""A service's labels (those of its template) -> a frozen, validated `ServiceSpec`, or a
`LabelError` that names the service, the label and its value.

Three kinds of label: the common ones (`enable`, `min`, `max`, `policy`, `paused`, ...), the
behaviour labels every policy shares (`scale-up.*`, `scale-down.stabilization`, ...), and the
options of the chosen policy. A label that is none of these is an error, for every policy alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, tzinfo
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autoscaler import labels
from autoscaler.errors import LabelError
from autoscaler.labels import ServiceKey
from policies import registry
from policies.base import Policy
from policies.options import BehaviorOptions, Seconds, seconds
from policies.schedule import Bounds, Schedule, parse_window
from policies.zero import ZeroRule

_COMMON = frozenset(
    k.removeprefix(labels.PREFIX)
    for k in (labels.ENABLE, labels.SERVICE, labels.CLONE_OF, labels.ASLEEP, labels.MIN,
              labels.MAX, labels.POLICY, labels.PAUSED, labels.ALLOW_PRIVILEGED)
)  # fmt: skip
_SCHEDULE = "schedule."


class _Common(BaseModel):
    """The labels every metric source has, whatever its kind."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    source: str = Field(alias="metric.source", min_length=1)
    max_age: Seconds | None = Field(default=None, alias="metric.max-age")
    fallback: int | None = Field(default=None, alias="metric.fallback", ge=0, le=10_000)
    fallback_after: Seconds | None = Field(default=None, alias="metric.fallback-after")


COMMON_KEYS = frozenset(f.alias or n for n, f in _Common.model_fields.items())

Sources = Mapping[str, type[BaseModel]]
"""Each kind of metric source and the model of its own labels (sources/registry.py's OPTIONS,
handed to the core from outside, so that it never imports a source); each model has a `name`."""


@dataclass(frozen=True, slots=True)
class MetricSource:
    """Where a service's demand is read: a source of one kind (`metric.source`) with its own
    options, and what every source has. The labels `metric.target` and `metric.activation`
    belong to the policy, which turns the value into a count."""

    source: str
    options: Any
    """The kind's own options, validated by its model (sources/<kind>.py's Options)."""
    max_age: float | None = None
    """An older value is missing; three intervals when unset."""
    fallback: int | None = None
    """Replicas to run once the value has been missing for `fallback_after`, instead of
    holding the count (the default): policies/fallback.py."""
    fallback_after: float | None = None
    """How long the value must be missing first (counted from when it went missing: past its
    max age, or the source failing); three intervals when unset."""

    @property
    def name(self) -> str:
        """The source in words, `mqtt queue/jobs`, as the options say it."""
        return str(self.options.name)


def _keys(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(f.alias or n for n, f in model.model_fields.items())


def _metric(key: ServiceKey, metric: Mapping[str, str], sources: Sources) -> MetricSource:
    """The service's metric source from its `metric.*` labels (keys below `autoscaler.`)."""
    try:
        common = _Common.model_validate({k: v for k, v in metric.items() if k in COMMON_KEYS})
    except ValidationError as exc:
        raise _label_error(key, metric, exc) from exc
    kind = sources.get(common.source)
    if kind is None:
        label = labels.PREFIX + "metric.source"
        raise LabelError(str(key), label, common.source,
                         f"unknown source (known: {', '.join(sorted(sources))})")  # fmt: skip
    own = _keys(kind)
    for name, value in sorted(metric.items()):
        if name not in COMMON_KEYS and name not in own:
            raise LabelError(str(key), labels.PREFIX + name, value,
                             f"not for metric.source={common.source}")  # fmt: skip
    try:
        options = kind.model_validate({k: v for k, v in metric.items() if k in own})
    except ValidationError as exc:
        raise _label_error(
            key, metric, exc, f"required with metric.source={common.source}"
        ) from exc
    return MetricSource(common.source, options, common.max_age, common.fallback,
                        common.fallback_after)  # fmt: skip


def _label_error(
    key: ServiceKey, metric: Mapping[str, str], exc: ValidationError, missing: str = "required"
) -> LabelError:
    first = exc.errors()[0]
    name = ".".join(str(part) for part in first["loc"])
    reason = missing if first["type"] == "missing" else first["msg"]
    return LabelError(str(key), labels.PREFIX + name, metric.get(name), reason)


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    key: ServiceKey
    minimum: int
    maximum: int
    paused: bool
    allow_privileged: bool
    """`autoscaler.allow-privileged`: a template with privileges beyond an ordinary container's
    may be cloned."""
    policy_name: str
    policy_class: type[Any]
    policy_options: BaseModel
    behavior: BehaviorOptions
    metric: MetricSource | None
    labels: Mapping[str, str]
    """The `autoscaler.*` labels this spec was parsed from, to notice when they change."""
    schedule: Schedule = field(default_factory=Schedule)
    """`autoscaler.schedule.<name>` windows that change min and max, their `timezone` and
    `lead` (policies/schedule.py)."""

    def in_force(self, wall: float) -> tuple[ServiceSpec, Bounds]:
        """This spec with the `min` and `max` its schedule's windows set at `wall` (Unix time),
        and the bounds with the windows in force."""
        found = self.schedule.bounds(self.minimum, self.maximum, wall)
        if (found.minimum, found.maximum) == (self.minimum, self.maximum):
            return self, found
        return replace(self, minimum=found.minimum, maximum=found.maximum), found

    @property
    def zero(self) -> ZeroRule | None:
        """How the service goes to zero and wakes, where its `min` is 0 (policies/zero.py)."""
        if self.minimum != 0:
            return None
        return ZeroRule.of(self.behavior, self.policy_options)

    def new_policy(self) -> Policy:
        """A fresh policy object; it keeps state of its own for as long as the spec stands."""
        policy: Policy = self.policy_class(self.policy_options)
        return policy


def own_labels(all_labels: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in all_labels.items() if k.startswith(labels.PREFIX)}


def parse(key: ServiceKey, all_labels: Mapping[str, str], sources: Sources) -> ServiceSpec:
    """Validate a service's labels (those of its template), its metric source's with `sources`;
    raise LabelError naming the label."""
    own = own_labels(all_labels)
    if not _bool(key, labels.ENABLE, own.get(labels.ENABLE, "")):
        raise LabelError(
            str(key), labels.ENABLE, own[labels.ENABLE], "set to false, so not managed"
        )
    compose = labels.COMPOSE_PROJECT in all_labels and labels.COMPOSE_SERVICE in all_labels
    # A Swarm service has a name of its own (its backend keys it); only a lone container needs one.
    named = compose or labels.SWARM_SERVICE in all_labels
    if labels.SERVICE not in own and not named:
        raise LabelError(
            str(key), labels.SERVICE, None, "required outside Compose to name the service"
        )
    if labels.MAX not in own:
        raise LabelError(str(key), labels.MAX, None, "required")
    minimum = _int(key, labels.MIN, own.get(labels.MIN, "1"), 0)
    maximum = _int(key, labels.MAX, own[labels.MAX], 1)
    if minimum > maximum:
        raise LabelError(str(key), labels.MIN, own.get(labels.MIN), f"greater than max {maximum}")
    paused = _bool(key, labels.PAUSED, own.get(labels.PAUSED, "false"))
    allow_privileged = _bool(
        key, labels.ALLOW_PRIVILEGED, own.get(labels.ALLOW_PRIVILEGED, "false")
    )

    policy_name = own.get(labels.POLICY, registry.DEFAULT).strip()
    try:
        policy_keys = registry.option_keys(policy_name)
        options: dict[str, str] = {}
        behavior: dict[str, str] = {}
        metric: dict[str, str] = {}
        metric_keys = COMMON_KEYS.union(*(_keys(model) for model in sources.values()))
        for label, value in own.items():
            short = label.removeprefix(labels.PREFIX)
            if short in _COMMON or short.startswith(_SCHEDULE):
                continue
            if short in metric_keys:
                metric[short] = value
            elif short in registry.BEHAVIOR_KEYS:
                behavior[short] = value
            elif short in policy_keys:
                options[short] = value
            else:
                raise LabelError(str(key), label, value, _unknown(policy_name, metric_keys))
        if (
            "metric.source" in metric
            and "metric.target" in policy_keys
            and "metric.target" not in options
        ):
            label = labels.PREFIX + "metric.source"
            raise LabelError(
                str(key), label, own.get(label), "needs metric.target (a replica's share)"
            )
        policy_class = registry.lookup(policy_name)
        policy_options = registry.validate(policy_class.Options, options)
        behavior_options = registry.behavior(policy_name, behavior)
    except registry.PolicyError as exc:
        raise LabelError(str(key), labels.PREFIX + exc.key, exc.value, exc.reason) from exc
    source = _metric(key, metric, sources) if metric else None
    _check_metric(key, own, source, policy_options, minimum)
    return ServiceSpec(
        key=key,
        minimum=minimum,
        maximum=maximum,
        paused=paused,
        allow_privileged=allow_privileged,
        policy_name=policy_name,
        policy_class=policy_class,
        policy_options=policy_options,
        behavior=behavior_options,
        metric=source,
        labels=MappingProxyType(own),
        schedule=schedule_of(key, own),
    )


def allowed(spec: ServiceSpec, template: str, privileges: Sequence[str]) -> None:
    """LabelError where the service's template may do more than an ordinary container
    (`privileges`, in words) and its labels do not say `autoscaler.allow-privileged=true`: a
    clone is its template again, and a label put on the wrong container by mistake must not
    start privileged ones."""
    if privileges and not spec.allow_privileged:
        raise LabelError(str(spec.key), labels.ALLOW_PRIVILEGED,
                         spec.labels.get(labels.ALLOW_PRIVILEGED),
                         f"its template {template} {'; '.join(privileges)}: every clone would "
                         "be too; set it to true to clone it so")  # fmt: skip


def schedule_of(key: ServiceKey, own: Mapping[str, str]) -> Schedule:
    """The service's schedule windows, their time zone and how early a window's min comes, from
    its `autoscaler.schedule.*` labels (`simulate` reads them the same way)."""
    zone_label = labels.PREFIX + _SCHEDULE + "timezone"
    lead_label = labels.PREFIX + _SCHEDULE + "lead"
    lead = 0.0
    if lead_label in own:
        try:
            lead = seconds(own[lead_label])
        except ValueError as exc:
            raise LabelError(str(key), lead_label, own[lead_label],
                             f"{exc}, e.g. 90s or 2m") from None  # fmt: skip
    timezone: tzinfo = UTC
    if zone_label in own:
        try:
            timezone = ZoneInfo(own[zone_label].strip())
        except (ValueError, ZoneInfoNotFoundError):
            raise LabelError(str(key), zone_label, own[zone_label],
                             "not an IANA time zone (e.g. Europe/Berlin)") from None  # fmt: skip
    windows = []
    for label, value in sorted(own.items()):
        name = label.removeprefix(labels.PREFIX + _SCHEDULE)
        if not label.startswith(labels.PREFIX + _SCHEDULE) or label in (zone_label, lead_label):
            continue
        if not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", name):
            raise LabelError(str(key), label, value, "a window's name is letters, digits, - or _")
        try:
            windows.append(parse_window(name, value))
        except ValueError as exc:
            raise LabelError(str(key), label, value, str(exc)) from None
    return Schedule(tuple(windows), timezone, lead)


def _check_metric(
    key: ServiceKey,
    own: Mapping[str, str],
    source: MetricSource | None,
    options: BaseModel,
    minimum: int,
) -> None:
    """A source needs a policy that turns its value into a count, and a target needs a source;
    only a metric can wake a service at zero."""
    if minimum == 0 and source is None:
        raise LabelError(str(key), labels.MIN, own[labels.MIN],
                         "0 needs a metric source (autoscaler.metric.source) to wake the service: "
                         "CPU is not measured while nothing runs")  # fmt: skip
    target = getattr(options, "metric_target", None)
    if source is not None and target is None:
        label = labels.PREFIX + "metric.source"
        raise LabelError(str(key), label, own[label], "needs metric.target (a replica's share)")
    if source is None and target is not None:
        label = labels.PREFIX + "metric.target"
        raise LabelError(str(key), label, own[label], "needs metric.source to read it from")


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


def _unknown(policy_name: str, metric_keys: frozenset[str]) -> str:
    keys = sorted(
        _COMMON | metric_keys | registry.BEHAVIOR_KEYS | registry.option_keys(policy_name)
    )
    known = ", ".join([*(labels.PREFIX + k for k in keys), labels.PREFIX + _SCHEDULE + "<name>"])
    return f"unknown label (policy {policy_name} knows: {known})"
