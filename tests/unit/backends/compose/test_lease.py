"""What a lease says of its holder: the projects it manages, where two leases overlap, and
whether it names this very instance (a create of its own whose answer was lost)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiodocker
import pytest

from autoscaler.backends.compose.lease import HOLDER, Lease, _managed, _managing, _shared
from autoscaler.backends.docker.client import engine_errors
from autoscaler.errors import EngineError


def test_a_lease_names_the_projects_its_holder_manages() -> None:
    assert _managing(frozenset()) == "*"
    assert _managing(frozenset({"shop", "blog"})) == '["blog", "shop"]'
    assert _managed("*") is None
    assert _managed('["blog", "shop"]') == {"blog", "shop"}
    assert _managed("not json") is None


def test_overlapping_leases_name_the_projects_both_act_on() -> None:
    assert _shared({"shop"}, {"blog"}) == ""
    assert _shared({"shop", "blog"}, {"shop"}) == "shop"
    assert _shared(None, {"shop"}) == "shop"
    assert _shared({"shop"}, None) == "shop"
    assert _shared(None, None) == "every project"


class Engine:
    """The engine as a lease meets it: one lease container, in the name `holder` (None: none
    yet). `meanwhile`: the name a lease is made in just before this instance's create reaches
    the engine, which then refuses that create as a conflict; without one, a create goes
    through."""

    def __init__(self, holder: str | None, *, meanwhile: str | None = None) -> None:
        self.lease = self._container(holder) if holder is not None else None
        self.meanwhile = meanwhile
        self.calls: list[str] = []
        self.containers = self

    @staticmethod
    def _container(holder: str) -> dict[str, Any]:
        labels = {HOLDER: holder, "autoscaler.lease.boot": "another-boot"}
        return {"Id": "c0ffee", "Config": {"Labels": labels},
                "HostConfig": {"RestartPolicy": {"MaximumRetryCount": 7}}}  # fmt: skip

    async def get(self, name: str) -> SimpleNamespace:
        self.calls.append(f"GET {name}")
        if self.lease is None:
            raise aiodocker.DockerError(404, {"message": "No such container"})
        return SimpleNamespace(_container=self.lease)

    async def list(self, **_: Any) -> list[SimpleNamespace]:
        return [SimpleNamespace(_container={"ImageID": "sha256:ab"})]

    async def create(self, config: dict[str, Any], name: str) -> SimpleNamespace:
        self.calls.append(f"CREATE {name}")
        if self.meanwhile is None:
            self.lease = self._container(config["Labels"][HOLDER])
            return SimpleNamespace(id=self.lease["Id"])
        self.lease = self._container(self.meanwhile)
        raise aiodocker.DockerError(409, {"message": "Conflict. The name is in use"})

    def container(self, container_id: str) -> SimpleNamespace:
        async def delete(**_: Any) -> None:
            self.calls.append(f"DELETE {container_id}")
            self.lease = None

        return SimpleNamespace(delete=delete)

    async def _query_json(self, path: str, method: str, data: dict[str, Any]) -> None:
        self.calls.append(f"{method} {path} {data['RestartPolicy']['MaximumRetryCount']}")


ME = "host-7-a1b2c3"


def lease_on(engine: Engine) -> Lease:
    return Lease(engine, "autoscaler-lease", 30, holder=ME)  # type: ignore[arg-type]


def test_two_leases_made_without_a_name_never_pass_for_each_other() -> None:
    first, second = (Lease(None, "autoscaler-lease", 30) for _ in range(2))  # type: ignore[arg-type]
    assert first.holder != second.holder


@pytest.mark.parametrize(
    ("engine", "leading", "calls"),
    [
        pytest.param(Engine(ME), True, ["GET autoscaler-lease", "POST containers/c0ffee/update 8"], id="found-in-its-name"),
        pytest.param(Engine("host-7-d4e5f6"), False, ["GET autoscaler-lease"], id="found-in-another-instances-name"),
        pytest.param(Engine(None, meanwhile=ME), True, ["GET autoscaler-lease", "CREATE autoscaler-lease", "GET autoscaler-lease", "POST containers/c0ffee/update 8"], id="its-create-refused-by-its-own"),
        pytest.param(Engine(None, meanwhile="elsewhere-1-ffffff"), False, ["GET autoscaler-lease", "CREATE autoscaler-lease", "GET autoscaler-lease"], id="its-create-refused-by-another"),
    ],
)  # fmt: skip
async def test_a_lease_in_this_instances_name_is_held_and_renewed_at_once(
    engine: Engine, leading: bool, calls: list[str]
) -> None:
    lease = lease_on(engine)
    await lease._watch()
    assert lease.leading is leading
    assert engine.calls == calls


def _failure(cause: Exception) -> EngineError:
    """The error a watch of the lease meets when the engine fails it so."""
    try:
        with engine_errors("cannot watch the lease: GET /containers/autoscaler-lease/json"):
            raise cause
    except EngineError as exc:
        return exc
    raise AssertionError("no error")


@pytest.mark.parametrize(
    ("cause", "taken"),
    [
        pytest.param(aiodocker.DockerError(900, {"message": "Cannot connect to Docker Engine"}), False, id="no-socket-aiodocker"),
        pytest.param(ConnectionRefusedError(111, "Connection refused"), False, id="refused"),
        pytest.param(aiodocker.DockerError(500, {"message": "internal error"}), True, id="it-answered-an-error"),
        pytest.param(aiodocker.DockerError(409, {"message": "Conflict"}), True, id="it-answered-a-conflict"),
    ],
)  # fmt: skip
async def test_a_lease_lapses_over_an_error_of_the_engine_but_never_over_its_outage(
    cause: Exception, taken: bool, tmp_path: Path
) -> None:
    # Another instance's lease, its counter seen; a minute later (twice the ttl) a watch fails.
    # An engine that did not answer (a restart) did not let its holder renew it either: from
    # the first answer on, its lapse is judged anew, and the holder's next renewal keeps it. One
    # that answered with an error still had the lease as it was: the counter stood still for
    # the whole minute, and it is taken over.
    engine = Engine("host-7-d4e5f6")
    lease = Lease(engine, "autoscaler-lease", 30, holder=ME, proc=str(tmp_path))  # type: ignore[arg-type]
    await lease._watch()
    lease._seen_since -= 60
    lease._failed(_failure(cause))
    await lease._watch()
    assert lease.leading is taken
    assert ("DELETE c0ffee" in engine.calls) is taken


class Dropping(Engine):
    """An engine that holds another instance's lease, made in a container of its own, and drops
    the connection when that container is asked after (it stops as the standby looks)."""

    def __init__(self) -> None:
        super().__init__("host-7-d4e5f6")
        assert self.lease is not None
        self.lease["Config"]["Labels"]["autoscaler.lease.container"] = "deadbeef"
        self.asked_again = asyncio.Event()

    async def get(self, name: str) -> SimpleNamespace:
        if name == "deadbeef":
            self.calls.append(f"GET {name}")
            if self.calls.count(f"GET {name}") == 2:
                self.asked_again.set()
            raise ConnectionResetError(104, "Connection reset by peer")
        return await super().get(name)

    async def list(self, **_: Any) -> list[SimpleNamespace]:
        return []  # no other lease


async def test_a_connection_dropped_while_the_holder_is_asked_after_is_the_leases_problem(
    tmp_path: Path,
) -> None:
    # Not an error escaping the watch (it would end the process's TaskGroup): the lease is not
    # taken, says why, and is watched again.
    engine = Dropping()
    lease = Lease(engine, "autoscaler-lease", 0.06, holder=ME, proc=str(tmp_path))  # type: ignore[arg-type]
    watching = asyncio.create_task(lease.run())
    async with asyncio.timeout(5):
        await asyncio.wait([watching, asyncio.ensure_future(engine.asked_again.wait())],
                           return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
    assert not watching.done()
    watching.cancel()
    with pytest.raises(asyncio.CancelledError):
        await watching
    assert not lease.leading
    assert lease.problem is not None and "Connection reset by peer" in lease.problem
