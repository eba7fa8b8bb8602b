"""The Prometheus metrics of one autoscaler process, in a registry of their own; `/metrics`
(api.py) serves them. A controller counts through the `Meter` protocol (context.py), so the core
never imports this module.

    autoscaler_replicas, autoscaler_desired_replicas        per service, as last evaluated
    autoscaler_cpu_percent, autoscaler_memory_percent       mean over its ready replicas
    autoscaler_decisions_total, autoscaler_actions_total    policy rounds; scale actions
    autoscaler_errors_total{kind}                           errors by kind
    autoscaler_sampling_seconds                             one sampling round's wall time
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from autoscaler.errors import AutoscalerError
from autoscaler.labels import ServiceKey
from autoscaler.state import Evaluation


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
        self.sampling = Histogram(
            "autoscaler_sampling_seconds", "Wall time of one sampling round",
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )  # fmt: skip

    def evaluated(self, key: ServiceKey, evaluation: Evaluation) -> None:
        labels = (key.project, key.service)
        self.replicas.labels(*labels).set(evaluation.decision.current)
        self.desired.labels(*labels).set(evaluation.decision.desired)
        if evaluation.cpu is not None:
            self.cpu.labels(*labels).set(evaluation.cpu)
        if evaluation.memory is not None:
            self.memory.labels(*labels).set(evaluation.memory)
        self.decisions.labels(*labels).inc()

    def acted(self, key: ServiceKey, direction: str) -> None:
        self.actions.labels(key.project, key.service, direction).inc()

    def failed(self, key: ServiceKey, exc: AutoscalerError) -> None:
        self.errors.labels(key.project, key.service, type(exc).__name__).inc()

    def forget(self, key: ServiceKey) -> None:
        for gauge in (self.replicas, self.desired, self.cpu, self.memory):
            try:
                gauge.remove(key.project, key.service)
            except KeyError:
                pass
