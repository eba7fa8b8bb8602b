"""The series each evaluation sets (ops/metrics.py, Metrics.evaluated): a service's count, the
count decided, its CPU and memory once it has readings, and its evaluations counted; all of
them gone with the service, and back if it comes back."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from autoscaler.control.state import Evaluation
from autoscaler.labels import ServiceKey
from autoscaler.ops.metrics import Metrics
from policies.base import Decision, ReplicaSample

SHOP = ServiceKey("shop", "web")
LABELS = (("project", "shop"), ("service", "web"))
SERIES = ("autoscaler_replicas", "autoscaler_desired_replicas", "autoscaler_cpu_percent",
          "autoscaler_memory_percent", "autoscaler_decisions_total")  # fmt: skip


def evaluation(current: int, desired: int, cpu: float | None, memory: float | None) -> Evaluation:
    sample = ReplicaSample(container_id="a", cpu=cpu, memory=memory, ready=True)
    return Evaluation(1.0, Decision(current, desired, "a reason"), (sample,), {})


def scraped(metrics: Metrics) -> dict[str, float]:
    """The service's value of each of its series that /metrics serves."""
    found = {}
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for sample in family.samples:
            if sample.name in SERIES and tuple(sorted(sample.labels.items())) == LABELS:
                found[sample.name] = sample.value
    return found


def test_each_evaluation_sets_the_services_series_and_counts_itself() -> None:
    metrics = Metrics()
    metrics.evaluated(SHOP, evaluation(2, 3, 70.0, 20.0))
    metrics.evaluated(SHOP, evaluation(3, 3, 40.0, 25.0))
    assert scraped(metrics) == {
        "autoscaler_replicas": 3.0, "autoscaler_desired_replicas": 3.0,
        "autoscaler_cpu_percent": 40.0, "autoscaler_memory_percent": 25.0,
        "autoscaler_decisions_total": 2.0,
    }  # fmt: skip


def test_cpu_and_memory_have_no_series_before_a_reading_and_keep_the_last_one_without() -> None:
    metrics = Metrics()
    metrics.evaluated(SHOP, evaluation(2, 2, None, None))
    assert "autoscaler_cpu_percent" not in scraped(metrics)
    assert "autoscaler_memory_percent" not in scraped(metrics)
    metrics.evaluated(SHOP, evaluation(2, 2, 55.0, None))
    metrics.evaluated(SHOP, evaluation(2, 2, None, None))
    assert scraped(metrics)["autoscaler_cpu_percent"] == 55.0
    assert "autoscaler_memory_percent" not in scraped(metrics)


def test_a_service_forgotten_leaves_metrics_and_comes_back_with_fresh_series() -> None:
    metrics = Metrics()
    metrics.evaluated(SHOP, evaluation(2, 4, 90.0, 30.0))
    metrics.forget(SHOP)
    assert scraped(metrics) == {}
    metrics.evaluated(SHOP, evaluation(1, 1, None, None))
    assert scraped(metrics) == {
        "autoscaler_replicas": 1.0, "autoscaler_desired_replicas": 1.0,
        "autoscaler_decisions_total": 1.0,
    }  # fmt: skip
    metrics.evaluated(SHOP, evaluation(1, 1, 10.0, 5.0))
    assert scraped(metrics)["autoscaler_cpu_percent"] == 10.0
    assert scraped(metrics)["autoscaler_memory_percent"] == 5.0
