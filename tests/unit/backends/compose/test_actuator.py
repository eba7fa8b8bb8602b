"""What a clone copies from its template, and what it must not; which clones a scale-down
removes: the least useful first, never a container the user made."""

from __future__ import annotations

import copy
import re
from typing import Any

import aiodocker
import pytest

from autoscaler.backends.compose.actuator import Actuator
from autoscaler.backends.compose.clones import clone_config, clone_networks
from autoscaler.backends.compose.marker import STOPPED, marker_name, recorded
from autoscaler.control.replicas import Replica
from autoscaler.errors import TemplateError
from autoscaler.labels import ServiceKey

TEMPLATE: dict[str, Any] = {
    "Id": "abcdef0123456789" * 4,
    "Image": "sha256:feed",
    "Name": "/shop-web-1",
    "Config": {
        "Hostname": "abcdef012345",
        "Image": "shop/web:latest",
        "Cmd": ["serve"],
        "Env": ["A=1"],
        "StopSignal": "SIGQUIT",
        "StopTimeout": 20,
        "Healthcheck": {"Test": ["CMD", "true"]},
        "Labels": {
            "com.docker.compose.project": "shop",
            "com.docker.compose.service": "web",
            "com.docker.compose.container-number": "1",
            "com.docker.compose.config-hash": "c0ffee",
            "com.docker.compose.image": "sha256:feed",
            "autoscaler.enable": "true",
        },
    },
    "HostConfig": {
        "NetworkMode": "shop_default",
        "NanoCpus": 500_000_000,
        "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]},
        "RestartPolicy": {"Name": "unless-stopped"},
    },
    "NetworkSettings": {
        "Networks": {
            "shop_default": {
                "Aliases": ["web", "abcdef012345"],
                "IPAddress": "172.18.0.2",
                "MacAddress": "02:42:ac:12:00:02",
            }
        }
    },
}


def test_a_clone_keeps_the_templates_config_and_limits() -> None:
    config = clone_config(TEMPLATE, 4)
    assert config["Image"] == "sha256:feed"
    assert (config["Cmd"], config["Env"]) == (["serve"], ["A=1"])
    assert (config["StopSignal"], config["StopTimeout"]) == ("SIGQUIT", 20)
    assert config["Healthcheck"] == {"Test": ["CMD", "true"]}
    assert config["HostConfig"]["NanoCpus"] == 500_000_000
    assert config["HostConfig"]["RestartPolicy"] == {"Name": "unless-stopped"}


def test_a_clone_is_numbered_and_marked() -> None:
    labels = clone_config(TEMPLATE, 4)["Labels"]
    assert labels["com.docker.compose.container-number"] == "4"
    assert labels["autoscaler.clone-of"] == TEMPLATE["Id"]
    assert labels["com.docker.compose.service"] == "web"
    # The template's own labels are untouched.
    assert "autoscaler.clone-of" not in TEMPLATE["Config"]["Labels"]


def test_a_clone_does_not_take_what_is_unique_to_the_template() -> None:
    config = clone_config(TEMPLATE, 4)
    assert "Hostname" not in config
    endpoint = config["NetworkingConfig"]["EndpointsConfig"]["shop_default"]
    assert endpoint["Aliases"] == ["web"]
    assert "IPAddress" not in endpoint and "MacAddress" not in endpoint
    assert config["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]
    }


def test_a_clone_carries_what_makes_compose_see_it_as_an_up_to_date_container_of_the_service() -> (
    None
):
    labels = clone_config(TEMPLATE, 4)["Labels"]
    # v2 lists only containers with a config hash, and recreates those whose hash or image
    # digest differ from the file's; v1.29 reads the same project, service and number labels.
    assert labels["com.docker.compose.config-hash"] == "c0ffee"
    assert labels["com.docker.compose.image"] == "sha256:feed"
    assert labels["com.docker.compose.project"] == "shop"
    assert labels["com.docker.compose.service"] == "web"
    assert labels["com.docker.compose.container-number"] == "4"


def on_networks(*networks: tuple[str, list[str]], name: str = "/shop-web-1") -> dict[str, Any]:
    """The template as it is on several networks, each endpoint with these aliases."""
    template = copy.deepcopy(TEMPLATE) | {"Name": name}
    template["HostConfig"]["NetworkMode"] = networks[0][0]
    template["NetworkSettings"] = {
        "Networks": {
            network: {"Aliases": aliases, "NetworkID": f"id-{network}", "IPAddress": "172.18.0.2", "IPAMConfig": {"IPv4Address": "172.18.0.2"}}
            for network, aliases in networks
        }
    }  # fmt: skip
    return template


def test_a_clone_joins_every_network_of_its_template_as_a_member_of_the_service() -> None:
    # docker-compose 1.29: the service's name (and the user's aliases) and the engine's short id.
    template = on_networks(("shop_back", ["web", "abcdef012345"]),
                           ("shop_front", ["web", "api", "abcdef012345"]), name="/shop_web_1")  # fmt: skip
    assert clone_networks(template, "shop_web_4") == {
        "shop_back": {"Aliases": ["web"], "Links": None},
        "shop_front": {"Aliases": ["web", "api"], "Links": None},
    }


def test_under_compose_v2_a_clone_answers_to_its_own_name_never_to_the_templates() -> None:
    # Compose v2 (pkg/compose getAliases): the container's name, the service's, the user's.
    template = on_networks(("shop_back", ["shop-web-1", "web", "abcdef012345"]),
                           ("shop_front", ["shop-web-1", "web"]))  # fmt: skip
    endpoints = clone_networks(template, "shop-web-4")
    assert endpoints["shop_back"]["Aliases"] == ["shop-web-4", "web"]
    assert endpoints["shop_front"]["Aliases"] == ["shop-web-4", "web"]
    assert all("IPAMConfig" not in e and "IPAddress" not in e for e in endpoints.values())


def test_below_api_1_44_a_clone_is_created_on_its_primary_network_and_at_1_44_on_all() -> None:
    template = on_networks(("shop_back", ["web"]), ("shop_front", ["web"]))
    below = clone_config(template, 4, "shop-web-4")["NetworkingConfig"]["EndpointsConfig"]
    assert set(below) == {"shop_back"}
    every = clone_config(template, 4, "shop-web-4", every_network=True)
    # Each endpoint whole, as the engine takes it at create: the service's aliases there, and
    # nothing of the template's own (its id, its addresses).
    assert every["NetworkingConfig"]["EndpointsConfig"] == {
        "shop_back": {"Aliases": ["web"], "Links": None},
        "shop_front": {"Aliases": ["web"], "Links": None},
    }
    assert below == {"shop_back": {"Aliases": ["web"], "Links": None}}


@pytest.mark.parametrize("mode", ["default", "bridge"])
def test_on_the_default_bridge_a_clone_is_created_there_without_aliases(mode: str) -> None:
    # `docker run` without --network: the mode is `default` (Docker 20.10) or `bridge` (26.1),
    # the endpoint `bridge`. Created there, never connected to it again below API 1.44.
    template = on_networks(("bridge", []), name="/web-1")
    template["HostConfig"]["NetworkMode"] = mode
    below = clone_config(template, 2, "web-2")["NetworkingConfig"]["EndpointsConfig"]
    assert below == {"bridge": {"Aliases": None, "Links": None}}


def test_an_endpoint_the_engine_never_joined_is_left_out() -> None:
    # An engine without the default bridge reports one for a started `docker run` container,
    # with no network id: there is nothing to join.
    template = on_networks(("bridge", []), ("shop_back", ["web"]), name="/web-1")
    template["HostConfig"]["NetworkMode"] = "bridge"
    template["State"] = {"StartedAt": "2026-12-01T10:00:00.123456789Z"}
    template["NetworkSettings"]["Networks"]["bridge"]["NetworkID"] = ""
    assert set(clone_networks(template, "web-2")) == {"shop_back"}
    assert "NetworkingConfig" not in clone_config(template, 2, "web-2")
    # Before its first start no endpoint has an id yet: each is still the template's.
    del template["State"]
    assert set(clone_networks(template, "web-2")) == {"bridge", "shop_back"}


def test_a_clone_takes_its_limits_in_the_words_a_create_accepts() -> None:
    # Podman reports NanoCpus beside the quota it made of them, and its own names for ulimits;
    # a create with both CPU limits, or those names, is refused.
    template = copy.deepcopy(TEMPLATE)
    template["HostConfig"] |= {"CpuQuota": 50_000, "CpuPeriod": 100_000,
                               "Ulimits": [{"Name": "RLIMIT_NOFILE", "Soft": 1024, "Hard": 4096}]}  # fmt: skip
    host = clone_config(template, 4)["HostConfig"]
    assert host["NanoCpus"] == 500_000_000
    assert "CpuQuota" not in host and "CpuPeriod" not in host
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 4096}]
    # A quota given as one (Docker's --cpu-quota) stays.
    template["HostConfig"]["NanoCpus"] = 0
    assert clone_config(template, 4)["HostConfig"]["CpuQuota"] == 50_000


def test_what_is_one_containers_alone_is_not_copied() -> None:
    template = copy.deepcopy(TEMPLATE)
    template["HostConfig"]["ContainerIDFile"] = "/run/web.cid"
    assert "ContainerIDFile" not in clone_config(template, 4)["HostConfig"]


def test_a_sleep_marker_is_named_after_its_service_and_apart_from_every_other() -> None:
    web = marker_name(ServiceKey("shop", "web"))
    assert web.startswith("autoscaler-asleep-shop-web-")
    assert web != marker_name(ServiceKey("shop", "web", scope="swarm"))
    # Names that differ only where a container name cannot follow still differ.
    assert marker_name(ServiceKey("standalone", "a b")) != marker_name(
        ServiceKey("standalone", "a:b")
    )
    assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", marker_name(ServiceKey("x", "ünï cödé")))


@pytest.mark.parametrize(
    ("labels", "ids"),
    [
        ({STOPPED: '["b", "a"]'}, frozenset({"a", "b"})),
        ({STOPPED: "[]"}, frozenset()),
        ({}, None),
        ({STOPPED: "not json"}, None),
        ({STOPPED: '{"a": 1}'}, None),
        ({STOPPED: "[1, 2]"}, None),
    ],
    ids=["two", "none stopped", "no label", "not json", "no list", "not ids"],
)
def test_a_sleep_marker_names_the_containers_its_sleep_stopped_or_none(
    labels: dict[str, str], ids: frozenset[str] | None
) -> None:
    assert recorded(labels) == ids


def _template(status: str = "running", **facts: Any) -> Replica:
    return Replica(
        id="t1", name="shop-web-1", key=ServiceKey("shop", "web"), labels={}, status=status,
        health=None, pid=1, started_at=0.0, number=1, clone_of=None, cpu_limit=None,
        memory_limit=None, **facts,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("now", "leaving"),
    [
        pytest.param(_template(), None, id="serving"),
        pytest.param(_template("exited", crashed=True), None, id="crashed-its-clones-keep-the-count"),
        pytest.param(None, "was removed", id="removed"),
        pytest.param(_template(stopping_since=1.0), "is being stopped or removed", id="being-stopped"),
        pytest.param(_template("exited", crashed=False), "is being stopped or removed", id="stopped-by-its-owner"),
    ],
)  # fmt: skip
def test_no_clone_is_made_of_a_template_its_owner_is_removing(
    now: Replica | None, leaving: str | None
) -> None:
    # `docker compose rm -s` in the middle of a scale-up: a clone made after it listed the
    # service's containers would outlive the template, and the `docker compose up` after it
    # would keep that clone as the service's container, with no template of its own.
    actuator = Actuator(None, concurrency=1, current=lambda _: now)  # type: ignore[arg-type]
    if leaving is None:
        actuator._staying(ServiceKey("shop", "web"), _template(), "shop-web-2")
        return
    with pytest.raises(TemplateError, match=f"not making clone shop-web-2: .* {leaving}"):
        actuator._staying(ServiceKey("shop", "web"), _template(), "shop-web-2")


class _Clone:
    """A clone on the engine, telling `calls` of every request made of it. `gone`: removed by
    another hand already (each request about it is answered 404). `removing`: another hand's
    removal of it is under way (its removal is answered 409)."""

    def __init__(self, calls: list[str], *, gone: bool = False, removing: bool = False) -> None:
        self.calls = calls
        self.gone = gone
        self.removing = removing

    def _ask(self, call: str) -> None:
        self.calls.append(call)
        if self.gone:
            raise aiodocker.DockerError(404, {"message": "No such container"})
        if self.removing and call == "delete":
            message = "removal of container c2 is already in progress"
            raise aiodocker.DockerError(409, {"message": message})

    async def rename(self, name: str) -> None:
        self._ask(f"rename {name}")

    async def stop(self, *, t: int, **_: Any) -> None:
        self._ask(f"stop t={t}")

    async def wait(self, *, condition: str, **_: Any) -> None:
        self._ask(f"wait {condition}")

    async def delete(self, **_: Any) -> None:
        self._ask("delete")


class _Engine:
    def __init__(self, clone: _Clone) -> None:
        self.clone = clone
        self.containers = self

    def container(self, container_id: str) -> _Clone:
        assert container_id == "c2", "only the clone is asked for"
        return self.clone


def _clone(name: str = "shop-web-2", **facts: Any) -> Replica:
    return Replica(
        id="c2", name=name, key=ServiceKey("shop", "web"), labels={}, status="running",
        health=None, pid=2, started_at=0.0, number=2, clone_of="t1", cpu_limit=None,
        memory_limit=None, stop_timeout=3, **facts,
    )  # fmt: skip


async def test_a_clone_is_marked_as_being_removed_before_it_is_stopped_then_removed() -> None:
    # An instance that takes the lease over while this one is frozen between the stop and the
    # removal reads the mark, and finishes the removal rather than wait the stop out as an
    # owner's.
    calls: list[str] = []
    actuator = Actuator(_Engine(_Clone(calls)), concurrency=1)  # type: ignore[arg-type]
    result = await actuator.scale_to(ServiceKey("shop", "web"), [_template(), _clone()], 1)
    assert (result.removed, result.errors) == (["c2"], [])
    assert calls == ["rename shop-web-2.removing", "stop t=3", "wait not-running", "delete"]


async def test_a_clone_marked_already_is_not_renamed_again() -> None:
    calls: list[str] = []
    actuator = Actuator(_Engine(_Clone(calls)), concurrency=1)  # type: ignore[arg-type]
    marked = _clone(name="shop-web-2.removing", removing=True)
    result = await actuator.scale_to(ServiceKey("shop", "web"), [_template(), marked], 1)
    assert (result.removed, result.errors) == (["c2"], [])
    assert calls == ["stop t=3", "wait not-running", "delete"]


async def test_a_clone_gone_before_its_mark_is_gone_not_removed_by_the_action() -> None:
    # Another hand removed it first (`docker compose up` removes what is beyond its scale):
    # the 404 of the rename is no error, and nothing more is asked of it. The count is the
    # real one, but the action changed nothing: no scale event, no cooldown.
    calls: list[str] = []
    actuator = Actuator(_Engine(_Clone(calls, gone=True)), concurrency=1)  # type: ignore[arg-type]
    result = await actuator.scale_to(ServiceKey("shop", "web"), [_template(), _clone()], 1)
    assert (result.removed, result.gone, result.errors) == ([], ["c2"], [])
    assert (result.after, result.changed) == (1, False)
    assert calls == ["rename shop-web-2.removing"]


async def test_a_clone_another_hand_is_removing_is_gone_not_removed_by_the_action() -> None:
    calls: list[str] = []
    engine = _Engine(_Clone(calls, removing=True))
    actuator = Actuator(engine, concurrency=1)  # type: ignore[arg-type]
    result = await actuator.scale_to(ServiceKey("shop", "web"), [_template(), _clone()], 1)
    assert (result.removed, result.gone, result.errors) == ([], ["c2"], [])
    assert (result.after, result.changed) == (1, False)
    assert calls[-1] == "delete"
