"""Hostile input on the real engine and broker: a name no topic can hold, values no float can
hold, payloads too deep or too large to read, durations no date can hold, an outbox at its
bound, a damaged state file. Each is a clear error of its own service (or a warning); the
service beside it scales on time, and every message reaches the broker."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from autoscaler.control.keep import Keep
from autoscaler.labels import ServiceKey
from tests.integration.conftest import Mqtt, events, mqtt_settings, reaches, states, states_after
from tests.integration.exporter import QUEUE, Queue, publish
from tests.integration.relay import relay

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


async def test_a_duration_no_date_can_hold_is_its_label_error_told_once(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, queue: Queue, project: str
) -> None:
    bad = {"autoscaler.enable": "true", "autoscaler.max": "2", "autoscaler.cpu.target": "50"}
    # A lead of 9999999999h overflowed the date it is added to, every round.
    lead = {
        "autoscaler.schedule.lead": "9999999999h",
        "autoscaler.schedule.day": "00:00-24:00 min=2",
    }
    await make_container("lead", bad | lead)
    await make_container("window", bad | {"autoscaler.scale-down.stabilization": "9" * 400})
    await make_container("worker", QUEUE | {"autoscaler.metric.topic": queue.topic})
    await run_autoscaler()
    await queue.set(0)
    await reaches(mqtt, project, "worker", 1)
    await on_time(mqtt, project, queue)
    await states_after(mqtt, project, "worker", time.time(), 3)  # rounds more: told once
    for service, label in (("lead", "autoscaler.schedule.lead"),
                           ("window", "autoscaler.scale-down.stabilization")):  # fmt: skip
        told = mqtt.on(f"{project}/{service}/events")
        assert [e["Action"] for e in told] == ["error"], told
        assert told[0]["Actor"]["Attributes"]["label"] == label, told[0]
        assert "at most a year" in told[0]["message"], told[0]["message"]
        assert {s["phase"] for s in states(mqtt, project, service)} == {"error"}


async def test_an_outbox_of_one_keeps_the_event_in_flight_and_takes_the_next(
    make_container: Any,
    run_autoscaler: Any,
    mqtt: Mqtt,
    queue: Queue,
    broker: tuple[str, int],
    project: str,
) -> None:
    await make_container("worker", QUEUE | {"autoscaler.metric.topic": queue.topic})
    # The same queue, followed 4 s later (the lowest proposal of a 4 s window): its scale_up
    # comes while the worker's is still on its way to the broker.
    await make_container("helper", QUEUE | {"autoscaler.metric.topic": queue.topic,
                                            "autoscaler.max": "2",
                                            "autoscaler.scale-up.stabilization": "4s"})  # fmt: skip
    async with relay(f"{broker[0]}:{broker[1]}") as path:
        port = int(path.url.rsplit(":", 1)[1])
        outbox = mqtt_settings(host="127.0.0.1", port=port, topic_prefix=mqtt.prefix,
                               outbox_size=1)  # fmt: skip
        await run_autoscaler(mqtt=outbox)
        await queue.set(0)
        await reaches(mqtt, project, "worker", 1)
        await reaches(mqtt, project, "helper", 1)
        path.hold(f"{project}/worker/events", 8.0)  # its PUBLISH waits 8 s, unacknowledged
        asked = time.time()
        await queue.set(50)
        up = (await mqtt.wait_for(lambda m: events(m, project, "worker", "scale_up")))[0]
        arrived = time.time_ns()
        path.release()
        helped = await mqtt.wait_for(lambda m: events(m, project, "helper", "scale_up"))
        assert (up["from"], up["to"], helped[0]["to"]) == (1, 5, 2)
        assert up["timeNano"] / 1e9 - asked <= 2 * INTERVAL + 4, up["timeNano"] / 1e9 - asked
        # The edge was reached: the helper's event was queued while the worker's was in flight.
        assert up["timeNano"] < helped[0]["timeNano"] < arrived, (up, helped[0], arrived)
        await reaches(mqtt, project, "worker", 5)
        await states_after(mqtt, project, "worker", time.time(), 3)  # the process runs on
        await run_autoscaler.stop()  # before the relay goes


async def test_a_damaged_state_file_is_a_warning_and_the_policy_learns_afresh(
    make_container: Any,
    run_autoscaler: Any,
    mqtt: Mqtt,
    queue: Queue,
    project: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="autoscaler.control.keep")
    keep = Keep(tmp_path / "state")
    damaged = keep.path(ServiceKey(project, "worker"))
    damaged.parent.mkdir()
    damaged.write_text(json.dumps({"bucket": 300.0, "sums": {"100": "12"}}))
    predictive = QUEUE | {"autoscaler.policy": "predictive", "autoscaler.metric.topic": queue.topic}
    await make_container("worker", predictive)
    # Two names alike once made safe for a file name (`a_b`): two services, two files.
    alike = predictive | {"autoscaler.max": "2"}
    await make_container("slash", alike | {"autoscaler.service": "a/b"})
    await make_container("underscore", alike | {"autoscaler.service": "a_b"})
    await run_autoscaler(state_dir=tmp_path / "state")
    await queue.set(0)
    await reaches(mqtt, project, "worker", 1)
    await on_time(mqtt, project, queue)
    assert "error" not in {s["phase"] for s in states(mqtt, project, "worker")}
    assert f"{damaged} holds nothing this policy can read" in caplog.text
    await run_autoscaler.stop()  # a stop saves what each policy learned
    saved = json.loads(damaged.read_text())  # learned afresh, and kept
    assert all(isinstance(v, list) for v in saved["sums"].values()), saved
    files = {keep.path(ServiceKey(project, name)) for name in ("a/b", "a_b")}
    assert len(files) == 2, files
    assert all(f.exists() for f in files), sorted(f.name for f in (tmp_path / "state").iterdir())
