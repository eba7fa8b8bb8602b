"""Operators' commands over MQTT: `<prefix>/control` takes the same JSON as the API's
`POST /controls` (control/controls.py), plus an `id`; the answer goes to
`<prefix>/control/result`: `{"id", "ok", "service", "control"}` or `{"id", "ok": false,
"error"}`.

Who may command is the broker's to say (its ACL: write access to `<prefix>/control`), as it says
who may publish a metric. Only an instance that leads takes a command, so that two instances do
not both answer; a standby's subscription is ready for when it leads. A command is taken at
least once (QoS 1): one delivered twice carries the same `id`, and the record it set is not set
again (backends/compose/controls.py). A retained command is refused: it would be carried out
again at every connection, long after whoever sent it meant it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiomqtt

from autoscaler.errors import AutoscalerError, Reconnect
from autoscaler.mqtt.client import client, tls_context
from autoscaler.settings import MqttSettings

logger = logging.getLogger(__name__)

_BACKOFF_START, _BACKOFF_CAP = 0.25, 2.0
_LIMIT = 16_384  # bytes: a command is a few fields


class Commands:
    def __init__(
        self,
        settings: MqttSettings,
        *,
        command: Callable[[object, str], Awaitable[Mapping[str, Any]]],
        leads: Callable[[], bool],
        answer: Callable[[str, Mapping[str, Any]], None],
    ) -> None:
        """`command`: carries out one (App.command); `leads`: whether this instance takes
        commands now; `answer`: publishes a result on a topic (the notifier's outbox)."""
        self._settings = settings
        self._tls = tls_context(settings)
        self._command, self._leads, self._answer = command, leads, answer
        prefix = settings.topic_prefix.rstrip("/")
        self.topic, self.results = f"{prefix}/control", f"{prefix}/control/result"

    async def run(self) -> None:
        """Follow the command topic until cancelled; reconnect when the broker goes away."""
        if not self._settings.enabled:
            return
        retry = Reconnect(_BACKOFF_START, _BACKOFF_CAP)
        while True:
            try:
                async with client(self._settings, self._tls) as mqtt:
                    retry.reset()
                    await mqtt.subscribe(self.topic, qos=1)
                    async for message in mqtt.messages:
                        await self._take(message)
            except aiomqtt.MqttError as exc:
                logger.debug("commands: broker connection lost or refused: %s", exc)
            await asyncio.sleep(retry.next())

    async def _take(self, message: aiomqtt.Message) -> None:
        if not self._leads():
            return
        payload = message.payload if isinstance(message.payload, bytes) else b""
        try:
            body = json.loads(payload) if len(payload) <= _LIMIT else None
        except ValueError:
            body = None
        ident = body.get("id", "") if isinstance(body, dict) else ""
        result: dict[str, Any] = {"id": ident if isinstance(ident, str) else ""}
        if message.retain:
            result |= {"ok": False, "error": "a command is never retained: send it again "
                                             "without the retain flag"}  # fmt: skip
        elif body is None:
            result |= {"ok": False, "error": f"a command is a JSON object of at most {_LIMIT} "
                                             "bytes"}  # fmt: skip
        else:
            try:
                result |= {"ok": True, **await self._command(body, "mqtt")}
            except AutoscalerError as exc:
                result |= {"ok": False, "error": str(exc)}
        if not result["ok"]:
            logger.warning("command on %s refused: %s", self.topic, result["error"])
        self._answer(self.results, result)
