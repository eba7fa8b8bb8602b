"""Webhooks on the real engine and broker: the autoscaler scales a queue's workers while its
webhook receiver (on 127.0.0.1, checking every signature) fails, then stalls past the timeout,
then recovers; every event arrives afterwards, in order, none accepted twice, each with the id
MQTT carries too; and a restart while the receiver is down loses none and resends with the same
id."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from autoscaler.app import App
from autoscaler.settings import WebhookSettings
from tests.integration.conftest import Mqtt, events
from tests.integration.exporter import QUEUE, Queue
from tests.unit.webhooks.receiver import STALL, Received, Receiver, receiving

SECRET = "a secret both ends share"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving(SECRET) as started:
        yield started


def target(receiver: Receiver, project: str, form: str) -> list[WebhookSettings]:
    """One target: the test's project only (the filter), a 1 s timeout, retries at most 1 s
    apart."""
    return [WebhookSettings.model_validate({
        "url": receiver.url, "secret": SECRET, "format": form, "services": [f"{project}/*"],
        "timeout": 1, "retry_cap": 1, "name": "receiver",
    })]  # fmt: skip


def told(app: App, project: str) -> list[dict[str, Any]]:
    """The project's events the instance told (its journal), oldest first, as they were sent."""
    return [{k: v for k, v in e.items() if k != "seq"} for e in app.journal.after(0)
            if e["Type"] == "service" and e["Actor"]["Attributes"]["project"] == project]  # fmt: skip


def ids(received: list[Received]) -> list[str]:
    return [r.id for r in received]


def data(received: Received) -> Any:
    """The engine-shaped event a request carries, whichever its format."""
    body = received.json()
    return body["data"] if "specversion" in body else body


async def test_a_receiver_that_fails_stalls_and_recovers_gets_every_event_in_order_once(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, queue: Queue, receiver: Receiver,
    project: str,
) -> None:  # fmt: skip
    receiver.status = lambda _: 500
    await make_container("worker", QUEUE | {"autoscaler.metric.topic": queue.topic})
    await queue.set(0)
    app = await run_autoscaler(webhooks=target(receiver, project, "cloudevents-structured"))

    # Failing: the scale-up is told to MQTT, and tried again and again on the receiver.
    await queue.set(30)
    await mqtt.wait_for(lambda m: events(m, project, "worker", "scale_up"))
    await receiver.wait_for(lambda r: len(r.requests) >= 2)
    assert receiver.accepted == []

    # Stalling past the timeout: the scale-down's turn comes behind the scale-up, still unsent.
    receiver.status = lambda _: STALL
    stalled = len(receiver.requests)
    await queue.set(0)
    await mqtt.wait_for(lambda m: events(m, project, "worker", "scale_down"))
    await receiver.wait_for(lambda r: len(r.requests) >= stalled + 2)
    assert receiver.accepted == []

    # Recovered: everything told since the start, in order, each accepted once.
    receiver.status = lambda _: 200
    await receiver.wait_for(lambda r: ids(r.accepted) == [e["id"] for e in told(app, project)])
    accepted = ids(receiver.accepted)
    assert len(set(accepted)) == len(accepted)
    assert [data(r) for r in receiver.accepted] == told(app, project)
    actions = [data(r)["Action"] for r in receiver.accepted]
    assert actions.index("scale_up") < actions.index("scale_down"), actions
    assert receiver.unsigned == []
    # A retry resends the same event: the ids the receiver saw are only ever the told ones.
    assert set(ids(receiver.requests)) == set(accepted)
    # MQTT carried the same events under the same ids.
    on_mqtt = [e["id"] for e in mqtt.on(f"{project}/worker/events")]
    assert on_mqtt == accepted
    assert app.status()["webhooks"]["receiver"]["target"] == receiver.url


async def test_a_restart_while_the_receiver_is_down_loses_nothing_and_resends_with_the_same_id(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, queue: Queue, receiver: Receiver,
    project: str, tmp_path: Path,
) -> None:  # fmt: skip
    receiver.status = lambda _: 500
    await make_container("worker", QUEUE | {"autoscaler.metric.topic": queue.topic})
    await queue.set(0)
    settings = {"webhooks": target(receiver, project, "cloudevents-binary"), "state_dir": tmp_path}
    first = await run_autoscaler(**settings)
    await queue.set(30)
    await mqtt.wait_for(lambda m: events(m, project, "worker", "scale_up"))
    await receiver.wait_for(lambda r: r.requests)
    before = told(first, project)
    await run_autoscaler.stop()  # the bounded drain gives up at the receiver's first failure
    outbox = tmp_path / "webhooks" / "webhook-receiver.outbox"
    kept = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert [json.loads(r["payload"])["id"] for r in kept if "payload" in r] == [
        e["id"] for e in before
    ]

    receiver.status = lambda _: 200
    second = await run_autoscaler(**settings)

    def everything(r: Receiver) -> bool:
        return ids(r.accepted) == [e["id"] for e in before + told(second, project)]

    await receiver.wait_for(everything)
    first_seen = receiver.requests[0]
    resent = next(r for r in receiver.accepted if r.id == first_seen.id)
    assert resent.body == first_seen.body and resent.headers["ce-id"] == first_seen.id
    assert receiver.unsigned == []
