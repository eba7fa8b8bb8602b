"""Hostile input on the real engine and broker: a name no topic can hold, values no float can
hold, payloads too deep or too large to read. Each is a clear error of its own service; the
service beside it scales on time, and every message reaches the broker."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.integration.conftest import Mqtt, events, reaches, states
from tests.integration.test_metrics import QUEUE, Queue, publish
from tests.integration.test_metrics import queue as queue  # the fixture: a queue's exporter

INTERVAL = 1.0  # the tests' interval (conftest.settings_for)


async def on_time(mqtt: Mqtt, project: str, queue: Queue) -> None:
    """The good service, asked for 5 replicas, runs 5 within two intervals and 4 s."""
    asked = time.time()
    await queue.set(50)

    def five(m: Mqtt) -> list[dict[str, Any]]:
        return [s for s in states(m, project, "worker") if s["replicas"] == 5]

    reached = await mqtt.wait_for(five, within=30)
    assert reached[0]["time"] - asked <= 2 * INTERVAL + 4, reached[0]["time"] - asked


async def test_a_name_no_topic_can_hold_is_told_escaped_and_stalls_no_other_service(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, queue: Queue, project: str
) -> None:
    # `+` and `#` are MQTT's wildcards, `/` its separator: published as they are, the broker
    # (and paho before it) refuses them, and the message stood before every later one.
    odd = {"autoscaler.enable": "true", "autoscaler.max": "2", "autoscaler.service": "a+b#c/d"}
    await make_container("odd", odd)
    # A name longer than any topic may be (65,535 bytes): its messages are dropped, and said so.
    await make_container("long", odd | {"autoscaler.service": "x" * 70_000})
    await make_container("worker", QUEUE | {"autoscaler.metric.topic": queue.topic})
    app = await run_autoscaler()
    await queue.set(0)
    await reaches(mqtt, project, "worker", 1)
    await mqtt.wait_for(lambda m: states(m, project, "a%2Bb%23c%2Fd"))
    await on_time(mqtt, project, queue)
    assert app.notifier.refused > 0
    assert not [t for t, _, _ in mqtt.messages if "a+b" in t or "a%2Bb%23c/d" in t]


async def test_values_no_float_holds_and_payloads_too_deep_or_large_are_errors_of_their_service(
    make_container: Any,
    run_autoscaler: Any,
    mqtt: Mqtt,
    queue: Queue,
    broker: tuple[str, int],
    project: str,
) -> None:
    topic = f"{mqtt.prefix}-queues/{project}/hostile"
    await make_container("hostile", QUEUE | {"autoscaler.metric.topic": topic,
                                             "autoscaler.metric.field": "depth"})  # fmt: skip
    await make_container("worker", QUEUE | {"autoscaler.metric.topic": queue.topic})
    await run_autoscaler()
    await queue.set(0)
    await reaches(mqtt, project, "worker", 1)
    hostile = [
        (b'{"depth": 1' + b"0" * 400 + b"}", "is not a finite number"),
        (b'{"depth": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", "nested too deeply to read"),
        (json.dumps({"depth": 1, "pad": "x" * 70_000}).encode(), "over the limit of 65536"),
        (b'{"depth": 1, "time": 1' + b"0" * 400 + b"}", "time in payload"),
    ]
    for payload, words in hostile:
        await publish(broker, topic, payload)
        told = await mqtt.wait_for(lambda m, words=words: [
            e for e in events(m, project, "hostile", "error") if words in e["message"]
        ])  # fmt: skip
        assert told[0]["Actor"]["Attributes"]["error"] == "MetricError", told[0]
    assert {s["phase"] for s in states(mqtt, project, "hostile")} == {"holding"}
    await on_time(mqtt, project, queue)
    assert not events(mqtt, project, "hostile", "scale_up")
