"""What a change cut short in the middle leaves behind, against the real engine: a scale-up
while its owner removes the template and ups it again (the service runs again, and either has a
template of its own or says what to run to give it one), and a clone an instance stopped to
remove and did not get to remove (frozen past its lease: whoever leads next removes it at once,
where one a user stopped would rest)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiodocker
import pytest

from autoscaler.control.repairs import STOPPED_GRACE
from tests.integration.compose_stack import Stack, containers, engine_until, is_clone
from tests.integration.conftest import Load, Mqtt, events, reaches, states
from tests.integration.platforms import Platform
from tests.integration.test_scaling import WEB, names

SIX = {"MIN": "6"}
"""The file's `web` held at 6 from the autoscaler's first round: a scale-up of five clones."""


@pytest.fixture
async def stack(
    platform: Platform, project: str, tmp_path: Path, make_load: Callable[[str], Load],
    make_container: Any, docker: aiodocker.Docker,
) -> AsyncIterator[Stack]:  # fmt: skip
    made = Stack.write(platform, project, tmp_path, make_load("web").path)
    try:
        yield made
    finally:
        await made.remove(docker)


async def test_an_rm_and_up_mid_scale_up_leave_the_service_running_and_a_template_or_the_fix(
    stack: Stack, run_autoscaler: Any, mqtt: Mqtt, docker: aiodocker.Docker, project: str
) -> None:
    # One clone at a time, so that the scale-up is still making clones while `rm -s` stops and
    # removes what it listed. No clone is made once the template is seen leaving; one started
    # between their listing and their stop outlives the template, and the `up` that follows
    # keeps it as the service's one container (Compose keeps the lowest-numbered containers of
    # an unchanged configuration) and makes no template: never removed after the fact (the
    # service would be left with nothing), it serves, and the error names the fix.
    await stack("up", "-d", env=SIX)
    await run_autoscaler(clone_concurrency=1)

    async def a_clone_runs() -> bool:
        return any(is_clone(c) for c in await containers(docker, project))

    await engine_until(docker, project, a_clone_runs)
    # Its exit status aside: their `rm` may find a clone it listed gone already.
    await stack("rm", "-s", "-f", "web", env=SIX, check=False)
    up = time.time()
    await stack("up", "-d", "web", env=SIX)

    async def own() -> list[dict[str, Any]]:
        return [c for c in await containers(docker, project) if not is_clone(c)]

    async def runs() -> list[dict[str, Any]]:
        return await containers(docker, project)

    assert await engine_until(docker, project, runs, within=30)
    if await own():
        await reaches(mqtt, project, "web", 6, within=60)
        assert len(await own()) == 1
        return

    def told(m: Mqtt) -> list[dict[str, Any]]:
        return [s for s in states(m, project, "web")
                if s["time"] > up and "--force-recreate web" in str(s.get("reason"))]  # fmt: skip

    await mqtt.wait_for(told, 30)
    assert await runs(), "the clone the up kept was removed: the service runs nothing"


def _clone_of(info: dict[str, Any], number: int) -> dict[str, Any]:
    """A create body for clone `number` of the container whose inspect data is `info`."""
    return {
        "Image": info["Image"],
        "Cmd": ["sleep", "86400"],
        "Labels": {**info["Config"]["Labels"], "autoscaler.clone-of": info["Id"],
                   "com.docker.compose.container-number": str(number), "autoscaler.term": "1"},
        "HostConfig": {"NetworkMode": "none", "RestartPolicy": {"Name": "unless-stopped"}},
    }  # fmt: skip


async def test_a_clone_an_instance_stopped_to_remove_it_is_removed_at_once_by_the_next(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, docker: aiodocker.Docker, project: str
) -> None:
    # The instance that led marked clone 2 as being removed and stopped it, and was frozen
    # before it removed it. The next to lead removes it at once: a user's stop would be waited
    # out for STOPPED_GRACE (tests/unit/control/test_repairs.py holds the two side by side).
    template = await make_container("web", WEB)
    info = await template.show()
    marked = await docker.containers.create(_clone_of(info, 2), name=f"{project}-web-2.removing")
    await marked.start()
    await marked.stop(t=0)
    stopped = time.monotonic()
    await run_autoscaler()

    repairs = await mqtt.wait_for(lambda m: events(m, project, "web", "repair"), STOPPED_GRACE)
    assert time.monotonic() - stopped < STOPPED_GRACE, "waited out as a user's stop"
    assert "web-2.removing was being removed by the autoscaler" in str(repairs[0]), repairs
    assert await names(docker, project) == {f"{project}-web-1": "running"}
    await reaches(mqtt, project, "web", 1)
