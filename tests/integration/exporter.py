"""A queue's depth published over MQTT as an exporter would: the labels of a worker scaled on it
(QUEUE), a one-off publish, and an exporter that republishes every half second (Queue); the
`queue` fixture (conftest.py) gives each test one of its own."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiomqtt

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
    changes and again every half second, so a value is never older than its max age. `stall`
    stops it (a publisher that hangs), `set` starts it again."""

    def __init__(self, broker: tuple[str, int], topic: str) -> None:
        self.broker, self.topic = broker, topic
        self.depth: str | None = None

    async def set(self, depth: int | str) -> None:
        self.depth = str(depth)
        await publish(self.broker, self.topic, self.depth)

    def stall(self) -> None:
        self.depth = None

    async def run(self) -> None:
        async with aiomqtt.Client(*self.broker) as client:
            while True:
                await asyncio.sleep(0.5)  # the exporter's own period
                if self.depth is not None:
                    await client.publish(self.topic, self.depth, qos=1, retain=True)


@contextlib.asynccontextmanager
async def exporting(broker: tuple[str, int], topic: str) -> AsyncIterator[Queue]:
    exporter = Queue(broker, topic)
    task = asyncio.create_task(exporter.run())
    try:
        yield exporter
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
