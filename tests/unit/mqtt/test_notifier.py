"""Each instance's retained status: on a topic of its own, its last will there too, saying whether
it leads and why it stands by as that changes, and cleared on a clean stop."""

from __future__ import annotations

import json
from typing import Any

import pytest

from autoscaler.mqtt.notifier import Notifier, Standing
from autoscaler.settings import MqttSettings


def retained_status(notifier: Notifier) -> dict[str, Any]:
    message = notifier._retained[notifier.status_topic]
    return json.loads(message.payload)  # type: ignore[no-any-return]


def test_each_instance_has_a_status_topic_of_its_own_where_its_will_says_offline() -> None:
    leader, standby = (
        Notifier(MqttSettings(), instance=name) for name in ("host-7-a1", "host-9-b2")
    )
    assert leader.status_topic == "autoscaler/status/host-7-a1"
    assert standby.status_topic == "autoscaler/status/host-9-b2"
    will = standby._will()
    assert (will.topic, will.retain, will.qos) == (standby.status_topic, True, 1)
    said = json.loads(will.payload)  # type: ignore[arg-type]
    assert (said["status"], said["instance"]) == ("offline", "host-9-b2")
    # A name is one level of the topic, whatever it holds.
    assert Notifier(MqttSettings(), instance="a/b+c").status_topic == "autoscaler/status/a%2Fb%2Bc"


def test_instances_made_without_a_name_never_share_a_status_topic() -> None:
    assert Notifier(MqttSettings()).status_topic != Notifier(MqttSettings()).status_topic


def test_the_shared_status_of_earlier_releases_is_cleared_once() -> None:
    notifier = Notifier(MqttSettings(), instance="me")
    assert notifier._retained["autoscaler/status"].payload == b""
    assert notifier._retained["autoscaler/status"].retain
    assert not Notifier(MqttSettings(enabled=False), instance="me")._retained


@pytest.mark.parametrize(
    ("standing", "said"),
    [
        pytest.param(Standing(leading=True), {"leading": True}, id="leads"),
        pytest.param(Standing(), {"leading": False}, id="a-standby"),
        pytest.param(Standing(leading=True, swarm_leading=False), {"leading": True, "swarm_leading": False}, id="leads-compose-not-swarm"),
        pytest.param(Standing(standing_by="cannot take the lease: 403"), {"leading": False, "standing_by": "cannot take the lease: 403"}, id="cannot-act"),
    ],
)  # fmt: skip
def test_the_status_says_whether_the_instance_leads(
    standing: Standing, said: dict[str, Any]
) -> None:
    notifier = Notifier(MqttSettings(), instance="me")
    notifier.standing(Standing(leading=True, standing_by="before"))
    notifier.standing(standing)
    status = retained_status(notifier)
    assert {k: v for k, v in status.items() if k not in ("host", "time")} == {
        "status": "online", "instance": "me", **said,
    }  # fmt: skip


def test_an_instance_that_cannot_act_says_why_in_its_retained_status_until_it_can() -> None:
    notifier = Notifier(MqttSettings(), instance="me")
    notifier.standing(Standing(standing_by="cannot take the lease: POST /containers/create: 403"))
    status = retained_status(notifier)
    assert status["status"] == "online"
    assert status["standing_by"] == "cannot take the lease: POST /containers/create: 403"
    notifier._retained.clear()
    notifier.standing(Standing(standing_by="cannot take the lease: POST /containers/create: 403"))
    assert notifier.status_topic not in notifier._retained  # unchanged: nothing to send again
    notifier.standing(Standing(leading=True))
    assert "standing_by" not in retained_status(notifier)
    assert retained_status(notifier)["leading"] is True


class Told:
    """A connected client, as far as the notifier's goodbye goes."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, int, bool]] = []

    async def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool) -> None:
        self.sent.append((topic, payload, qos, retain))


async def test_a_clean_stop_says_offline_then_clears_its_own_status_and_no_other() -> None:
    notifier, told = Notifier(MqttSettings(), instance="me"), Told()
    await notifier._gone(told)  # type: ignore[arg-type]
    (first, said, qos, kept), (second, cleared, qos_too, kept_too) = told.sent
    assert first == second == "autoscaler/status/me"
    assert json.loads(said)["status"] == "offline" and kept
    assert cleared == b"" and kept_too
    assert qos == qos_too == 1  # at least once, as the will
