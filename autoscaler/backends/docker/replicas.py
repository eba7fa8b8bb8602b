"""A container's inspect data -> the plain facts of a `Replica`: the one place the core's view
of a container is read out of Docker's shapes (`Config`, `HostConfig`, `State`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from autoscaler import labels
from autoscaler.control.replicas import Replica, Restart
from autoscaler.labels import service_key, timestamp

STOP_EXITS = frozenset({0, 128 + 2, 128 + 9, 128 + 15})
"""Exit codes of a container that was asked to stop: it finished, or ended by SIGINT, SIGKILL or
SIGTERM (`docker stop` sends TERM, then KILL after the grace period)."""


REMOVING = ".removing"
"""The end of a clone's name once an autoscaler instance began to remove it: renamed so before
its stop, the mark tells whichever instance reads it later (one that took the lease over from
an instance frozen mid-removal) that the stop was an autoscaler's, not an owner's to wait out.
No name Compose gives ends so (its names end in the container's number)."""


def removing_name(name: str) -> str:
    """The name a clone is renamed to as its removal begins."""
    return name if name.endswith(REMOVING) else f"{name}{REMOVING}"


def from_inspect(data: Mapping[str, Any]) -> Replica:
    """The replica a container is, from its inspect data."""
    config, host, state = data["Config"], data["HostConfig"], data["State"]
    own = MappingProxyType(dict(config.get("Labels") or {}))
    name = data["Name"].lstrip("/")
    number = own.get(labels.COMPOSE_NUMBER, "")
    restart = host.get("RestartPolicy") or {}
    exit_code = state.get("ExitCode")
    stop_timeout = config.get("StopTimeout")
    return Replica(
        id=data["Id"],
        name=name,
        key=service_key(own, name),
        labels=own,
        status=state.get("Status", "unknown"),
        health=(state.get("Health") or {}).get("Status"),
        pid=int(state.get("Pid") or 0),
        started_at=timestamp(state.get("StartedAt")),
        number=int(number) if number.isdigit() else None,
        clone_of=own.get(labels.CLONE_OF),
        cpu_limit=cpu_limit(host),
        memory_limit=int(host.get("Memory") or 0) or None,
        image=str(data.get("Image") or config.get("Image") or ""),
        created_at=timestamp(data.get("Created")),
        finished_at=timestamp(state.get("FinishedAt")),
        exit_code=int(exit_code) if isinstance(exit_code, int) else None,
        oom_killed=bool(state.get("OOMKilled")),
        restart=Restart(
            policy=str(restart.get("Name") or "no"),
            retries=int(restart.get("MaximumRetryCount") or 0),
            count=int(data.get("RestartCount") or 0),
        ),
        stop_timeout=float(stop_timeout) if stop_timeout is not None else None,
        fingerprint=fingerprint(data),
        unclonable=unclonable(data),
        privileges=privileges(data),
        crashed=crashed_by_its_state(data),
        removing=labels.CLONE_OF in own and name.endswith(REMOVING),
    )


def fingerprint(data: Mapping[str, Any]) -> str:
    """What makes a container's configuration, as a clone copies it: Compose's hash of it, the
    image, the command and the environment."""
    config = data.get("Config") or {}
    facts = [(config.get("Labels") or {}).get(labels.CONFIG_HASH), data.get("Image"),
             config.get("Cmd"), sorted(config.get("Env") or ())]  # fmt: skip
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


def crashed_by_its_state(data: Mapping[str, Any]) -> bool:
    """For a container that ended before anyone watched its events: whether its state reads
    as a crash (killed for memory, an engine error, an exit code no stop gives)."""
    state = data.get("State") or {}
    if state.get("Status") not in ("exited", "dead"):
        return False
    if state.get("OOMKilled") or state.get("Error") or state.get("Status") == "dead":
        return True
    return state.get("ExitCode") not in STOP_EXITS


def unclonable(data: Mapping[str, Any]) -> str | None:
    """Why clones of this container could not work, or None: one that shares a network stack
    (another container's, or the host's with ports to listen on) has clones that would bind the
    very ports it binds, and crash-loop."""
    host = data.get("HostConfig") or {}
    mode = str(host.get("NetworkMode") or "")
    if mode.startswith("container:"):
        other = mode.removeprefix("container:")[:12]
        return (f"it shares the network stack of container {other} (network_mode: service: or "
                "container:), and so would every clone, binding the same ports")  # fmt: skip
    exposed = (data.get("Config") or {}).get("ExposedPorts")
    if mode == "host" and (host.get("PortBindings") or exposed):
        return ("it uses the host's network (network_mode: host) and has ports: every clone "
                "would bind the same ones")  # fmt: skip
    return None


_ENGINE_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock", "/run/podman/podman.sock")


def privileges(data: Mapping[str, Any]) -> tuple[str, ...]:
    """What a container may do beyond an ordinary one, that every clone of it could do too:
    privileged, added capabilities, host devices, the engine's socket or the host's root bound
    into it (`HostConfig.Binds` and `Mounts`), each in words."""
    host = data.get("HostConfig") or {}
    found = []
    if host.get("Privileged"):
        found.append("privileged")
    if caps := [str(c) for c in host.get("CapAdd") or ()]:
        found.append(f"adds capabilities {', '.join(caps)}")
    if devices := [str(d.get("PathOnHost", "")) for d in host.get("Devices") or ()]:
        found.append(f"has host devices {', '.join(devices)}")
    sources = [str(b).split(":", 1)[0] for b in host.get("Binds") or ()]
    sources += [
        str(m.get("Source", "")) for m in host.get("Mounts") or () if m.get("Type") == "bind"
    ]
    for source in sources:
        if source.rstrip("/") == "" or source in _ENGINE_SOCKETS:
            found.append(f"binds {source} of the host")
    return tuple(found)


def cpu_limit(host: Mapping[str, Any]) -> float | None:
    """Cores a container may use: NanoCpus, a CFS quota over its period, or a cpuset."""
    if host.get("NanoCpus"):
        return float(host["NanoCpus"]) / 1e9
    quota, period = host.get("CpuQuota") or 0, host.get("CpuPeriod") or 100_000
    if quota > 0:
        return float(quota) / float(period)
    cpuset = host.get("CpusetCpus") or ""
    if cpuset:
        return float(_count_cpus(cpuset))
    return None


def _count_cpus(cpuset: str) -> int:
    count = 0
    for part in cpuset.split(","):
        low, _, high = part.partition("-")
        count += int(high or low) - int(low) + 1
    return count
