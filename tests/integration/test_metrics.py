"""Scaling on demand itself, against the real broker and a real Prometheus: a queue's depth
published on MQTT, or the value of a PromQL query, with the same rules as CPU."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import pytest

from tests.integration.conftest import Exporter, Mqtt, events, reaches, states, states_after

# One replica carries 10 jobs of the queue; a decision may add up to 10 replicas at once.
QUEUE = {
    "autoscaler.enable": "true",
    "autoscaler.min": "1",
    "autoscaler.max": "10",
    "autoscaler.metric.source": "mqtt",
    "autoscaler.metric.target": "10",
    "autoscaler.scale-up.max-replicas": "10",
    "autoscaler.scale-down.stabilization": "3s",
}


async def publish(broker: tuple[str, int], topic: str, payload: str | bytes) -> None:
    async with aiomqtt.Client(*broker) as client:
        await client.publish(topic, payload, qos=1, retain=True)


class Queue:
    """A queue's exporter, as docs/labels.md asks of a source: its depth published at once when it
    changes and again every half second, so a value is never older than its max age."""

    def __init__(self, broker: tuple[str, int], topic: str) -> None:
        self.broker, self.topic = broker, topic
        self.depth: str | None = None

    async def set(self, depth: int) -> None:
        self.depth = str(depth)
        await publish(self.broker, self.topic, self.depth)

    async def run(self) -> None:
        async with aiomqtt.Client(*self.broker) as client:
            while True:
                await asyncio.sleep(0.5)  # the exporter's own period
                if self.depth is not None:
                    await client.publish(self.topic, self.depth, qos=1, retain=True)


@pytest.fixture
async def queue(broker: tuple[str, int], mqtt: Mqtt, project: str) -> AsyncIterator[Queue]:
    exporter = Queue(broker, f"{mqtt.prefix}-queues/{project}/jobs")
    task = asyncio.create_task(exporter.run())
    try:
        yield exporter
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_queue_step_is_one_action_and_a_drop_waits_for_the_window(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, queue: Queue, project: str
) -> None:
    topic = queue.topic
    await make_container("worker", QUEUE | {"autoscaler.metric.topic": topic})
    await run_autoscaler()
    await queue.set(0)
    await reaches(mqtt, project, "worker", 1)

    await queue.set(90)  # 9 replicas' worth: one action, 1 -> 9
    ups = await mqtt.wait_for(lambda m: events(m, project, "worker", "scale_up"))
    assert (ups[0]["from"], ups[0]["to"]) == (1, 9)
    assert ups[0]["reason"] == f"mqtt {topic} 90 vs 10 a replica: propose 9"
    await reaches(mqtt, project, "worker", 9)

    dropped = time.time()
    await queue.set(20)
    downs = await mqtt.wait_for(lambda m: events(m, project, "worker", "scale_down"))
    assert (downs[0]["from"], downs[0]["to"]) == (9, 2)
    assert downs[0]["timeNano"] / 1e9 - dropped >= 3  # the scale-down window held it
    assert len(events(mqtt, project, "worker", "scale_up")) == 1


async def test_a_stale_value_holds_and_is_reported_once_until_it_is_fresh_again(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, broker: tuple[str, int], project: str
) -> None:
    topic = f"{mqtt.prefix}-queues/{project}/jobs"
    labels = QUEUE | {"autoscaler.metric.topic": topic, "autoscaler.metric.max-age": "2s"}
    await make_container("worker", labels)
    await run_autoscaler()
    await publish(broker, topic, "30")
    await reaches(mqtt, project, "worker", 3)

    # Nothing more is published: after 2 s the value is missing; the count holds at 3.
    errors = await mqtt.wait_for(lambda m: events(m, project, "worker", "error"), within=20)
    assert errors[0]["Actor"]["Attributes"]["source"] == f"mqtt {topic}"
    assert "no value for longer than its max age of 2s" in errors[0]["message"]
    later = await states_after(mqtt, project, "worker", errors[0]["timeNano"] / 1e9, 4)
    assert {s["replicas"] for s in later} == {3}
    assert all("no value for longer than its max age of 2s" in (s["error"] or "") for s in later)
    assert len(events(mqtt, project, "worker", "error")) == 1

    await publish(broker, topic, "30")
    back = await mqtt.wait_for(
        lambda m: [
            s
            for s in states(m, project, "worker")
            if s["time"] > errors[0]["time"] and s["error"] is None
        ]
    )
    assert back[0]["replicas"] == 3


async def test_a_malformed_payload_is_an_error_never_a_crash_and_a_json_field_is_read(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, broker: tuple[str, int], project: str
) -> None:
    topic = f"{mqtt.prefix}-queues/{project}/stats"
    labels = QUEUE | {"autoscaler.metric.topic": topic, "autoscaler.metric.field": "queue.depth"}
    await make_container("worker", labels)
    app = await run_autoscaler()
    await publish(broker, topic, "lots")
    errors = await mqtt.wait_for(lambda m: events(m, project, "worker", "error"))
    assert "payload 'lots' is not JSON" in errors[0]["message"]
    await publish(broker, topic, json.dumps({"queue": {"size": 40}}))
    missing = await mqtt.wait_for(lambda m: events(m, project, "worker", "error")[1:])
    assert "has no queue.depth" in missing[0]["message"]
    assert not events(mqtt, project, "worker", "scale_up")

    await publish(broker, topic, json.dumps({"queue": {"depth": 40}}))
    ups = await mqtt.wait_for(lambda m: events(m, project, "worker", "scale_up"))
    assert (ups[0]["from"], ups[0]["to"]) == (1, 4)
    assert app.inventory.ready.is_set()


async def test_a_wildcard_sums_the_latest_value_of_every_matching_topic(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, broker: tuple[str, int], project: str
) -> None:
    base = f"{mqtt.prefix}-queues/{project}"
    await make_container("worker", QUEUE | {"autoscaler.metric.topic": f"{base}/+/depth"})
    await run_autoscaler()
    await publish(broker, f"{base}/eu/depth", "20")
    await publish(broker, f"{base}/us/depth", "30")
    await publish(broker, f"{base}/us/depth", "31")  # the latest counts, not the sum of all
    await reaches(mqtt, project, "worker", 6)  # 20 + 31 = 51: ceil(51 / 10)
    ups = events(mqtt, project, "worker", "scale_up")
    assert ups[-1]["reason"].startswith(f"mqtt {base}/+/depth 51 vs 10")


async def test_with_cpu_too_the_larger_proposal_wins(
    make_container: Any, make_load: Any, run_autoscaler: Any, mqtt: Mqtt, queue: Queue,
    project: str,
) -> None:  # fmt: skip
    topic = queue.topic
    load = make_load("worker")
    labels = QUEUE | {"autoscaler.metric.topic": topic, "autoscaler.cpu.target": "50"}
    await make_container("worker", labels, load=load)
    await run_autoscaler()
    await queue.set(50)  # the queue asks for 5
    load.set(300)  # CPU asks for ceil(300 / 125) = 3
    await reaches(mqtt, project, "worker", 5)
    assert events(mqtt, project, "worker", "scale_up")[-1]["reason"].startswith(f"mqtt {topic} 50")
    load.set(1000)  # CPU asks for ceil(1000 / 125) = 8 now, the queue still 5
    await reaches(mqtt, project, "worker", 8, within=60)
    assert events(mqtt, project, "worker", "scale_up")[-1]["reason"].startswith("cpu ")


async def test_a_prometheus_query_scales_and_an_unreachable_server_holds_and_says_so(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, exporter: Exporter, project: str
) -> None:
    query = f'sum(queue_depth{{project="{project}"}})'
    base = QUEUE | {"autoscaler.metric.source": "prometheus", "autoscaler.metric.query": query}
    await make_container("worker", base | {"autoscaler.metric.url": exporter.url})
    await make_container("lost", base | {"autoscaler.metric.url": "http://127.0.0.1:9"})
    await run_autoscaler()
    exporter.set("queue_depth", project, 60)
    ups = await mqtt.wait_for(lambda m: events(m, project, "worker", "scale_up"), within=30)
    assert (ups[0]["from"], ups[0]["to"]) == (1, 6)
    assert ups[0]["reason"] == f"prometheus {query} 60 vs 10 a replica: propose 6"

    errors = await mqtt.wait_for(lambda m: events(m, project, "lost", "error"))
    assert "http://127.0.0.1:9 did not answer" in errors[0]["message"]
    assert {s["replicas"] for s in states(mqtt, project, "lost")} == {1}
