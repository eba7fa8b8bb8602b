"""How the engine's view is followed again after the engine went away, and kept current: the
newest answer about a container is the one the view holds."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiodocker
import aiohttp
import pytest

from autoscaler.backends.compose.inventory import _LIST_CONCURRENCY, Inventory
from autoscaler.backends.docker.client import unanswered
from autoscaler.control.replicas import Replica
from autoscaler.errors import Faults
from autoscaler.labels import ServiceKey
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


class _Engine:
    """Two projects' opted-in containers on one engine: `shop`'s and `blog`'s. Every inspect
    is counted."""

    def __init__(self) -> None:
        self.containers = self
        self.inspected: list[str] = []
        self._data = {
            "a" * 64: _of_project("a" * 64, "shop"),
            "b" * 64: _of_project("b" * 64, "blog"),
        }

    async def list(self, **_: Any) -> list[_Found]:
        return [_Found({"Id": i, "Labels": d["Config"]["Labels"]}) for i, d in self._data.items()]

    async def get(self, container_id: str) -> _Found:
        self.inspected.append(container_id)
        return _Found(self._data[container_id])


def _of_project(ident: str, project: str) -> dict[str, Any]:
    data = _state("running")
    data["Id"] = ident
    data["Config"]["Labels"] = {**data["Config"]["Labels"], "com.docker.compose.project": project}
    return data


async def test_an_instance_given_projects_inspects_and_keeps_only_their_containers() -> None:
    # One engine, two projects, an instance for `shop` (AUTOSCALER_PROJECTS): `blog`'s
    # containers are told apart by the labels the listing and the events carry, and cost no
    # inspect (on an engine of a thousand other containers, a listing that inspected each kept
    # the instance from being ready for tens of seconds).
    engine = _Engine()
    inventory = Inventory(engine, projects=frozenset({"shop"}))  # type: ignore[arg-type]
    await inventory.resync()
    assert list(inventory.services()) == [ServiceKey("shop", "web")]
    assert engine.inspected == ["a" * 64]

    blog = {"Action": "start", "id": "b" * 64,
            "Actor": {"Attributes": engine._data["b" * 64]["Config"]["Labels"]}}  # fmt: skip
    await inventory._apply(blog)
    shop = {"Action": "start", "id": "a" * 64,
            "Actor": {"Attributes": engine._data["a" * 64]["Config"]["Labels"]}}  # fmt: skip
    await inventory._apply(shop)
    assert engine.inspected == ["a" * 64, "a" * 64]
    assert list(inventory.services()) == [ServiceKey("shop", "web")]


async def test_an_instance_of_every_project_keeps_every_projects_containers() -> None:
    engine = _Engine()
    inventory = Inventory(engine)  # type: ignore[arg-type]
    await inventory.resync()
    assert sorted(inventory.services()) == [ServiceKey("blog", "web"), ServiceKey("shop", "web")]


class _Events:
    """An event stream the test writes to."""

    def __init__(self) -> None:
        self._stream: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def send(self, action: str, container_id: str) -> None:
        self._stream.put_nowait({"Action": action, "id": container_id})

    def subscribe(self, **_: Any) -> _Events:
        return self

    async def get(self) -> dict[str, Any]:
        return await self._stream.get()

    async def run(self, **_: Any) -> None:
        await asyncio.Event().wait()


class _Followed:
    """An engine whose events the test sends. Each inspect answers when the test releases it,
    with the state its container had when the request reached the engine (`now` then)."""

    def __init__(self) -> None:
        self.containers = self.system = self
        self.events = _Events()
        self.now: dict[str, dict[str, Any]] = {}
        self.asked: list[tuple[str, asyncio.Event]] = []  # the inspects, in the order they came
        self.failing: set[str] = set()  # containers whose inspect the engine fails
        self._arrived = asyncio.Condition()

    async def info(self) -> dict[str, Any]:
        return {"SystemTime": None}

    async def list(self, **_: Any) -> list[_Found]:
        return []

    async def get(self, container_id: str) -> _Found:
        gate, data = asyncio.Event(), self.now.get(container_id)
        async with self._arrived:
            self.asked.append((container_id, gate))
            self._arrived.notify_all()
        await gate.wait()
        if container_id in self.failing:
            raise aiodocker.DockerError(500, {"message": "internal error"})
        if data is None:
            raise aiodocker.DockerError(404, {"message": "No such container"})
        return _Found(data)

    async def reached(self, count: int) -> None:
        """Until `count` inspects have reached the engine (or fail: they never do)."""
        async with asyncio.timeout(2), self._arrived:
            await self._arrived.wait_for(lambda: len(self.asked) >= count)

    def answer(self, index: int) -> None:
        self.asked[index][1].set()


class _Told:
    """What the inventory tells (`on_event`), in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []  # (action, container, status)
        self._changed = asyncio.Event()

    def __call__(self, action: str, replica: Replica) -> None:
        self.events.append((action, replica.id, replica.status))
        self._changed.set()

    async def reached(self, count: int) -> None:
        """Until `count` events have been told (or fail: they never are)."""
        async with asyncio.timeout(2):
            while len(self.events) < count:
                self._changed.clear()
                await self._changed.wait()


@contextlib.asynccontextmanager
async def _following(inventory: Inventory) -> AsyncIterator[None]:
    follow = asyncio.create_task(inventory._follow())
    try:
        async with asyncio.timeout(2):
            await inventory.ready.wait()
        yield
    finally:
        follow.cancel()
        await asyncio.wait([follow])


@contextlib.asynccontextmanager
async def _followed() -> AsyncIterator[tuple[_Followed, _Told, Inventory]]:
    """An inventory following a fake engine, telling what it applies."""
    engine, told = _Followed(), _Told()
    inventory = Inventory(engine, on_event=told)  # type: ignore[arg-type]
    async with _following(inventory):
        yield engine, told, inventory


def _container(ident: str, status: str) -> dict[str, Any]:
    data = _state(status)
    data["Id"] = ident
    return data


SLOW, OTHER = "a" * 64, "b" * 64


async def _both_running(engine: _Followed, told: _Told) -> None:
    """Two containers running, SLOW's start read, applied and told."""
    engine.now = {SLOW: _container(SLOW, "running"), OTHER: _container(OTHER, "running")}
    engine.events.send("start", SLOW)
    await engine.reached(1)
    engine.answer(0)
    await told.reached(1)


async def test_an_inspect_held_back_does_not_keep_another_containers_event_from_the_view() -> None:
    # On a loaded engine a slow container start holds its inspect for seconds: the user's
    # other new containers (`docker compose up --scale web=5`) are in the view meanwhile.
    async with _followed() as (engine, told, inventory):
        engine.now = {SLOW: _container(SLOW, "running"), OTHER: _container(OTHER, "running")}
        engine.events.send("start", SLOW)
        await engine.reached(1)
        engine.events.send("start", OTHER)
        await engine.reached(2)
        engine.answer(1)
        await told.reached(1)
        assert told.events == [("start", OTHER, "running")]
        assert inventory.get(OTHER) is not None and inventory.get(SLOW) is None
        engine.answer(0)
        await told.reached(2)
        assert inventory.get(SLOW) is not None
        assert inventory.events_seen == 2


async def test_a_containers_events_answered_in_reverse_leave_its_newest_state_told_in_order() -> (
    None
):
    async with _followed() as (engine, told, inventory):
        # Its `create` is inspected while it is only created, its `start` once it runs; the
        # second answer comes first.
        engine.now = {SLOW: _container(SLOW, "created")}
        engine.events.send("create", SLOW)
        await engine.reached(1)
        engine.now = {SLOW: _container(SLOW, "running")}
        engine.events.send("start", SLOW)
        await engine.reached(2)
        engine.answer(1)
        engine.answer(0)
        await told.reached(2)
        seen = inventory.get(SLOW)
        assert seen is not None and seen.status == "running"
        # Told in the order the events were read, each with the view its inspect left.
        assert [action for action, _, _ in told.events] == ["create", "start"]


async def test_a_destroy_read_while_the_containers_inspect_is_held_leaves_it_gone() -> None:
    async with _followed() as (engine, told, inventory):
        await _both_running(engine, told)
        # Its `die` is inspected while it still runs; its `destroy` is read before the answer.
        engine.events.send("die", SLOW)
        await engine.reached(2)
        engine.events.send("destroy", SLOW)
        # (Once the next event's inspect is asked, the `destroy` has been read.)
        engine.events.send("start", OTHER)
        await engine.reached(3)
        engine.answer(1)
        await told.reached(3)
        assert inventory.get(SLOW) is None
        assert [action for action, _, _ in told.events] == ["start", "die", "destroy"]
        engine.answer(2)
        await told.reached(4)
        assert inventory.get(SLOW) is None


async def test_a_container_two_of_its_events_found_gone_is_told_gone_once() -> None:
    # `docker compose up` stops and removes at once: its `kill` and `die` are inspected after
    # it is gone, the answers come in reverse, and its `destroy` is read after them.
    async with _followed() as (engine, told, inventory):
        await _both_running(engine, told)
        del engine.now[SLOW]
        engine.events.send("kill", SLOW)
        engine.events.send("die", SLOW)
        await engine.reached(3)
        engine.answer(2)
        engine.answer(1)
        await told.reached(2)
        engine.events.send("destroy", SLOW)
        engine.events.send("start", OTHER)
        await engine.reached(4)
        engine.answer(3)
        # (The other container's event is told after all of this one's.)
        await told.reached(3)
        assert told.events[-1][:2] == ("start", OTHER)
        assert [(action, i) for action, i, _ in told.events if i == SLOW] == [
            ("start", SLOW),
            ("destroy", SLOW),
        ]
        assert inventory.get(SLOW) is None


NEW, THIRD = SLOW, "c" * 64


@pytest.mark.parametrize("removal", ["destroy", "die"], ids=["its-destroy", "an-inspect-of-it"])
async def test_a_container_leaves_the_view_only_after_the_events_read_before_its_removal(
    removal: str,
) -> None:
    # `docker compose up` replacing the template reads the new container's `create` before the
    # old one's removal. Applied ahead of a slow inspect of the new one, the removal would show
    # the clones without a template: an error.
    async with _followed() as (engine, told, inventory):
        engine.now = {OTHER: _container(OTHER, "running")}
        engine.events.send("start", OTHER)
        await engine.reached(1)
        engine.answer(0)
        await told.reached(1)
        engine.now = {NEW: _container(NEW, "created"), THIRD: _container(THIRD, "running")}
        engine.events.send("create", NEW)
        await engine.reached(2)
        engine.events.send(removal, OTHER)
        if removal == "die":
            await engine.reached(3)
            engine.answer(2)  # the engine has no such container
        # (Once the next event's inspect is asked, the removal has been read and answered.)
        engine.events.send("start", THIRD)
        await engine.reached(len(engine.asked) + 1)
        assert inventory.get(OTHER) is not None
        engine.answer(1)
        await told.reached(3)
        assert inventory.get(OTHER) is None
        assert told.events[1:] == [("create", NEW, "created"), ("destroy", OTHER, "running")]


async def test_an_event_that_fails_is_a_fault_and_one_the_engine_fails_ends_the_follow() -> None:
    engine, told, faults = _Followed(), _Told(), list[str]()

    def on_event(action: str, replica: Replica) -> None:
        if replica.id == SLOW:
            raise RuntimeError("a bug of ours")
        told(action, replica)

    inventory = Inventory(
        engine,  # type: ignore[arg-type]
        on_event=on_event,
        faults=Faults(lambda part, _: faults.append(part)),
    )
    follow = asyncio.create_task(inventory._follow())
    try:
        async with asyncio.timeout(2):
            await inventory.ready.wait()
        engine.now = {SLOW: _container(SLOW, "running"), OTHER: _container(OTHER, "running")}
        engine.events.send("start", SLOW)
        await engine.reached(1)
        engine.answer(0)
        # The next event is still read and applied.
        engine.events.send("start", OTHER)
        await engine.reached(2)
        engine.answer(1)
        await told.reached(1)
        assert faults == ["engine events"]
        # An engine that fails an inspect ends the follow: it is followed again from a new listing.
        engine.failing.add(OTHER)
        engine.events.send("die", OTHER)
        await engine.reached(3)
        engine.answer(2)
        with pytest.raises(ExceptionGroup) as ended:
            async with asyncio.timeout(2):
                await follow
        assert [type(e) for e in ended.value.exceptions] == [aiodocker.DockerError]
    finally:
        follow.cancel()
        await asyncio.wait([follow])


async def test_a_burst_of_events_asks_the_engine_a_bounded_number_of_inspects_at_once() -> None:
    burst = [f"{n:064x}" for n in range(_LIST_CONCURRENCY + 1)]
    async with _followed() as (engine, told, _):
        engine.now = {i: _container(i, "running") for i in [*burst, OTHER]}
        engine.events.send("start", OTHER)
        await engine.reached(1)
        engine.answer(0)
        await told.reached(1)
        for ident in burst:
            engine.events.send("start", ident)
        await engine.reached(1 + _LIST_CONCURRENCY)
        # (Read at once, every event of the burst has begun by the time the test is woken.)
        assert len(engine.asked) == 1 + _LIST_CONCURRENCY
        engine.answer(1)
        await engine.reached(2 + _LIST_CONCURRENCY)


async def test_a_stop_asked_is_in_the_view_before_its_inspect_answers() -> None:
    # `docker compose down`: a clone's stop is read, its inspect is slow, and the template's
    # `destroy` is applied meanwhile; the clone is on its way out, not the last one standing.
    async with _followed() as (engine, told, inventory):
        engine.now = {SLOW: _container(SLOW, "running")}
        engine.events.send("start", SLOW)
        await engine.reached(1)
        engine.answer(0)
        await told.reached(1)
        engine.events.send("kill", SLOW)
        await engine.reached(2)
        seen = inventory.get(SLOW)
        assert seen is not None and seen.stopping
        engine.answer(1)
        await told.reached(2)
        seen = inventory.get(SLOW)
        assert seen is not None and seen.stopping


async def test_the_scope_reads_a_containers_project_as_its_services_key_does() -> None:
    # A container that names a Compose project but no service (nor `autoscaler.service`) is a
    # service of its own, in the standalone project: that is where the scope looks for it too.
    engine = _Engine()
    labels = engine._data["b" * 64]["Config"]["Labels"]
    del labels["com.docker.compose.service"]
    for project, kept in (("blog", []), ("standalone", ["b" * 64])):
        inventory = Inventory(engine, projects=frozenset({project}))  # type: ignore[arg-type]
        await inventory.resync()
        assert [r.id for rs in inventory.services().values() for r in rs] == kept, project


async def _told(engine: _Followed, told: _Told, action: str, count: int) -> None:
    """SLOW's `action` read, its inspect (the `count`-th) answered at once, and told."""
    engine.events.send(action, SLOW)
    await engine.reached(count)
    engine.answer(count - 1)
    await told.reached(count)


async def test_a_container_started_again_after_its_stop_is_not_stopping_though_its_start_was_missed() -> (
    None
):
    # The engine restarted: every container was stopped, and its restart policy started each
    # again before the stream was read again, so the `start` was never read.
    async with _followed() as (engine, told, inventory):
        engine.now = {SLOW: _container(SLOW, "running")}
        await _told(engine, told, "start", 1)
        await _told(engine, told, "kill", 2)
        assert (seen := inventory.get(SLOW)) is not None and seen.stopping
        later = datetime.fromtimestamp(time.time() + 5, UTC).isoformat().replace("+00:00", "Z")
        engine.now[SLOW]["State"]["StartedAt"] = later
        await _told(engine, told, "health_status: healthy", 3)
        assert (seen := inventory.get(SLOW)) is not None and not seen.stopping
