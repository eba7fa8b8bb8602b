"""What reaches the broker: every service's topics, whatever its name, are topics a broker
takes, one level a name; and a message the client refuses is dropped and counted, never left
before every later one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiomqtt
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.labels import ServiceKey
from autoscaler.mqtt.notifier import Notifier, Standing, level
from autoscaler.settings import MqttSettings


class Client:
    """A broker connection that refuses what paho refuses before sending: a topic with a
    wildcard or over 65,535 bytes."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool) -> None:
        if "+" in topic or "#" in topic or len(topic.encode()) > 65535:
            raise ValueError("Publish topic cannot contain wildcards.")
        self.sent.append(topic)


def test_a_name_with_a_topic_s_own_characters_is_one_level_escaped_as_in_a_url() -> None:
    notifier = Notifier(MqttSettings())
    assert notifier.topic(ServiceKey("shop", "a+b#c/d%"), "state") == (
        "autoscaler/shop/a%2Bb%23c%2Fd%25/state"
    )
    assert notifier.topic(ServiceKey("sh/op", "web", "swarm"), "events") == (
        "autoscaler/swarm/sh%2Fop/web/events"
    )
    assert (
        notifier.topic(ServiceKey("shop", "web-1_a.b"), "state")
        == "autoscaler/shop/web-1_a.b/state"
    )


@given(project=st.text(min_size=1), service=st.text(min_size=1))
def test_every_name_makes_a_topic_a_broker_takes_and_the_name_reads_back(
    project: str, service: str
) -> None:
    topic = Notifier(MqttSettings()).topic(ServiceKey(project, service), "state")
    assert "+" not in topic and "#" not in topic and "\x00" not in topic
    _, got_project, got_service, leaf = topic.split("/")
    assert (unquote(got_project), unquote(got_service), leaf) == (project, service, "state")
    assert level(service) == service or any(c in service for c in "%+#/\x00")


def test_a_message_the_client_refuses_is_dropped_and_counted_and_the_next_ones_go() -> None:
    notifier = Notifier(MqttSettings())
    notifier.publish("autoscaler/shop/web/events", {"n": 1})
    notifier.publish("autoscaler/" + "x" * 70_000 + "/events", {"n": 2})  # no topic can be
    notifier.publish("autoscaler/shop/web/events", {"n": 3})
    notifier.state(ServiceKey("shop", "x" * 70_000), {"replicas": 1})
    notifier.state(ServiceKey("shop", "web"), {"replicas": 2})
    notifier.close()  # deliver what is queued, then return
    client = Client()
    assert asyncio.run(notifier._deliver(client))  # type: ignore[arg-type]
    ours = [t for t in client.sent if "/shop/" in t]
    assert ours == ["autoscaler/shop/web/events", "autoscaler/shop/web/events",
                    "autoscaler/shop/web/state"]  # fmt: skip
    assert (notifier.refused, notifier.pending) == (2, 0)


class Recorder:
    """A broker connection that takes everything and remembers how each message was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, int, bool]] = []
        self.arrived = asyncio.Event()

    async def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool) -> None:
        self.sent.append((topic, payload, qos, retain))
        self.arrived.set()


def delivered(notifier: Notifier) -> list[tuple[str, bytes, int, bool]]:
    """What one connection sends of what is queued, the notifier closing."""
    notifier.close()
    client = Recorder()
    assert asyncio.run(notifier._deliver(client))  # type: ignore[arg-type]
    return [m for m in client.sent if "/status" not in m[0]]


WEB = ServiceKey("shop", "web")


def test_events_go_once_each_at_least_once_and_state_retained_with_its_payload() -> None:
    notifier = Notifier(MqttSettings(), instance="me")
    assert (notifier.connected, notifier.published, notifier.failed_connects) == (False, 0, 0)
    notifier.publish("autoscaler/shop/web/events", {"b": 1, "a": 2})
    notifier.state(WEB, {"replicas": 2, "max": 5})
    assert delivered(notifier) == [
        ("autoscaler/shop/web/events", b'{"a": 2, "b": 1}', 1, False),
        ("autoscaler/shop/web/state", b'{"max": 5, "replicas": 2}', 1, True),
    ]
    assert notifier.published == 4  # with the earlier releases' status and its own
    assert notifier.pending == 0


def test_a_service_s_newer_state_replaces_the_waiting_one_and_goes_behind_the_others() -> None:
    notifier = Notifier(MqttSettings(), instance="me")
    notifier.state(WEB, {"replicas": 1})
    notifier.state(ServiceKey("shop", "db"), {"replicas": 1})
    notifier.state(WEB, {"replicas": 2})
    assert [(topic, payload) for topic, payload, _, _ in delivered(notifier)] == [
        ("autoscaler/shop/db/state", b'{"replicas": 1}'),
        ("autoscaler/shop/web/state", b'{"replicas": 2}'),
    ]


def test_a_cleared_state_is_an_empty_retained_message_replacing_the_waiting_one() -> None:
    notifier = Notifier(MqttSettings(), instance="me")
    notifier.state(WEB, {"replicas": 1})
    notifier.state(ServiceKey("shop", "db"), {"replicas": 1})
    notifier.clear(WEB)
    assert delivered(notifier) == [
        ("autoscaler/shop/db/state", b'{"replicas": 1}', 1, True),
        ("autoscaler/shop/web/state", b"", 1, True),
    ]


def test_a_service_with_no_state_waiting_can_be_cleared() -> None:
    notifier = Notifier(MqttSettings(), instance="me")
    notifier.clear(WEB)
    assert delivered(notifier) == [("autoscaler/shop/web/state", b"", 1, True)]


def test_without_a_broker_nothing_is_queued() -> None:
    notifier = Notifier(MqttSettings(enabled=False), instance="me")
    notifier.publish("autoscaler/shop/web/events", {"n": 1})
    notifier.state(WEB, {"replicas": 1})
    notifier.clear(WEB)
    assert notifier.pending == 0


def test_the_online_status_waits_behind_what_was_queued_before_it() -> None:
    notifier = Notifier(MqttSettings(), instance="me")
    notifier.standing(Standing(leading=True))
    notifier.state(WEB, {"replicas": 1})
    notifier.standing(Standing(leading=False))
    notifier.close()
    client = Recorder()
    asyncio.run(notifier._deliver(client))  # type: ignore[arg-type]
    topics = [topic for topic, *_ in client.sent]
    assert topics == ["autoscaler/status", "autoscaler/shop/web/state", "autoscaler/status/me"]
    online = json.loads(client.sent[-1][1])
    assert list(online) == sorted(online)
    assert (online["status"], online["leading"]) == ("online", False)
    assert client.sent[-1][2:] == (1, True)  # at least once, retained


def test_the_topic_prefix_is_taken_without_its_trailing_slash() -> None:
    notifier = Notifier(MqttSettings(topic_prefix="site/BOX/"), instance="me")
    assert notifier.topic(WEB, "state") == "site/BOX/shop/web/state"
    assert notifier.status_topic == "site/BOX/status/me"


def test_events_are_journalled_to_the_outbox_file_when_one_is_set(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    notifier = Notifier(MqttSettings(outbox_path=path), instance="me")
    notifier.publish("autoscaler/shop/web/events", {"n": 1})
    notifier._outbox.close()  # as `run` does when it returns
    assert '"topic": "autoscaler/shop/web/events"' in path.read_text()


def test_a_service_s_event_is_shaped_like_the_engine_s_journalled_and_sent_on_its_topic() -> None:
    notifier = Notifier(MqttSettings(), instance="me")
    before = time.time_ns()
    notifier.event(ServiceKey("shop", "web", "swarm"), "scale", {"from": 1, "to": 3},
                   instance="host-1", reason="cpu 90")  # fmt: skip
    (event,) = notifier.journal.after(0)
    assert {k: v for k, v in event.items() if k not in ("time", "timeNano", "seq")} == {
        "id": "me:1",
        "Type": "service",
        "Action": "scale",
        "Actor": {"ID": "swarm/shop/web", "Attributes": {
            "project": "shop", "service": "web", "from": "1", "to": "3", "instance": "host-1",
        }},
        "scope": "swarm",
        "reason": "cpu 90",
    }  # fmt: skip
    assert before <= event["timeNano"] <= time.time_ns()
    assert event["time"] == event["timeNano"] // 1_000_000_000
    ((topic, payload, qos, retain),) = delivered(notifier)
    assert (topic, qos, retain) == ("autoscaler/swarm/shop/web/events", 1, False)
    assert json.loads(payload) == {k: v for k, v in event.items() if k != "seq"}


def test_an_event_without_an_acting_instance_names_none() -> None:
    notifier = Notifier(MqttSettings(), instance="me")
    notifier.event(WEB, "sleep", {"to": 0}, instance=None)
    (event,) = notifier.journal.after(0)
    assert event["Actor"]["Attributes"] == {"project": "shop", "service": "web", "to": "0"}
    assert event["scope"] == "local"


def test_a_fault_of_a_part_is_an_autoscaler_error_event_on_the_prefix_s_topic() -> None:
    notifier = Notifier(MqttSettings(), instance="me")
    notifier.fault("collector", OSError("no such host"), instance="host-1")
    notifier.fault("web", ValueError("bad"), instance=None)
    first, second = notifier.journal.after(0)
    assert {k: v for k, v in first.items() if k not in ("time", "timeNano", "seq")} == {
        "id": "me:1",
        "Type": "autoscaler",
        "Action": "error",
        "Actor": {"ID": "collector", "Attributes": {
            "part": "collector", "error": "OSError", "instance": "host-1",
        }},
        "scope": "local",
        "message": "collector: no such host",
    }  # fmt: skip
    assert second["Actor"]["Attributes"] == {"part": "web", "error": "ValueError"}
    sent = delivered(notifier)
    assert [topic for topic, *_ in sent] == ["autoscaler/events"] * 2
    assert json.loads(sent[0][1])["message"] == "collector: no such host"


class Scripted(Notifier):
    """A notifier whose broker refuses the first `refusals` connections, then takes
    everything (a test's stand-in for the network: `_client` is the one place it connects)."""

    def __init__(self, refusals: int) -> None:
        super().__init__(MqttSettings(), instance="me")
        self.refusals = refusals
        self.broker = Recorder()
        self.tried = asyncio.Event()
        """Set at each try to connect."""

    @contextlib.asynccontextmanager
    async def _connect(self) -> AsyncIterator[Recorder]:
        self.tried.set()
        if self.refusals:
            self.refusals -= 1
            raise aiomqtt.MqttError("connection refused")
        yield self.broker

    def _client(self) -> Any:
        return self._connect()


async def sent(broker: Recorder, count: int) -> None:
    """Until the broker has had `count` messages."""
    while len(broker.sent) < count:
        broker.arrived.clear()
        await broker.arrived.wait()


async def test_while_the_broker_is_away_events_wait_and_a_stop_tries_once_more() -> None:
    notifier = Scripted(refusals=1)
    notifier.publish("autoscaler/shop/web/events", {"n": 1})
    async with asyncio.timeout(5), asyncio.TaskGroup() as tg:
        tg.create_task(notifier.run())
        await notifier.tried.wait()
        assert notifier.failed_connects == 1
        assert not notifier.connected and not notifier.broker.sent
        notifier.close()  # no backoff to sit out: the last try is now
    topics = [topic for topic, *_ in notifier.broker.sent]
    assert topics == ["autoscaler/shop/web/events", "autoscaler/status",
                      "autoscaler/status/me", "autoscaler/status/me", "autoscaler/status/me"]  # fmt: skip
    assert [payload for _, payload, *_ in notifier.broker.sent][-1] == b""  # cleared at last
    assert (notifier.failed_connects, notifier.published, notifier.pending) == (1, 3, 0)


async def test_a_stop_with_the_broker_still_away_returns_with_what_is_undelivered() -> None:
    notifier = Scripted(refusals=2)
    notifier.publish("autoscaler/shop/web/events", {"n": 1})
    async with asyncio.timeout(5), asyncio.TaskGroup() as tg:
        tg.create_task(notifier.run())
        await notifier.tried.wait()
        notifier.close()
    assert notifier.failed_connects == 2 and notifier.connected is False
    assert notifier.pending == 2 and not notifier.broker.sent  # the event, the old status


async def test_a_broker_there_from_the_start_gets_the_queue_at_once_without_a_stop() -> None:
    notifier = Scripted(refusals=0)
    notifier.publish("autoscaler/shop/web/events", {"n": 1})
    async with asyncio.timeout(5), asyncio.TaskGroup() as tg:
        tg.create_task(notifier.run())
        await sent(notifier.broker, 3)  # the event, the old status cleared, its own
        assert notifier.connected and notifier.failed_connects == 0 and notifier.pending == 0
        notifier.publish("autoscaler/shop/web/events", {"n": 2})  # sent as it comes
        await sent(notifier.broker, 4)
        assert notifier.published == 4
        notifier.close()
    assert notifier.pending == 0


async def test_a_broker_that_comes_back_is_found_after_the_backoff_without_a_stop() -> None:
    notifier = Scripted(refusals=2)
    notifier.publish("autoscaler/shop/web/events", {"n": 1})
    async with asyncio.timeout(5), asyncio.TaskGroup() as tg:
        tg.create_task(notifier.run())
        await sent(notifier.broker, 3)  # within 0.125 s and 0.25 s, at most 0.75 s
        assert notifier.connected and notifier.failed_connects == 2
        notifier.close()
    assert notifier.pending == 0
