"""The Prometheus metrics of one autoscaler process, in a registry of their own; `/metrics`
(api.py) serves them. A controller counts through the `Meter` protocol (control/ports.py), so
the core never imports this module.

    autoscaler_replicas, autoscaler_desired_replicas        per service, as last evaluated
    autoscaler_cpu_percent, autoscaler_memory_percent       mean over its ready replicas
    autoscaler_decisions_total, autoscaler_actions_total    policy rounds; scale actions
    autoscaler_errors_total{kind}                           errors by kind
    autoscaler_faults_total{part}                           a part's faults (errors.Faults)
    autoscaler_sampling_seconds                             one sampling round's wall time
    autoscaler_round_seconds                                one round of the loop's wall time

Read where the values live, at each scrape (`Observed`, which the app gathers):

    autoscaler_service_min_replicas, ..._max_replicas       per service, its labels' bounds
    autoscaler_metric_missing                               per service: 1 while its metric
                                                            source gives no value to trust
    autoscaler_leading{backend}                             1 where this instance holds the
                                                            backend's lease (compose, swarm)
    autoscaler_mqtt_outbox_messages                         messages waiting for the broker
    autoscaler_mqtt_dropped_messages_total{reason}          events never sent: outbox_full,
                                                            refused (by the MQTT client)

deploy/prometheus/rules.yaml alerts on these; its test checks every series it names is here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from autoscaler.control.state import Evaluation, ServiceState
from autoscaler.errors import AutoscalerError
from autoscaler.labels import ServiceKey


@dataclass(frozen=True, slots=True)
class Observed:
    """What the process holds elsewhere, as one scrape reads it: values that are already kept
    where they live (a service's state, a lease, the outbox) are read, never copied into
    gauges that could fall behind them."""

    states: Mapping[ServiceKey, ServiceState] = field(default_factory=dict)
    """The state of each service this instance acts on (a standby's are released)."""
    leading: Mapping[str, bool] = field(default_factory=dict)
    """Whether this instance holds each backend's lease, by backend (`compose`, `swarm`)."""
    outbox: int = 0
    """MQTT messages waiting for the broker (events, and retained states not yet sent)."""
    dropped: int = 0
    """MQTT events dropped since start from a full outbox (the oldest go first)."""
    refused: int = 0
    """MQTT messages the client refused to send since start."""


class Metrics:
    """Prometheus metrics, in a registry of their own (one per service instance)."""

    def __init__(self, observe: Callable[[], Observed] | None = None) -> None:
        """`observe`: what the process holds elsewhere, read at each scrape (nothing without
        it)."""
        self.registry = CollectorRegistry()
        self.registry.register(_Observer(observe or Observed))
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
        # Fine around 0.25 s, the goal of a round's p99 with 500 services (bench/scale.py).
        self.rounds = Histogram(
            "autoscaler_round_seconds", "Wall time of one round of the loop: the metric "
            "sources, each backend's listing and sampling, every service stepped",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5,
                     0.75, 1, 2.5, 5),
        )  # fmt: skip
        self._seen: dict[ServiceKey, set[tuple[Counter, str]]] = {}
        """The (counter, direction or kind) series of each service, to remove when it goes."""
        self._series: dict[ServiceKey, _Series] = {}
        """Each service's own series, found once: every service is evaluated every round, and
        finding a series by its labels (prometheus_client's `labels`) costs more than setting
        it."""

    def evaluated(self, key: ServiceKey, evaluation: Evaluation) -> None:
        series = self._series.get(key)
        if series is None:
            labels = self._labels(key)
            series = self._series[key] = _Series(
                self.replicas.labels(*labels), self.desired.labels(*labels),
                self.decisions.labels(*labels),
            )  # fmt: skip
        decision = evaluation.decision
        if (decision.current, decision.desired) != series.counts:
            # Counts change with an action, not every round: set (under the gauge's lock) then.
            series.counts = (decision.current, decision.desired)
            series.replicas.set(decision.current)
            series.desired.set(decision.desired)
        # CPU and memory have a series once they have a value: none shows 0 before.
        if (cpu := evaluation.cpu) is not None:
            if series.cpu is None:
                series.cpu = self.cpu.labels(*self._labels(key))
            series.cpu.set(cpu)
        if (memory := evaluation.memory) is not None:
            if series.memory is None:
                series.memory = self.memory.labels(*self._labels(key))
            series.memory.set(memory)
        series.decisions.inc()

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

    def rounded(self, seconds: float) -> None:
        """A round of the loop took `seconds`."""
        self.rounds.observe(seconds)

    def faulted(self, part: str) -> None:
        self.faults.labels(part).inc()

    def forget(self, key: ServiceKey) -> None:
        """Every series of a service that is gone: a standalone container's service is one per
        container, and containers come and go."""
        labels = self._labels(key)
        self._series.pop(key, None)
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


@dataclass(slots=True)
class _Series:
    """One service's series of the gauges and counter set at each evaluation."""

    replicas: Gauge
    desired: Gauge
    decisions: Counter
    cpu: Gauge | None = None
    memory: Gauge | None = None
    counts: tuple[int, int] | None = None
    """The replicas and desired counts the gauges hold."""


class _Observer:
    """A collector of what `observe` reads at each scrape. /metrics is served on the event loop
    that changes these values, so a scrape reads them between two steps, never during one."""

    def __init__(self, observe: Callable[[], Observed]) -> None:
        self._observe = observe

    def describe(self) -> Iterator[Metric]:
        """The names it serves, without reading anything (the registry checks them once)."""
        return self._families()

    def collect(self) -> Iterator[Metric]:
        return self._families(self._observe())

    @staticmethod
    def _families(seen: Observed | None = None) -> Iterator[Metric]:
        labels = ["project", "service"]
        minimum = GaugeMetricFamily(
            "autoscaler_service_min_replicas", "The service's minimum, as its labels set it",
            labels=labels,
        )  # fmt: skip
        maximum = GaugeMetricFamily(
            "autoscaler_service_max_replicas", "The service's maximum, as its labels set it",
            labels=labels,
        )  # fmt: skip
        missing = GaugeMetricFamily(
            "autoscaler_metric_missing", "1 while the service's metric source gives no value to "
            "trust (never read, too old, or failing); 0 otherwise", labels=labels,
        )  # fmt: skip
        leading = GaugeMetricFamily(
            "autoscaler_leading", "1 where this instance holds the backend's lease and acts on "
            "its services; 0 where it stands by", labels=["backend"],
        )  # fmt: skip
        outbox = GaugeMetricFamily(
            "autoscaler_mqtt_outbox_messages", "MQTT messages waiting for the broker"
        )
        dropped = CounterMetricFamily(
            "autoscaler_mqtt_dropped_messages", "MQTT messages never sent: the oldest events of "
            "a full outbox, or what the client refused", labels=["reason"],
        )  # fmt: skip
        if seen is not None:
            for key, state in seen.states.items():
                names = list(Metrics._labels(key))
                if state.minimum is not None and state.maximum is not None:
                    minimum.add_metric(names, state.minimum)
                    maximum.add_metric(names, state.maximum)
                lacking = state.metric is not None and state.metric_value is None
                missing.add_metric(names, 1.0 if lacking else 0.0)
            for backend, leads in seen.leading.items():
                leading.add_metric([backend], 1.0 if leads else 0.0)
            outbox.add_metric([], seen.outbox)
            dropped.add_metric(["outbox_full"], seen.dropped)
            dropped.add_metric(["refused"], seen.refused)
        yield from (minimum, maximum, missing, leading, outbox, dropped)
