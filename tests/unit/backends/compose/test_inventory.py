"""How the engine's view is followed again after the engine went away, and kept current: the
newest answer about a container is the one the view holds."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import aiodocker
import aiohttp
import pytest

from autoscaler.backends.compose.inventory import Inventory, _unanswered
from tests.unit.backends.docker.test_replicas import INSPECT


@pytest.mark.parametrize(
    ("exc", "away"),
    [
        pytest.param(aiodocker.DockerError(900, {"message": "Cannot connect to Docker Engine"}), True, id="no-socket-aiodocker"),
        pytest.param(FileNotFoundError(2, "No such file or directory"), True, id="no-socket"),
        pytest.param(ConnectionRefusedError(111, "Connection refused"), True, id="refused"),
        pytest.param(aiodocker.DockerError(500, {"message": "internal error"}), False, id="it-answered-an-error"),
        pytest.param(aiohttp.ServerDisconnectedError(), False, id="the-stream-cut"),
        pytest.param(TimeoutError(), False, id="no-answer-in-time"),
    ],
)  # fmt: skip
def test_an_engine_that_does_not_answer_at_all_is_asked_again_at_once(
    exc: BaseException, away: bool
) -> None:
    # While it restarts, a try costs nothing: asked again every half second, not after a
    # backoff that doubles past the moment it is back. One that answers with an error, or cut a
    # stream it had, is given the backoff.
    assert _unanswered(exc) is away


class _Found:
    def __init__(self, data: dict[str, Any]) -> None:
        self._container = data


class _Containers:
    """Each `get` answers when the test releases it, with the state the container had when
    the request reached the engine (`now` then)."""

    def __init__(self) -> None:
        self.now: dict[str, Any] = {}
        self.asked: list[asyncio.Event] = []

    async def get(self, container_id: str) -> _Found:
        gate, data = asyncio.Event(), self.now
        self.asked.append(gate)
        await gate.wait()
        return _Found(data)


class _Docker:
    def __init__(self) -> None:
        self.containers = _Containers()


def _state(status: str) -> dict[str, Any]:
    data = copy.deepcopy(INSPECT)
    data["State"] = {**data["State"], "Status": status, "Running": status == "running"}
    return data


async def test_an_inspect_answered_late_does_not_undo_a_newer_one() -> None:
    docker = _Docker()
    inventory = Inventory(docker)  # type: ignore[arg-type]
    ident = str(INSPECT["Id"])
    # The clone's `create` event is read late, as a loaded engine answers slowly: its inspect
    # reaches the engine while the clone is still only created...
    docker.containers.now = _state("created")
    from_event = asyncio.create_task(inventory.refresh(ident))
    await asyncio.sleep(0)
    # ...then the actuator starts it and refreshes the view, and that answer comes first.
    docker.containers.now = _state("running")
    from_actuator = asyncio.create_task(inventory.refresh(ident))
    await asyncio.sleep(0)
    docker.containers.asked[1].set()
    assert (await from_actuator) is not None
    docker.containers.asked[0].set()
    await from_event
    seen = inventory.get(ident)
    assert seen is not None and seen.status == "running"
