"""A container's inspect data read into the plain facts the core decides on: its limits, how
it ended, its restart policy, its configuration's fingerprint, why it cannot be cloned."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.backends.docker.replicas import (
    REMOVING,
    cpu_limit,
    from_inspect,
    removing_name,
    unclonable,
)
from autoscaler.control.replicas import Restart
from autoscaler.labels import ServiceKey

INSPECT: dict[str, Any] = {
    "Id": "abcdef0123456789" * 4,
    "Name": "/shop-web-2",
    "Image": "sha256:feed",
    "Created": "2026-12-01T10:00:00.123456789Z",
    "RestartCount": 2,
    "Config": {
        "Image": "shop/web:latest",
        "Cmd": ["serve"],
        "Env": ["B=2", "A=1"],
        "StopTimeout": 20,
        "Labels": {
            "com.docker.compose.project": "shop",
            "com.docker.compose.service": "web",
            "com.docker.compose.container-number": "2",
            "com.docker.compose.config-hash": "c0ffee",
            "autoscaler.enable": "true",
            "autoscaler.clone-of": "t1",
        },
    },
    "HostConfig": {
        "NetworkMode": "shop_default",
        "NanoCpus": 500_000_000,
        "Memory": 268_435_456,
        "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
    },
    "State": {
        "Status": "exited",
        "Pid": 0,
        "ExitCode": 137,
        "OOMKilled": True,
        "StartedAt": "2026-12-01T10:00:01.5Z",
        "FinishedAt": "2026-12-01T10:05:00Z",
    },
}


def test_a_container_is_read_into_plain_facts() -> None:
    r = from_inspect(INSPECT)
    assert (r.key, r.name, r.number, r.clone_of) == (
        ServiceKey("shop", "web"),
        "shop-web-2",
        2,
        "t1",
    )
    assert (r.cpu_limit, r.memory_limit, r.image) == (0.5, 268_435_456, "sha256:feed")
    assert (r.status, r.exit_code, r.oom_killed, r.exit) == (
        "exited",
        137,
        True,
        "exit code 137 (out of memory)",
    )
    assert r.restart == Restart("on-failure", retries=3, count=2)
    assert r.stop_timeout == 20
    assert r.finished_at - r.started_at == pytest.approx(298.5)
    assert r.created_at < r.started_at
    # Ended before anyone watched: out of memory reads as a crash.
    assert r.crashed


def test_the_fingerprint_is_the_configuration_a_clone_copies() -> None:
    same = copy.deepcopy(INSPECT)
    same["Config"]["Env"] = ["A=1", "B=2"]  # the order of the environment is no change
    same["State"]["Status"] = "running"  # nor is its state
    assert from_inspect(same).fingerprint == from_inspect(INSPECT).fingerprint
    for change in ({"Env": ["A=2"]}, {"Cmd": ["other"]},
                   {"Labels": {**INSPECT["Config"]["Labels"], "com.docker.compose.config-hash": "new"}}):  # fmt: skip
        other = copy.deepcopy(INSPECT)
        other["Config"] |= change
        assert from_inspect(other).fingerprint != from_inspect(INSPECT).fingerprint, change
    image = copy.deepcopy(INSPECT) | {"Image": "sha256:other"}
    assert from_inspect(image).fingerprint != from_inspect(INSPECT).fingerprint


@pytest.mark.parametrize(
    ("code", "crashed"),
    [(0, False), (130, False), (137, False), (143, False), (1, True), (3, True)],
)
def test_an_exit_no_stop_gives_is_a_crash(code: int, crashed: bool) -> None:
    data = copy.deepcopy(INSPECT)
    data["State"] |= {"ExitCode": code, "OOMKilled": False}
    assert from_inspect(data).crashed is crashed


@pytest.mark.parametrize(
    ("host", "exposed", "words"),
    [
        pytest.param({"NetworkMode": "container:0123456789abcdef"}, None, "shares the network stack of container 0123456789ab", id="service-or-container"),
        pytest.param({"NetworkMode": "host", "PortBindings": {"80/tcp": [{"HostPort": "80"}]}}, None, "host's network", id="host-with-published-ports"),
        pytest.param({"NetworkMode": "host"}, {"8080/tcp": {}}, "host's network", id="host-with-exposed-ports"),
    ],
)  # fmt: skip
def test_a_template_whose_clones_would_bind_its_ports_cannot_be_cloned(
    host: dict[str, Any], exposed: dict[str, Any] | None, words: str
) -> None:
    why = unclonable({"HostConfig": host, "Config": {"ExposedPorts": exposed}})
    assert why is not None and words in why


@pytest.mark.parametrize("mode", ["shop_default", "bridge", "none", "host"])
def test_every_other_network_mode_clones(mode: str) -> None:
    assert unclonable({"HostConfig": {"NetworkMode": mode}, "Config": {}}) is None


@pytest.mark.parametrize(
    ("host", "cores"),
    [
        pytest.param({"NanoCpus": 250_000_000}, 0.25, id="cpus"),
        pytest.param({"CpuQuota": 50_000, "CpuPeriod": 100_000}, 0.5, id="quota"),
        pytest.param({"CpusetCpus": "0-2,5"}, 4.0, id="cpuset"),
        pytest.param({}, None, id="none"),
    ],
)
def test_a_cpu_limit_in_cores(host: dict[str, Any], cores: float | None) -> None:
    assert cpu_limit(host) == cores


_TEXT = st.text(max_size=12)
_NUMBER = st.one_of(st.none(), st.integers(-5, 10**12))


@given(
    status=st.sampled_from(["created", "running", "paused", "restarting", "exited", "dead", ""]),
    exit_code=st.one_of(_NUMBER, _TEXT),
    restarts=_NUMBER,
    nano=_NUMBER,
    number=_TEXT,
    started=st.one_of(st.none(), _TEXT, st.just("2026-12-01T10:00:01.123456789Z")),
)
def test_whatever_the_state_says_the_facts_are_sane(
    status: str, exit_code: object, restarts: int | None, nano: int | None, number: str,
    started: str | None,
) -> None:  # fmt: skip
    data = copy.deepcopy(INSPECT)
    data["State"] |= {"Status": status, "ExitCode": exit_code}
    data["RestartCount"] = restarts
    data["HostConfig"]["NanoCpus"] = nano
    data["Config"]["Labels"]["com.docker.compose.container-number"] = number
    data["State"]["StartedAt"] = started
    try:
        r = from_inspect(data)
    except ValueError:
        return  # a time that is no RFC 3339: the inventory leaves that container out, told
    assert r.exit_code is None or isinstance(r.exit_code, int)
    assert r.number is None or r.number >= 0
    assert r.cpu_limit is None or r.cpu_limit > 0 or (nano is not None and nano <= 0)
    assert r.restart.count == (restarts or 0)


def test_a_clone_renamed_as_its_removal_began_is_read_as_being_removed() -> None:
    renamed = copy.deepcopy(INSPECT) | {"Name": f"/shop-web-2{REMOVING}"}
    assert from_inspect(renamed).removing
    assert not from_inspect(INSPECT).removing
    # The user's own container, whatever its name: never one the autoscaler removes.
    users = copy.deepcopy(renamed)
    del users["Config"]["Labels"]["autoscaler.clone-of"]
    assert not from_inspect(users).removing
    assert removing_name("shop-web-2") == f"shop-web-2{REMOVING}"
    assert removing_name(f"shop-web-2{REMOVING}") == f"shop-web-2{REMOVING}"


def test_a_stop_timeout_of_zero_is_kept_and_none_leaves_the_engine_s_default() -> None:
    # `stop_grace_period: 0s` asks for the kill at once; no stop timeout at all is the
    # engine's 10 s.
    at_once = copy.deepcopy(INSPECT)
    at_once["Config"]["StopTimeout"] = 0
    assert from_inspect(at_once).grace == 0
    unset = copy.deepcopy(INSPECT)
    del unset["Config"]["StopTimeout"]
    assert from_inspect(unset).grace == 10
    assert from_inspect(INSPECT).grace == 20
