"""What reaches the broker: every service's topics, whatever its name, are topics a broker
takes, one level a name; and a message the client refuses is dropped and counted, never left
before every later one."""

from __future__ import annotations

import asyncio
from urllib.parse import unquote

from hypothesis import given
from hypothesis import strategies as st

from autoscaler.labels import ServiceKey
from autoscaler.mqtt.notifier import Notifier, level
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
