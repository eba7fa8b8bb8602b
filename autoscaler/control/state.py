"""What a service's controller shows the world: each evaluation with its inputs, and one typed
state object that MQTT, `/status`, `/metrics` and `autoscaler explain` all read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from operator import attrgetter
from statistics import fmean
from typing import Any

from autoscaler.control.replicas import Replica, Sample, counted
from policies.base import Decision, ReplicaSample


class Phase(StrEnum):
    """What a service's controller is doing; see the state machine in controller.py."""

    HOLDING = "holding"
    SCALING = "scaling"
    REPAIRING = "repairing"
    BACKOFF = "backoff"
    PAUSED = "paused"
    IDLE = "idle"
    """At zero, put there by the autoscaler (`min: "0"`): woken when its metric is wanted."""
    STOPPED = "stopped"
    """None of the service's own containers runs: its owner stopped it; not scaled."""
    ERROR = "error"
    """Its labels or template are wrong: skipped until they are fixed."""


@dataclass(frozen=True, slots=True)
class Evaluation:
    at: float
    decision: Decision
    samples: tuple[ReplicaSample, ...]
    names: Mapping[str, str]
    """container id -> name, to explain decisions in names people know."""
    cpu: float | None = field(init=False)
    """The mean CPU of the ready replicas that have a reading (percent of their limit)."""
    memory: float | None = field(init=False)
    """The same of memory."""

    def __post_init__(self) -> None:
        # Read several times a round (the state, /metrics): averaged once.
        ready = [s for s in self.samples if s.ready]
        object.__setattr__(self, "cpu", _mean(s.cpu for s in ready))
        object.__setattr__(self, "memory", _mean(s.memory for s in ready))

    def to_dict(self) -> dict[str, Any]:
        """The decision with its inputs, as `/status` and `autoscaler explain` show it."""
        d = self.decision
        return {
            "time": self.at,
            "from": d.current,
            "to": d.desired,
            "proposal": d.proposal,
            "stabilized": d.stabilized,
            "bound": d.bound,
            "reason": d.reason,
            "steps": list(d.steps),
            "metrics": dict(d.metrics),
            "samples": [
                {
                    "container": self.names.get(s.container_id, s.container_id[:12]),
                    "cpu": s.cpu,
                    "memory": s.memory,
                    "throttled": s.throttled,
                    "counted": s.container_id not in d.ignored,
                    "why_not": d.ignored.get(s.container_id),
                }
                for s in self.samples
            ],
        }


@dataclass(slots=True)
class Tally:
    """What /metrics serves of a service's evaluations, kept as they happen and read at each
    scrape (ops/metrics.py): plain numbers set a round, where gauges and a counter of
    prometheus_client, set each round under their locks, cost more than the rest of a quiet
    service's bookkeeping."""

    evaluations: int = 0
    current: int = 0
    desired: int = 0
    cpu: float | None = None
    """The last known mean CPU and memory (a round without a reading keeps them)."""
    memory: float | None = None

    def evaluated(self, evaluation: Evaluation) -> None:
        self.evaluations += 1
        self.current, self.desired = evaluation.decision.current, evaluation.decision.desired
        if evaluation.cpu is not None:
            self.cpu = evaluation.cpu
        if evaluation.memory is not None:
            self.memory = evaluation.memory

    def again(self, cpu: float, memory: float | None) -> None:
        """A quiet round (quiet.py): the last decision stands, with these readings."""
        self.evaluations += 1
        self.cpu = cpu
        if memory is not None:
            self.memory = memory


@dataclass(frozen=True, slots=True)
class ServiceState:
    """One service as it stands after its controller's latest step."""

    project: str
    service: str
    phase: Phase
    replicas: int
    containers: tuple[str, ...]
    reason: str
    time: float
    instance: str | None
    dry_run: bool
    scope: str = "local"
    """`local` (a Compose service) or `swarm` (a Swarm service), as ServiceKey says."""
    desired: int | None = None
    own: int | None = None
    """The user's own containers of the service (not clones), running or not: what Compose
    must be told to keep (`autoscaler replicas --compose-args`). None for a Swarm service."""
    decided: int | None = None
    """The count the service is kept at: what the last action settled on."""
    minimum: int | None = None
    maximum: int | None = None
    policy: str | None = None
    paused: bool | None = None
    cpu: float | None = None
    memory: float | None = None
    saturated: bool | None = None
    """Every counted replica is held back at its CPU limit (throttled in at least half of its
    window's periods: policies/saturation.py): its `cpu` says little more than that, within the
    jitter of a window cut across the CFS periods. A reading: told with the others, never a
    change by itself (`differs`)."""
    targets: Mapping[str, float] | None = None
    """What each measure should average (the policy's targets), for charts: `cpu` and `memory`
    in percent, `metric` in the metric's own unit a replica."""
    metric: str | None = None
    """The service's metric source, when its labels name one (`mqtt queue/jobs`, ...)."""
    metric_value: float | None = None
    """Its value this round; None when there is none to trust."""
    received: float | None = None
    """Bytes a second the service's counted replicas received and sent, summed (their network
    namespaces, loopback aside); None where no replica's traffic is known."""
    sent: float | None = None
    bound: str | None = None
    """What held the last decision back (policies/base.py Decision.bound): `max` is a service
    saturated at its maximum."""
    last_action: str | None = None
    """The service's latest action (scale_up, scale_down, repair, restore, roll, sleep, wake), in
    words with its counts, and when it happened (wall time)."""
    last_action_at: float | None = None
    startup: float | None = None
    """Seconds a new replica took from the action that created it to its first counted sample
    (the median of the latest five); None before one was measured."""
    sampler: str | None = None
    """Which sampler served the replicas: cgroup (the fast path), api, or both."""
    error: str | None = None
    finding: str | None = None
    """Something wrong that is not an error: replicas that take no load while others are held
    at their limit (policies/idle.py)."""
    schedule: str | None = None
    """The schedule's windows in force and the min and max they set (policies/schedule.py)."""
    control: Mapping[str, Any] | None = None
    """An operator's pause or hold in force (controls.py: action, replicas, since, until, who,
    why); None without one."""

    def differs(self, other: ServiceState, band: float) -> bool:
        """Whether this state says something `other` did not: a count, a decision, a phase, an
        error, an action or a setting changed, utilisation moved by more than `band` points, or
        the metric by more than `band` percent. The network's rates are shown, never told."""
        if _meaningful(self) != _meaningful(other):
            return True
        # Replicas held at their CPU limit read about 100 % with a jitter of their windows that
        # says nothing new (ten points and more for a small limit on a loaded host): their CPU
        # moves count once they are no longer held, or were not. Whether they are rides along
        # with the readings: on a contended core a replica's share of throttled periods crosses
        # the half now and then, and each crossing told would be as much noise.
        at_limit = self.saturated and other.saturated
        if (not at_limit and moved(self.cpu, other.cpu, band)) or moved(
            self.memory, other.memory, band
        ):
            return True
        # A metric has its own unit: it moves by `band` percent of itself.
        now, before = self.metric_value, other.metric_value
        scale = max(abs(now), abs(before)) if now is not None and before is not None else 0.0
        return moved(now, before, band / 100 * scale)

    def again(
        self,
        time: float,
        cpu: float | None,
        memory: float | None,
        received: float | None,
        sent: float | None,
        sampler: str | None,
    ) -> ServiceState:
        """The same state a round on, with that round's readings (a quiet round, quiet.py).
        Built from its fields in order: dataclasses.replace looks each up by name, and costs
        more than the rest of a quiet round."""
        values = list(_every(self))
        for i, value in zip(_READINGS, (time, cpu, memory, received, sent, sampler), strict=True):
            values[i] = value
        return ServiceState(*values)

    def to_dict(self) -> dict[str, Any]:
        """The wire form: MQTT's retained state and `/status`."""
        # Field by field, not dataclasses.asdict: that deep-copies every value, and a state goes
        # out several times a round (MQTT, each page's stream). Only the mappings are copied.
        out = dict(zip(_FIELDS, _every(self), strict=True))
        out["containers"] = list(self.containers)
        out["targets"] = None if self.targets is None else dict(self.targets)
        out["control"] = None if self.control is None else dict(self.control)
        out["min"], out["max"] = out.pop("minimum"), out.pop("maximum")
        return out


_MEANINGFUL = (
    "phase", "replicas", "containers", "desired", "minimum", "maximum", "policy", "paused",
    "dry_run", "sampler", "error", "finding", "schedule", "instance", "metric", "bound",
    "last_action", "last_action_at", "control",
)  # fmt: skip


_meaningful = attrgetter(*_MEANINGFUL)
"""A state's meaningful fields, as one tuple: two states are compared in one step."""
_FIELDS = tuple(f.name for f in fields(ServiceState))
_every = attrgetter(*_FIELDS)
_READINGS = tuple(
    _FIELDS.index(f) for f in ("time", "cpu", "memory", "received", "sent", "sampler")
)


def moved(now: float | None, before: float | None, band: float) -> bool:
    """Whether a reading moved by more than `band` from `before` (or appeared, or went)."""
    if now is None or before is None:
        return now is not before
    return abs(now - before) > band


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return fmean(present) if present else None


def replica_samples(
    replicas: Sequence[Replica],
    samples: Mapping[str, Sample],
    started: Mapping[str, float] | None = None,
) -> tuple[ReplicaSample, ...]:
    """What the policy sees of each counted replica; a replica it must not trust says why.
    `started`: when each started, on the clock of `PolicyInput.now` (the engine's wall time
    without it)."""
    out = []
    for replica in counted(replicas):
        sample = samples.get(replica.id)
        # A replica without a reading yet is ready but missing: the policy decides what that means.
        note = ""
        if replica.status != "running":
            note = replica.status
        elif replica.health in ("starting", "unhealthy"):
            note = f"health {replica.health}"
        elif replica.unseen:
            note = replica.unseen
        out.append(
            ReplicaSample(
                container_id=replica.id,
                cpu=sample.cpu if sample else None,
                memory=sample.memory if sample else None,
                ready=not note,
                note=note,
                started_at=(started or {}).get(replica.id, replica.started_at),
                throttled=sample.throttled if sample else None,
            )
        )
    return tuple(out)
