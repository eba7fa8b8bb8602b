"""What /metrics reads where it lives at each scrape (ops/metrics.py, Observed): the services'
bounds and missing metrics, the leases, the MQTT outbox. The alert rules of deploy/prometheus/
read these series."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from autoscaler.control.state import Phase, ServiceState
from autoscaler.labels import ServiceKey
from autoscaler.ops.metrics import Metrics, Observed

SHOP = ServiceKey("shop", "web")
STACK = ServiceKey("shop", "api", scope="swarm")


def state(key: ServiceKey, **values: Any) -> ServiceState:
    shown: dict[str, Any] = {"phase": Phase.HOLDING, "replicas": 2, "containers": (),
                             "reason": "holding", "time": 1000.0, "instance": None,
                             "dry_run": False}  # fmt: skip
    return ServiceState(project=key.project, service=key.service, scope=key.scope,
                        **(shown | values))  # fmt: skip


def scraped(observed: Observed) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    text = generate_latest(Metrics(lambda: observed).registry).decode()
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            found.setdefault(sample.name, {})[labels] = sample.value
    return found


@pytest.mark.parametrize(
    ("metric", "value", "missing"),
    [
        (None, None, 0.0),
        ("mqtt queue/jobs", 12.0, 0.0),
        ("mqtt queue/jobs", 0.0, 0.0),
        ("mqtt queue/jobs", None, 1.0),
    ],
    ids=["no metric", "a value", "a value of zero", "no value to trust"],
)
def test_a_metric_is_missing_only_where_the_service_reads_one_and_has_no_value(
    metric: str | None, value: float | None, missing: float
) -> None:
    seen = scraped(Observed(states={SHOP: state(SHOP, metric=metric, metric_value=value)}))
    assert seen["autoscaler_metric_missing"] == {(("project", "shop"), ("service", "web")): missing}


def test_each_service_has_its_bounds_under_the_labels_of_its_other_series() -> None:
    states = {SHOP: state(SHOP, minimum=1, maximum=4), STACK: state(STACK, minimum=0, maximum=9)}
    seen = scraped(Observed(states=states))
    web, api = (("project", "shop"), ("service", "web")), (("project", "swarm/shop"),
                                                           ("service", "api"))  # fmt: skip
    assert seen["autoscaler_service_min_replicas"] == {web: 1.0, api: 0.0}
    assert seen["autoscaler_service_max_replicas"] == {web: 4.0, api: 9.0}


def test_a_service_without_its_labels_parsed_has_no_bounds() -> None:
    seen = scraped(Observed(states={SHOP: state(SHOP, phase=Phase.ERROR)}))
    assert "autoscaler_service_max_replicas" not in seen
    assert seen["autoscaler_metric_missing"] == {(("project", "shop"), ("service", "web")): 0.0}


def test_the_leases_held_and_the_outbox_are_read_at_each_scrape() -> None:
    observed = Observed(leading={"compose": True, "swarm": False}, outbox=3, dropped=7, refused=1)
    seen = scraped(observed)
    assert seen["autoscaler_leading"] == {(("backend", "compose"),): 1.0,
                                          (("backend", "swarm"),): 0.0}  # fmt: skip
    assert seen["autoscaler_mqtt_outbox_messages"] == {(): 3.0}
    assert seen["autoscaler_mqtt_dropped_messages_total"] == {
        (("reason", "outbox_full"),): 7.0,
        (("reason", "refused"),): 1.0,
    }


def test_a_service_gone_from_the_states_is_gone_from_the_next_scrape() -> None:
    observed = [Observed(states={SHOP: state(SHOP, minimum=1, maximum=4)}), Observed()]
    metrics = Metrics(lambda: observed[0])
    assert b'autoscaler_service_max_replicas{project="shop"' in generate_latest(metrics.registry)
    observed.pop(0)
    assert b"autoscaler_service_max_replicas{" not in generate_latest(metrics.registry)
