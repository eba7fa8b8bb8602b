"""Every webhook target, as the app wires them: the notifier hands each event to `offer` (the
callback it is given), each target's sender runs as a part of the app's TaskGroup, and shutdown
closes them and waits a bounded while for what they hold.

Each target's outbox is a file when there is somewhere to keep it: beside the MQTT outbox's file
(`AUTOSCALER_MQTT__OUTBOX_PATH`), else in `webhooks/` of `AUTOSCALER_STATE_DIR`; in memory only
(lost at a restart) when neither is set. The file is `webhook-<name>.outbox`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from autoscaler.settings import Settings, WebhookSettings
from autoscaler.webhooks.errors import WebhookError
from autoscaler.webhooks.sender import Sender
from autoscaler.webhooks.target import Target


def outbox_folder(settings: Settings) -> Path | None:
    """Where the targets' outbox files go, or None: memory only."""
    if settings.mqtt.outbox_path is not None:
        return settings.mqtt.outbox_path.parent
    if settings.state_dir is not None:
        return settings.state_dir / "webhooks"
    return None


class Webhooks:
    def __init__(
        self,
        targets: Sequence[WebhookSettings],
        folder: Path | None,
        *,
        wall: Callable[[], float] = time.time,
    ) -> None:
        found = [Target.of(t) for t in targets]
        names = [t.name for t in found]
        if twice := sorted({n for n in names if names.count(n) > 1}):
            raise WebhookError(
                f"AUTOSCALER_WEBHOOKS: several targets named {', '.join(twice)} (give each its "
                "own `name`): they would share one outbox file"
            )
        self.senders = [
            Sender(t, folder / f"webhook-{t.name}.outbox" if folder else None, wall=wall)
            for t in found
        ]

    def offer(self, event: Mapping[str, Any]) -> None:
        """Every target that wants `event` queues it; never waits."""
        for sender in self.senders:
            sender.offer(event)

    def parts(self) -> dict[str, Callable[[], Awaitable[None]]]:
        """Each target's delivery loop, by name: each runs supervised until shutdown."""
        return {f"webhook {s.name}": s.run for s in self.senders}

    def close(self) -> None:
        """Ask every sender to deliver what it holds while its target takes it, then return."""
        for sender in self.senders:
            sender.close()

    def status(self) -> dict[str, dict[str, Any]]:
        """Each target's counts, by name: what /status shows."""
        return {s.name: s.status() for s in self.senders}
