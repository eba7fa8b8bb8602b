"""MQTT beyond the happy path: credentials, a restart with undelivered events, secrets unlogged."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from pydantic import SecretStr

from autoscaler.app import App
from autoscaler.labels import ServiceKey
from tests.integration.conftest import Mqtt, mqtt_settings, settings_for, states, states_after
from tests.integration.test_scaling import WEB


async def test_credentials_from_settings_reach_a_protected_broker_and_are_never_logged(
    make_container: Any,
    run_autoscaler: Any,
    broker: tuple[str, int],
    broker_auth: tuple[int, str],
    project: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port, password = broker_auth
    prefix = f"auth-{project}"
    await make_container("web", WEB)
    caplog.set_level(logging.DEBUG)
    app = await run_autoscaler(
        mqtt=mqtt_settings(
            host=broker[0],
            port=port,
            topic_prefix=prefix,
            username="autoscaler",
            password=SecretStr(password),
        )
    )
    async with aiomqtt.Client(broker[0], port, username="autoscaler", password=password) as c:
        await c.subscribe(f"{prefix}/{project}/web/state", qos=1)
        async with asyncio.timeout(20):
            async for message in c.messages:
                assert json.loads(bytes(message.payload))["service"] == "web"  # type: ignore[arg-type]
                break
    assert app.notifier.connected
    assert password not in caplog.text
    assert password not in repr(app.settings)
    assert password not in json.dumps(app.status())


async def test_a_wrong_password_is_a_clear_error_and_scaling_goes_on(
    make_container: Any,
    make_load: Any,
    run_autoscaler: Any,
    mqtt: Mqtt,
    broker: tuple[str, int],
    broker_auth: tuple[int, str],
    project: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port, _ = broker_auth
    load = make_load("web")
    await make_container("web", WEB, load=load)
    app = await run_autoscaler(
        mqtt=mqtt_settings(host=broker[0], port=port, username="autoscaler",
                          password=SecretStr("wrong"), topic_prefix=mqtt.prefix)
    )  # fmt: skip
    load.set(200)
    async with asyncio.timeout(45):
        view = app.compose.inventory
        while sum(1 for rs in view.services().values() for r in rs if r.running) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
    assert not app.notifier.connected
    assert f"MQTT broker 127.0.0.1:{port} unreachable" in caplog.text
    assert "wrong" not in caplog.text.replace("wrong password", "")


async def test_events_undelivered_at_shutdown_are_delivered_by_the_next_start(
    make_container: Any,
    docker_host: str,
    broker: tuple[str, int],
    mqtt: Mqtt,
    project: str,
    tmp_path: Path,
) -> None:
    await make_container("broken", WEB | {"autoscaler.cpu.target": "fast"})
    outbox = tmp_path / "outbox.jsonl"
    with socket.socket() as s:  # a port where no broker listens
        s.bind(("127.0.0.1", 0))
        nowhere = s.getsockname()[1]

    async def run_once(port: int, until: Any) -> None:
        settings = settings_for(docker_host, broker, project, mqtt.prefix)
        settings = settings.model_copy(
            update={"mqtt": settings.mqtt.model_copy(update={"port": port, "outbox_path": outbox})}
        )
        app, stop = App(settings), asyncio.Event()
        task = asyncio.create_task(app.serve(stop))
        try:
            async with asyncio.timeout(30):
                await until(app)
        finally:
            stop.set()
            await task

    async def error_queued(app: App) -> None:
        while app.notifier.pending < 1 or not outbox.read_text():  # noqa: ASYNC110
            await asyncio.sleep(0.1)

    await run_once(nowhere, error_queued)
    assert "autoscaler.cpu.target" in outbox.read_text()
    assert not mqtt.on(f"{project}/broken/events")

    async def delivered(app: App) -> None:
        await mqtt.wait_for(lambda m: m.on(f"{project}/broken/events"))

    await run_once(broker[1], delivered)
    events = mqtt.on(f"{project}/broken/events")
    assert events[0]["Actor"]["Attributes"]["label"] == "autoscaler.cpu.target"
    assert outbox.read_text() == ""


async def test_tls_to_a_broker_with_a_private_ca(
    make_container: Any,
    run_autoscaler: Any,
    broker: tuple[str, int],
    broker_tls: tuple[int, Path],
    project: str,
) -> None:
    port, ca = broker_tls
    prefix = f"tls-{project}"
    await make_container("web", WEB)
    app = await run_autoscaler(
        mqtt=mqtt_settings(host=broker[0], port=port, topic_prefix=prefix, tls=True, ca_file=ca)
    )
    context = ssl.create_default_context(cafile=str(ca))
    async with aiomqtt.Client(broker[0], port, tls_context=context) as client:
        await client.subscribe(f"{prefix}/{project}/web/state", qos=1)
        async with asyncio.timeout(20):
            async for message in client.messages:
                assert json.loads(bytes(message.payload))["service"] == "web"  # type: ignore[arg-type]
                break
    assert app.notifier.connected


async def test_tls_refuses_a_broker_it_cannot_verify(
    make_container: Any,
    run_autoscaler: Any,
    broker: tuple[str, int],
    broker_tls: tuple[int, Path],
    project: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port, _ = broker_tls
    await make_container("web", WEB)
    # The system's CAs do not know the broker's private CA.
    app = await run_autoscaler(mqtt=mqtt_settings(host=broker[0], port=port, tls=True))
    await asyncio.sleep(2)
    assert not app.notifier.connected
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text or "certificate verify failed" in caplog.text


async def test_a_steady_service_sends_its_state_once_and_every_change_in_the_round_it_happens(
    make_container: Any,
    make_load: Any,
    run_autoscaler: Any,
    mqtt: Mqtt,
    broker: tuple[str, int],
    project: str,
) -> None:
    load = make_load("web")
    await make_container("web", WEB, load=load)
    # The default heartbeat: a minute.
    app = await run_autoscaler(mqtt=mqtt_settings(host=broker[0], port=broker[1],
                                                  topic_prefix=mqtt.prefix, heartbeat=60))  # fmt: skip
    controller = await _controller(app, project)
    # Its first rounds say something new (the first CPU reading); then it is steady.
    await _rounds(controller, 3)
    sent = len(states(mqtt, project, "web"))
    await _rounds(controller, 6)
    assert len(states(mqtt, project, "web")) == sent  # six rounds, nothing new, nothing sent

    load.set(200)  # ceil(200 / 125) = 2: a new decision
    changed = await mqtt.wait_for(
        lambda m: [s for s in states(m, project, "web") if s.get("desired") == 2]
    )
    decided = next(e for e in controller.history if e.decision.desired == 2)
    # Sent in the very round that decided it, not a round later.
    assert 0 <= changed[0]["time"] - decided.at < app.settings.interval


async def _controller(app: App, project: str) -> Any:
    async with asyncio.timeout(10):
        while (c := app.compose.fleet.get(ServiceKey(project, "web"))) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return c


async def _rounds(controller: Any, count: int) -> None:
    """Until the controller has made `count` more evaluations (watched from outside; a quiet
    round's, which keeps the hold without a decision, counts)."""
    target = controller.tally.evaluations + count
    async with asyncio.timeout(30):
        while controller.tally.evaluations < target:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def _retained(host: str, port: int, topic: str) -> dict[str, dict[str, Any]]:
    """What a reader arriving now is handed on `topic` (a filter): each topic's retained message."""
    found: dict[str, dict[str, Any]] = {}
    async with aiomqtt.Client(host, port) as late:
        await late.subscribe(topic, qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.5):
                async for message in late.messages:
                    found[str(message.topic)] = json.loads(bytes(message.payload))  # type: ignore[arg-type]
    return found


async def test_each_instance_has_a_status_of_its_own_and_a_standby_going_never_says_the_leader_is_offline(
    make_container: Any, spawn_autoscaler: Any, mqtt: Mqtt, broker: tuple[str, int], project: str
) -> None:
    await make_container("web", WEB)
    me = socket.gethostname()
    leader = await spawn_autoscaler()
    # The leader's own status says it leads; the service's state names it as the one acting.
    led = await mqtt.wait_for(
        lambda m: [i for i, s in m.statuses().items() if s[-1].get("leading")]
    )
    (acting,) = led
    assert acting.startswith(f"{me}-{leader.pid}-")
    await mqtt.wait_for(lambda m: states(m, project, "web"))
    assert {s["instance"] for s in states(mqtt, project, "web")} == {acting}

    # A standby beside it, on a topic of its own: online, not leading. Then a clean stop: it
    # says offline there and clears it. Another standby is killed: its will says offline there.
    standby = await spawn_autoscaler()
    others = await mqtt.wait_for(lambda m: [i for i in m.statuses() if i != acting])
    (stopped,) = others
    assert stopped.startswith(f"{me}-{standby.pid}-")
    assert mqtt.statuses()[stopped][-1] | {"time": 0, "host": ""} == {
        "status": "online", "instance": stopped, "leading": False, "time": 0, "host": ""}  # fmt: skip
    standby.terminate()
    assert await standby.wait() == 0
    await mqtt.wait_for(lambda m: f"{m.prefix}/status/{stopped}" in m.cleared)
    assert mqtt.statuses()[stopped][-1]["status"] == "offline"
    crashing = await spawn_autoscaler()
    (killed,) = await mqtt.wait_for(
        lambda m: [i for i in m.statuses() if i not in (acting, stopped)]
    )
    assert killed.startswith(f"{me}-{crashing.pid}-")
    crashing.send_signal(signal.SIGKILL)
    await crashing.wait()
    await mqtt.wait_for(lambda m: m.statuses()[killed][-1]["status"] == "offline")

    # The leader was never said to be offline, and it still acts.
    assert {s["status"] for s in mqtt.statuses()[acting]} == {"online"}
    after = await states_after(mqtt, project, "web", time.time(), 2)
    assert {s["instance"] for s in after} == {acting}
    # Nothing says offline on the shared topic of earlier releases: each instance cleared it.
    assert not mqtt.on("status") and f"{mqtt.prefix}/status" in mqtt.cleared
    # A reader arriving now: the leader online and leading, the killed one offline (its will),
    # nothing of the one that stopped cleanly.
    found = await _retained(*broker, f"{mqtt.prefix}/status/+")
    assert {t.rsplit("/", 1)[1]: (s["status"], s.get("leading")) for t, s in found.items()} == {
        acting: ("online", True), killed: ("offline", None)}  # fmt: skip
