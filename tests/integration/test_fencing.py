"""The fence on every action, on the real engine: a leader frozen (SIGSTOP) in the middle of a
scale-up for longer than its lease's ttl comes back after another instance took over, and what
it had still to do is dropped, not sent: the service never runs more than its max, and the old
leader says why it stopped."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import aiodocker

from tests.integration.conftest import Mqtt, events, reaches, states
from tests.integration.exporter import QUEUE, Queue

TTL = 3.0


class Running:
    """The project's running containers, followed from the engine's own events (not from the
    autoscaler's word): the most that ran at once, and the clones each lease term started."""

    def __init__(self) -> None:
        self.now: set[str] = set()
        self.most = 0
        self.started_by_term: dict[str, list[float]] = {}

    def apply(self, event: dict[str, Any]) -> None:
        actor, action = event["Actor"], event["Action"]
        if action == "start":
            self.now.add(actor["ID"])
            term = actor["Attributes"].get("autoscaler.term", "user")
            self.started_by_term.setdefault(term, []).append(event["timeNano"] / 1e9)
        elif action in ("die", "destroy"):
            self.now.discard(actor["ID"])
        self.most = max(self.most, len(self.now))


@contextlib.asynccontextmanager
async def following(docker_host: str, project: str) -> AsyncIterator[Running]:
    running = Running()
    docker = aiodocker.Docker(url=docker_host)
    label = {"label": [f"com.docker.compose.project={project}"]}
    listed = await docker.containers.list(filters=json.dumps(label))
    running.now = {c.id for c in listed}
    subscriber = docker.events.subscribe(create_task=False)  # type: ignore[no-untyped-call]
    feed = asyncio.create_task(
        docker.events.run(filters=json.dumps(label | {"type": ["container"]}))
    )

    async def pump() -> None:
        while (event := await subscriber.get()) is not None:
            running.apply(event)

    pumping = asyncio.create_task(pump())
    try:
        yield running
    finally:
        for task in (pumping, feed):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiodocker.DockerError):
                await task
        await docker.close()


async def test_a_leader_frozen_mid_scale_past_its_ttl_sends_nothing_once_it_is_back(
    make_container: Any, spawn_autoscaler: Any, mqtt: Mqtt, queue: Queue, project: str,
    docker_host: str,
) -> None:  # fmt: skip
    # One clone at a time, so that the scale-up 1 -> 10 lasts well past the moment it freezes.
    await make_container("worker", QUEUE | {"autoscaler.metric.topic": queue.topic})
    await queue.set(10)
    settings = {"AUTOSCALER_CLONE_CONCURRENCY": "1", "AUTOSCALER_LEASE__TTL": str(TTL)}
    instances = [await spawn_autoscaler(**settings), await spawn_autoscaler(**settings)]
    await reaches(mqtt, project, "worker", 1, hold=2)
    (old,) = await mqtt.wait_for(
        lambda m: [i for i, s in m.statuses().items() if s[-1].get("leading")], within=20
    )
    (frozen,) = [p for p in instances if old.split("-")[-2] == str(p.pid)]

    async with following(docker_host, project) as running:
        await queue.set(100)  # 10 replicas' worth: 9 clones, one at a time
        await mqtt.wait_for(lambda m: [s for s in states(m, project, "worker")
                                       if s["phase"] == "scaling"], within=10)  # fmt: skip
        frozen.send_signal(signal.SIGSTOP)
        stopped, froze = time.monotonic(), time.time()
        try:
            (new,) = await mqtt.wait_for(lambda m: [
                i for i, s in m.statuses().items() if i != old and s[-1].get("leading")
            ], within=30)  # fmt: skip
            await reaches(mqtt, project, "worker", 10, hold=2)
            # Back well past its ttl: TTL + 4 s after it froze (placing the fault).
            await asyncio.sleep(max(0.0, TTL + 4 - (time.monotonic() - stopped)))
        finally:
            frozen.send_signal(signal.SIGCONT)
        fenced = await mqtt.wait_for(lambda m: [
            e for e in events(m, project, "worker", "error")
            if e["Actor"]["Attributes"].get("instance") == old
            and "decided under lease term" in e["message"]
        ], within=15)  # fmt: skip
        assert "it holds none now" in fenced[0]["message"], fenced[0]
        # The new leader's rounds go on at 10; nothing of the old term started after it froze.
        await reaches(mqtt, project, "worker", 10, hold=3)
    # Never more than max running, as the engine's events count them; the clones of the frozen
    # leader's term (any it started) all started before it froze; the rest are the new one's.
    assert running.most <= 10, running.started_by_term
    newest = max(running.started_by_term, key=int)
    older = [t for term, ts in running.started_by_term.items() if term != newest for t in ts]
    assert all(t < froze for t in older), (froze, running.started_by_term)
    assert len(running.started_by_term[newest]) >= 1 and new != old
