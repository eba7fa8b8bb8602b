"""The alert and recording rules of deploy/prometheus/: valid, passing their own `promtool test
rules` cases (each alert fires when it must and not a step before), and naming only series a
running autoscaler serves, so that a renamed metric breaks here and not in an operator's
Prometheus."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import ROOT, Mqtt, events, states_after
from tests.integration.exporter import QUEUE

RULES = ROOT / "deploy" / "prometheus"

SERIES = re.compile(r"(?<![\w:])autoscaler_\w+")
"""An autoscaler's series in PromQL; a recorded one (`level:name:operation`) has colons."""


@pytest.fixture(scope="session")
def promtool() -> str:
    """Debian's promtool, which ships with the prometheus package scripts/prometheus.sh installs
    (installed the same way when missing)."""
    if (found := shutil.which("promtool")) is None:
        install = f". {ROOT / 'scripts' / 'lib.sh'} && need_cmd promtool prometheus"
        subprocess.run(["bash", "-c", install], check=True)
        found = shutil.which("promtool")
    assert found is not None
    return found


def promtool_says(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=RULES, capture_output=True, text=True, timeout=60, check=False
    )


def named_series() -> set[str]:
    """Every autoscaler series an expression of rules.yaml reads (not Prometheus' own `up`)."""
    groups = yaml.safe_load((RULES / "rules.yaml").read_text())["groups"]
    return {name for g in groups for rule in g["rules"] for name in SERIES.findall(rule["expr"])}


async def scrape(port: int) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
    """The autoscaler's /metrics: each sample's value by name and labels."""
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as r:
        text = await r.text()
    found: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return found


def test_the_rules_are_valid_and_each_alert_fires_when_its_cases_say(promtool: str) -> None:
    checked = promtool_says(promtool, "check", "rules", "rules.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool_says(promtool, "test", "rules", "rules.test.yaml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # Every alert has cases of its own.
    cases = (RULES / "rules.test.yaml").read_text()
    alerts = re.findall(r"^\s+- alert: (\w+)$", (RULES / "rules.yaml").read_text(), re.M)
    assert len(alerts) == 6
    assert all(f"alertname: {alert}" in cases for alert in alerts)


async def test_every_series_the_rules_read_is_served_by_a_running_autoscaler(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, project: str, tmp_path: Path
) -> None:
    # A service whose metric never comes: its error is counted, and it is shown missing.
    topic = f"{mqtt.prefix}-queues/{project}/jobs"
    labels = QUEUE | {"autoscaler.metric.topic": topic, "autoscaler.metric.max-age": "1s"}
    await make_container("worker", labels)
    app = await run_autoscaler()
    errors = await mqtt.wait_for(lambda m: events(m, project, "worker", "error"), within=20)
    await states_after(mqtt, project, "worker", errors[0]["timeNano"] / 1e9, 1)

    served = await scrape(app.api.port)

    assert named_series() - served.keys() == set()
    service = frozenset({("project", project), ("service", "worker")})
    assert served["autoscaler_metric_missing"] == {service: 1.0}
    assert served["autoscaler_service_min_replicas"] == {service: 1.0}
    assert served["autoscaler_service_max_replicas"] == {service: 10.0}
    assert served["autoscaler_replicas"] == {service: 1.0}
    assert served["autoscaler_leading"] == {frozenset({("backend", "compose")}): 1.0}
    assert served["autoscaler_errors_total"] == {service | {("kind", "MetricError")}: 1.0}
    # The broker is up: nothing was dropped (what waits changes by the millisecond).
    assert set(served["autoscaler_mqtt_dropped_messages_total"].values()) == {0.0}
