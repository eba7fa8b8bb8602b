"""Workers on a Redis queue, as users run them: examples/worker-redis (a broker and a worker of
the reliable-queue pattern, built from Debian's binaries) with the deploy overlay, the
autoscaler a container reading the queue's length each round. Jobs are counted: enqueued,
finished, left in flight."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import aiodocker
import pytest

from tests.integration.conftest import ROOT, Mqtt, once_a_run
from tests.integration.platforms import Platform
from tests.integration.socket_proxy import overlay_env
from tests.integration.worker import Queue, build_images, containers, explained, until, worker_stack

JOBS, TARGET, MAX = 60, 5, 8
"""The burst, the jobs a replica should carry (the example's metric.target), its max."""


@pytest.fixture(scope="session")
def worker_images(docker_host: str) -> None:
    """The broker's and the worker's images, made offline once a machine."""
    with once_a_run(f"worker-images {docker_host}") as first:
        if first:
            build_images(docker_host)


async def test_a_burst_of_jobs_is_met_in_one_action_and_none_is_lost_through_the_scale_down(
    worker_images: None, deploy_image: str, docker_host: str, platform: Platform,
    docker: aiodocker.Docker, mqtt: Mqtt, project: str, tmp_path: Path,
) -> None:  # fmt: skip
    overlay = ROOT / "deploy" / "compose.autoscaler.yaml"
    env = {"AUTOSCALER_IMAGE": deploy_image, "DOCKER_SOCKET": docker_host.removeprefix("unix://"),
           "AUTOSCALER_INTERVAL": "1", "COMPOSE_PROJECT_NAME": project,
           # The cooldown short, so that the scale-down comes while jobs are in hand.
           "SCALE_DOWN_WINDOW": "1s",
           **overlay_env(docker_host, tmp_path / "secrets")}  # fmt: skip
    service = f"{project}/worker"
    autoscaler = platform.container(project, "autoscaler")
    async with worker_stack(project, platform, env, (overlay,)):
        queue = Queue(docker, platform.container(project, "redis"))
        # The autoscaler leads and reads the empty queue before the burst comes.
        await until(lambda: explained(docker, autoscaler, service), within=30)
        ids = [f"job-{n:02}" for n in range(JOBS)]
        await queue("RPUSH", "jobs", *ids)

        async def drained_at_min() -> bool:
            return (
                await queue.length("jobs") == 0 and await containers(docker, project, "worker") == 1
            )

        await until(drained_at_min, within=40)

        async def none_in_hand() -> bool:
            return await queue.length("processing") == 0

        # The replica left finishes the job it may hold within a job's time: what is still in
        # `processing` after that, no worker holds.
        with contextlib.suppress(TimeoutError):
            await until(none_in_hand, within=5)
        status = await explained(docker, autoscaler, service)
        finished = await queue("LRANGE", "finished", "0", "-1")
        processing = await queue("LRANGE", "processing", "0", "-1")
        done = await queue("GET", "done")
    assert status is not None
    decisions = status["services"][service]["decisions"]
    moves = [d for d in decisions if d["to"] != d["from"]]
    seen = [(d["from"], d["to"], d["reason"]) for d in moves]
    # The burst asks for ceil(jobs waiting / TARGET) replicas, bound to max: all at once.
    ups = [d for d in moves if d["to"] > d["from"]]
    assert len(ups) == 1, seen
    up = ups[0]
    asked = min(MAX, math.ceil(up["metrics"]["metric"] / TARGET))
    assert (up["from"], up["to"]) == (1, asked) == (1, MAX), seen
    # Replicas were stopped while jobs still waited (each of them busy), and it came back to min.
    assert any(d["to"] < d["from"] and d["metrics"]["metric"] > 0 for d in moves), seen
    assert moves[-1]["to"] == 1, seen
    # Every job finished exactly once; none left taken and unfinished.
    assert processing == [], f"taken and never finished: {processing}; moves: {seen}"
    assert sorted(finished) == ids, sorted(set(ids) - set(finished))
    assert done == [str(JOBS)]
