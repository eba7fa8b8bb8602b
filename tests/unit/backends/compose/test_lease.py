"""What a lease says of its holder: the projects it manages, where two leases overlap, and
whether it names this very instance (a create of its own whose answer was lost)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import aiodocker
import pytest

from autoscaler.backends.compose.lease import HOLDER, Lease, _managed, _managing, _shared
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
    the engine, which then refuses that create as a conflict."""

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
        assert self.meanwhile is not None, "no create expected"
        self.lease = self._container(self.meanwhile)
        raise aiodocker.DockerError(409, {"message": "Conflict. The name is in use"})

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


async def test_a_lease_is_never_taken_as_lapsed_over_an_outage_of_the_engine() -> None:
    # Another instance's lease, its counter seen; then the engine does not answer for a minute
    # (a restart), twice the ttl. Its holder could not renew it either: from the first answer
    # on, its lapse is judged anew, and the holder's next renewal keeps it.
    engine = Engine("host-7-d4e5f6")
    lease = lease_on(engine)
    await lease._watch()
    lease._seen_since -= 60
    lease._failed(EngineError("Cannot connect to the Docker daemon"))
    await lease._watch()
    assert not lease.leading
    assert engine.calls == ["GET autoscaler-lease"] * 2
