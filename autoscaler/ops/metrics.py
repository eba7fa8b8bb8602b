"""The Prometheus metrics of one autoscaler process, in a registry of their own; `/metrics`
(api.py) serves them. A controller counts through the `Meter` protocol (control/ports.py), so
the core never imports this module.

    autoscaler_replicas, autoscaler_desired_replicas        per service, as last evaluated
    autoscaler_cpu_percent, autoscaler_memory_percent       mean over its ready replicas
    autoscaler_decisions_total, autoscaler_actions_total    policy rounds; scale actions
    autoscaler_errors_total{kind}                           errors by kind
    autoscaler_faults_total{part}                           a part's faults (errors.Faults)
    autoscaler_sampling_seconds                             one sampling round's wall time
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from autoscaler.control.state import Evaluation
from autoscaler.errors import AutoscalerError
from autoscaler.labels import ServiceKey


class Metrics:
    """Prometheus metrics, in a registry of their own (one per service instance)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["project", "service"]
        self.replicas = Gauge(
            "autoscaler_replicas", "Replicas running", labels, registry=self.registry
        )
        self.desired = Gauge(
            "autoscaler_desired_replicas", "Replicas decided", labels, registry=self.registry
        )
        self.cpu = Gauge(
            "autoscaler_cpu_percent", "Mean CPU, percent of limit", labels, registry=self.registry
        )
        self.memory = Gauge(
            "autoscaler_memory_percent", "Mean memory, percent of limit", labels,
            registry=self.registry,
        )  # fmt: skip
        self.decisions = Counter(
            "autoscaler_decisions", "Policy evaluations", labels, registry=self.registry
        )
        self.actions = Counter(
            "autoscaler_actions", "Scale actions", [*labels, "direction"], registry=self.registry
        )
        self.errors = Counter(
            "autoscaler_errors", "Errors by kind", [*labels, "kind"], registry=self.registry
        )
        self.faults = Counter(
            "autoscaler_faults", "Faults of a part of the process (a bug, or what it could not "
            "read), once each", ["part"], registry=self.registry,
        )  # fmt: skip
        self.sampling = Histogram(
            "autoscaler_sampling_seconds", "Wall time of one sampling round",
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )  # fmt: skip
        self._seen: dict[ServiceKey, set[tuple[Counter, str]]] = {}
        """The (counter, direction or kind) series of each service, to remove when it goes."""

    def evaluated(self, key: ServiceKey, evaluation: Evaluation) -> None:
        labels = self._labels(key)
        self.replicas.labels(*labels).set(evaluation.decision.current)
        self.desired.labels(*labels).set(evaluation.decision.desired)
        if evaluation.cpu is not None:
            self.cpu.labels(*labels).set(evaluation.cpu)
        if evaluation.memory is not None:
            self.memory.labels(*labels).set(evaluation.memory)
        self.decisions.labels(*labels).inc()

    def acted(self, key: ServiceKey, direction: str) -> None:
        self.actions.labels(*self._labels(key), direction).inc()
        self._seen.setdefault(key, set()).add((self.actions, direction))

    def failed(self, key: ServiceKey, exc: AutoscalerError) -> None:
        kind = type(exc).__name__
        self.errors.labels(*self._labels(key), kind).inc()
        self._seen.setdefault(key, set()).add((self.errors, kind))

    def sampled(self, seconds: float) -> None:
        """A sampling round took `seconds`."""
        self.sampling.observe(seconds)

    def faulted(self, part: str) -> None:
        self.faults.labels(part).inc()

    def forget(self, key: ServiceKey) -> None:
        """Every series of a service that is gone: a standalone container's service is one per
        container, and containers come and go."""
        labels = self._labels(key)
        for metric in (self.replicas, self.desired, self.cpu, self.memory, self.decisions):
            with contextlib.suppress(KeyError):
                metric.remove(*labels)
        for counter, extra in self._seen.pop(key, set()):
            with contextlib.suppress(KeyError):
                counter.remove(*labels, extra)

    @staticmethod
    def _labels(key: ServiceKey) -> tuple[str, str]:
        # `swarm/shop` for a Swarm stack: a Compose project of the same name is another series.
        return key.namespace, key.service
