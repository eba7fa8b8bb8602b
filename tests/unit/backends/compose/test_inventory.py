"""How the engine's view is followed again after the engine went away, and kept current: the
newest answer about a container is the one the view holds."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import aiodocker
import aiohttp
import pytest

from autoscaler.backends.compose.inventory import Inventory
from autoscaler.backends.docker.client import unanswered
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
        pytest.param(ExceptionGroup("follow", [FileNotFoundError(2, "No such file"), ExceptionGroup("tasks", [ConnectionRefusedError(111, "refused")])]), True, id="every-task-found-no-socket"),
        pytest.param(ExceptionGroup("follow", [ConnectionRefusedError(111, "refused"), aiohttp.ServerDisconnectedError()]), False, id="one-task-had-an-answer"),
    ],
)  # fmt: skip
def test_an_engine_that_does_not_answer_at_all_is_asked_again_at_once(
    exc: BaseException, away: bool
) -> None:
    # While it restarts, a try costs nothing: asked again every half second, not after a
    # backoff that doubles past the moment it is back. One that answers with an error, or cut a
    # stream it had, is given the backoff.
    assert unanswered(exc) is away


class _Found:
    def __init__(self, data: dict[str, Any]) -> None:
        self._container = data
        self.id = data["Id"]


class _Containers:
    """Each `get` answers when the test releases it, with the state the container had when
    the request reached the engine (`now` then). A `list` answers with the ids in `listed`
    as they were when it was asked, once `listing` is set."""

    def __init__(self) -> None:
        self.now: dict[str, Any] = {}
        self.asked: list[asyncio.Event] = []
        self._arrived = asyncio.Condition()
        self.listed: list[str] = []
        self.listing = asyncio.Event()
        self.listing.set()
        self.asked_to_list = asyncio.Event()

    async def list(self, **_: Any) -> list[_Found]:
        found = [_Found({"Id": i}) for i in self.listed]
        self.asked_to_list.set()
        await self.listing.wait()
        return found

    async def reached(self, count: int) -> None:
        """Until `count` inspects have reached the engine."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.asked) >= count)

    async def get(self, container_id: str) -> _Found:
        gate, data = asyncio.Event(), self.now
        async with self._arrived:
            self.asked.append(gate)
            self._arrived.notify_all()
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


async def test_an_inspect_answered_after_the_containers_destroy_does_not_bring_it_back() -> None:
    docker = _Docker()
    inventory = Inventory(docker)  # type: ignore[arg-type]
    ident = str(INSPECT["Id"])
    # The actuator refreshes its clone as the engine removes it (`docker compose up` removing
    # what is beyond its scale); the inspect's answer is read after the `destroy` event.
    docker.containers.now = _state("running")
    late = asyncio.create_task(inventory.refresh(ident))
    await docker.containers.reached(1)
    await inventory._apply({"Action": "destroy", "id": ident})
    docker.containers.asked[0].set()
    await late
    assert inventory.get(ident) is None


async def test_a_listing_does_not_undo_what_a_refresh_begun_after_it_saw() -> None:
    docker = _Docker()
    inventory = Inventory(docker)  # type: ignore[arg-type]
    ident = str(INSPECT["Id"])
    docker.containers.listed = [ident]
    # A listing's inspect reaches the engine while the clone is still only created...
    docker.containers.now = _state("created")
    listing = asyncio.create_task(inventory.resync())
    await docker.containers.reached(1)
    # ...then the actuator starts it, and its refresh answers first.
    docker.containers.now = _state("running")
    from_actuator = asyncio.create_task(inventory.refresh(ident))
    await docker.containers.reached(2)
    docker.containers.asked[1].set()
    await from_actuator
    docker.containers.asked[0].set()
    await listing
    seen = inventory.get(ident)
    assert seen is not None and seen.status == "running"


async def test_a_listing_keeps_a_clone_made_after_it_began_and_drops_one_gone_before() -> None:
    docker = _Docker()
    inventory = Inventory(docker)  # type: ignore[arg-type]
    gone = {**_state("running"), "Id": "f" * 64}
    docker.containers.now = gone
    before = asyncio.create_task(inventory.refresh("f" * 64))
    await docker.containers.reached(1)
    docker.containers.asked[0].set()
    await before
    # The listing is made without either: one was removed (its event not read yet), the other
    # not made yet. It is answered after the actuator made the new clone and refreshed it.
    docker.containers.listing.clear()
    listing = asyncio.create_task(inventory.resync())
    await docker.containers.asked_to_list.wait()
    ident = str(INSPECT["Id"])
    docker.containers.now = _state("running")
    from_actuator = asyncio.create_task(inventory.refresh(ident))
    await docker.containers.reached(2)
    docker.containers.asked[1].set()
    await from_actuator
    docker.containers.listing.set()
    await listing
    assert inventory.get(ident) is not None
    assert inventory.get("f" * 64) is None


async def test_nothing_is_kept_of_a_destroyed_container_once_no_answer_about_it_is_awaited() -> (
    None
):
    # Clones come and go for as long as the process runs: what drops a late answer about a
    # destroyed one is kept only while such an answer may still come.
    docker = _Docker()
    inventory = Inventory(docker)  # type: ignore[arg-type]
    ident = str(INSPECT["Id"])
    docker.containers.now = _state("running")
    late = asyncio.create_task(inventory.refresh(ident))
    await docker.containers.reached(1)
    await inventory._apply({"Action": "destroy", "id": ident})
    assert ident in inventory._fresh
    docker.containers.asked[0].set()
    await late
    await inventory._apply({"Action": "destroy", "id": "f" * 64})
    assert inventory._fresh == {}
