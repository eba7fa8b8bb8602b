"""Per-service evaluation: replicas and samples in, a policy Decision out, with a bounded history.

Specs are parsed from the template's labels and cached until those labels change, so a policy
that keeps state across intervals keeps it. A service whose labels are wrong gets a LabelError,
reported once per distinct error, and is skipped while the others go on.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any

from autoscaler import labels as L
from autoscaler.actuator import counted, template_of
from autoscaler.collector import Sample
from autoscaler.errors import AutoscalerError
from autoscaler.inventory import Replica
from autoscaler.labels import ServiceKey, ServiceSpec
from policies.base import Decision, PolicyInput, ReplicaSample

logger = logging.getLogger(__name__)

HISTORY = 50


@dataclass(frozen=True, slots=True)
class Evaluation:
    at: float
    decision: Decision
    samples: tuple[ReplicaSample, ...]
    names: Mapping[str, str]
    """container id -> name, to explain decisions in names people know."""

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
                    "counted": s.container_id not in d.ignored,
                    "why_not": d.ignored.get(s.container_id),
                }
                for s in self.samples
            ],
        }

    @property
    def cpu(self) -> float | None:
        return _mean(s.cpu for s in self.samples if s.ready)

    @property
    def memory(self) -> float | None:
        return _mean(s.memory for s in self.samples if s.ready)


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return fmean(present) if present else None


def replica_samples(
    replicas: Sequence[Replica], samples: Mapping[str, Sample]
) -> tuple[ReplicaSample, ...]:
    """What the policy sees of each counted replica; a replica it must not trust says why."""
    out = []
    for replica in counted(replicas):
        sample = samples.get(replica.id)
        # A replica without a reading yet is ready but missing: the policy decides what that means.
        note = ""
        if replica.status != "running":
            note = replica.status
        elif replica.health in ("starting", "unhealthy"):
            note = f"health {replica.health}"
        out.append(
            ReplicaSample(
                container_id=replica.id,
                cpu=sample.cpu if sample else None,
                memory=sample.memory if sample else None,
                ready=not note,
                note=note,
                started_at=replica.started_at,
            )
        )
    return tuple(out)


class Evaluator:
    def __init__(self) -> None:
        self._specs: dict[ServiceKey, ServiceSpec] = {}
        self._errors: dict[ServiceKey, str] = {}
        self.history: dict[ServiceKey, deque[Evaluation]] = {}

    def spec(self, key: ServiceKey, replicas: Sequence[Replica]) -> ServiceSpec:
        """The service's spec from its template's labels; raises LabelError or TemplateError."""
        labels = template_of(key, replicas).labels
        cached = self._specs.get(key)
        own = {k: v for k, v in labels.items() if k.startswith(L.PREFIX)}
        if cached is not None and dict(cached.labels) == own:
            return cached
        spec = L.parse(key, labels)
        self._specs[key] = spec
        return spec

    def report(self, key: ServiceKey, exc: AutoscalerError | None) -> bool:
        """Remember the service's current error; True when it is new (worth publishing)."""
        message = str(exc) if exc else None
        previous = self._errors.get(key)
        if message is None:
            self._errors.pop(key, None)
            return False
        self._errors[key] = message
        if message != previous:
            self._specs.pop(key, None)
            return True
        return False

    def error(self, key: ServiceKey) -> str | None:
        return self._errors.get(key)

    def evaluate(
        self,
        spec: ServiceSpec,
        replicas: Sequence[Replica],
        samples: Mapping[str, Sample],
        now: float,
    ) -> Evaluation:
        observed = replica_samples(replicas, samples)
        inputs = PolicyInput(
            current=len(observed),
            minimum=spec.minimum,
            maximum=spec.maximum,
            samples=observed,
            now=now,
        )
        names = {r.id: r.name for r in replicas}
        evaluation = Evaluation(now, spec.policy.evaluate(inputs), observed, names)
        self.history.setdefault(spec.key, deque(maxlen=HISTORY)).append(evaluation)
        return evaluation

    def forget(self, live: set[ServiceKey]) -> None:
        """Drop what is kept for services that no longer exist."""
        for store in (self._specs, self._errors, self.history):
            for key in set(store) - live:
                del store[key]
