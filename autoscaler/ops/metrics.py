"""The Prometheus metrics of one autoscaler process, in a registry of their own; `/metrics`
(api.py) serves them. A controller counts through the `Meter` protocol (control/ports.py), so
the core never imports this module.

    autoscaler_actions_total                                scale actions
    autoscaler_errors_total{kind}                           errors by kind
    autoscaler_faults_total{part}                           a part's faults (errors.Faults)
    autoscaler_sampling_seconds                             one sampling round's wall time
    autoscaler_round_seconds                                one round of the loop's wall time

Read where the values live, at each scrape (`Observed`, which the app gathers):

    autoscaler_replicas, autoscaler_desired_replicas        per service, as last evaluated
    autoscaler_cpu_percent, autoscaler_memory_percent       mean over its ready replicas (the
                                                            last known; none before a reading)
    autoscaler_decisions_total                              per service: policy rounds
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

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from autoscaler.control.state import ServiceState, Tally
from autoscaler.errors import AutoscalerError
from autoscaler.labels import ServiceKey


@dataclass(frozen=True, slots=True)
class Observed:
    """What the process holds elsewhere, as one scrape reads it: values that are already kept
    where they live (a service's state, a lease, the outbox) are read, never copied into
    gauges that could fall behind them."""

    states: Mapping[ServiceKey, ServiceState] = field(default_factory=dict)
    """The state of each service this instance acts on (a standby's are released)."""
    tallies: Mapping[ServiceKey, Tally] = field(default_factory=dict)
    """The evaluations of the same services, counted."""
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
        for counter, extra in self._seen.pop(key, set()):
            with contextlib.suppress(KeyError):
                counter.remove(*labels, extra)

    @staticmethod
    def _labels(key: ServiceKey) -> tuple[str, str]:
        # `swarm/shop` for a Swarm stack: a Compose project of the same name is another series.
        return key.namespace, key.service


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
        replicas = GaugeMetricFamily("autoscaler_replicas", "Replicas running", labels=labels)
        desired = GaugeMetricFamily(
            "autoscaler_desired_replicas", "Replicas decided", labels=labels
        )
        cpu = GaugeMetricFamily(
            "autoscaler_cpu_percent", "Mean CPU, percent of limit", labels=labels
        )
        memory = GaugeMetricFamily(
            "autoscaler_memory_percent", "Mean memory, percent of limit", labels=labels
        )
        decisions = CounterMetricFamily("autoscaler_decisions", "Policy evaluations", labels=labels)
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
            for key, tally in seen.tallies.items():
                if not tally.evaluations:
                    continue
                names = list(Metrics._labels(key))
                replicas.add_metric(names, tally.current)
                desired.add_metric(names, tally.desired)
                # CPU and memory have a series once they have a value: none shows 0 before.
                if tally.cpu is not None:
                    cpu.add_metric(names, tally.cpu)
                if tally.memory is not None:
                    memory.add_metric(names, tally.memory)
                decisions.add_metric(names, tally.evaluations)
            for backend, leads in seen.leading.items():
                leading.add_metric([backend], 1.0 if leads else 0.0)
            outbox.add_metric([], seen.outbox)
            dropped.add_metric(["outbox_full"], seen.dropped)
            dropped.add_metric(["refused"], seen.refused)
        yield from (replicas, desired, cpu, memory, decisions)
        yield from (minimum, maximum, missing, leading, outbox, dropped)
