"""The retained status says why an instance stands by, as soon as that changes."""

from __future__ import annotations

import json

from autoscaler.mqtt.notifier import Notifier
from autoscaler.settings import MqttSettings


def retained_status(notifier: Notifier) -> dict[str, object]:
    message = notifier._retained["autoscaler/status"]
    return json.loads(message.payload)  # type: ignore[no-any-return]


def test_an_instance_that_cannot_act_says_why_in_its_retained_status_until_it_can() -> None:
    notifier = Notifier(MqttSettings())
    notifier.standing_by("cannot take the lease: POST /containers/create: 403 denied")
    status = retained_status(notifier)
    assert status["status"] == "online"
    assert status["standing_by"] == "cannot take the lease: POST /containers/create: 403 denied"
    notifier._retained.clear()
    notifier.standing_by("cannot take the lease: POST /containers/create: 403 denied")
    assert "autoscaler/status" not in notifier._retained  # unchanged: nothing to send again
    notifier.standing_by(None)
    assert "standing_by" not in retained_status(notifier)
