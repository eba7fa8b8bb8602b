"""The series of a service's evaluations (control/state.py Tally, read by ops/metrics.py at each
scrape): a service's count, the count decided, its CPU and memory once it has readings, and its
evaluations counted; none of them before its first evaluation, and all of them gone with the
service (its controller), fresh if it comes back."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from autoscaler.control.state import Evaluation, Tally
from autoscaler.labels import ServiceKey
from autoscaler.ops.metrics import Metrics, Observed
from policies.base import Decision, ReplicaSample

SHOP = ServiceKey("shop", "web")
LABELS = (("project", "shop"), ("service", "web"))
SERIES = ("autoscaler_replicas", "autoscaler_desired_replicas", "autoscaler_cpu_percent",
          "autoscaler_memory_percent", "autoscaler_decisions_total")  # fmt: skip


def evaluation(current: int, desired: int, cpu: float | None, memory: float | None) -> Evaluation:
    sample = ReplicaSample(container_id="a", cpu=cpu, memory=memory, ready=True)
    return Evaluation(1.0, Decision(current, desired, "a reason"), (sample,), {})


def scraped(tallies: dict[ServiceKey, Tally]) -> dict[str, float]:
    """The service's value of each of its series that /metrics serves."""
    metrics = Metrics(lambda: Observed(tallies=tallies))
    found = {}
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for sample in family.samples:
            if sample.name in SERIES and tuple(sorted(sample.labels.items())) == LABELS:
                found[sample.name] = sample.value
    return found


def test_each_evaluation_sets_the_services_series_and_counts_itself() -> None:
    tally = Tally()
    tally.evaluated(evaluation(2, 3, 70.0, 20.0))
    tally.evaluated(evaluation(3, 3, 40.0, 25.0))
    assert scraped({SHOP: tally}) == {
        "autoscaler_replicas": 3.0, "autoscaler_desired_replicas": 3.0,
        "autoscaler_cpu_percent": 40.0, "autoscaler_memory_percent": 25.0,
        "autoscaler_decisions_total": 2.0,
    }  # fmt: skip


def test_a_service_not_evaluated_yet_has_no_series() -> None:
    assert scraped({SHOP: Tally()}) == {}


def test_cpu_and_memory_have_no_series_before_a_reading_and_keep_the_last_one_without() -> None:
    tally = Tally()
    tally.evaluated(evaluation(2, 2, None, None))
    assert "autoscaler_cpu_percent" not in scraped({SHOP: tally})
    assert "autoscaler_memory_percent" not in scraped({SHOP: tally})
    tally.evaluated(evaluation(2, 2, 55.0, None))
    tally.evaluated(evaluation(2, 2, None, None))
    assert scraped({SHOP: tally})["autoscaler_cpu_percent"] == 55.0
    assert "autoscaler_memory_percent" not in scraped({SHOP: tally})


def test_a_service_gone_leaves_metrics_and_comes_back_with_fresh_series() -> None:
    tally = Tally()
    tally.evaluated(evaluation(2, 4, 90.0, 30.0))
    assert scraped({}) == {}  # its controller gone: the app observes it no more
    again = Tally()  # a new controller's
    again.evaluated(evaluation(1, 1, None, None))
    assert scraped({SHOP: again}) == {
        "autoscaler_replicas": 1.0, "autoscaler_desired_replicas": 1.0,
        "autoscaler_decisions_total": 1.0,
    }  # fmt: skip
