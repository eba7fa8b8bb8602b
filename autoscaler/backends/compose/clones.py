"""What a clone is made of: its name and container number, and its configuration and networks
copied from its template's inspect data (the actuator creates it from these)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autoscaler import labels
from autoscaler.control.replicas import Replica

# Config keys a clone copies from its template; Hostname and anything naming the template's
# own identity are left for the engine to assign.
_CONFIG_KEYS = (
    "User", "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck",
    "ArgsEscaped", "Volumes", "WorkingDir", "Entrypoint", "NetworkDisabled", "OnBuild",
    "StopSignal", "StopTimeout", "Shell", "Domainname",
)  # fmt: skip
# HostConfig keys that are one container's alone.
_HOST_OWN = frozenset({"ContainerIDFile"})


def clone_name(template: Replica, number: int) -> str:
    """`demo-web-1` -> `demo-web-4` (Compose v2); `demo_web_1` -> `demo_web_4` (v1)."""
    return _renumbered(template.name, template.number, number)


def _renumbered(name: str, own: int | None, number: int) -> str:
    for sep in ("-", "_"):
        suffix = f"{sep}{own}"
        if own is not None and name.endswith(suffix):
            return f"{name.removesuffix(suffix)}{sep}{number}"
    return f"{name}-{number}"


def clone_config(
    template: Mapping[str, Any],
    number: int,
    name: str | None = None,
    *,
    every_network: bool = False,
) -> dict[str, Any]:
    """The create body for clone `number` (named `name`) of the container whose inspect data is
    `template`: on its primary network, or (`every_network`, API 1.44 and later) on all of
    them; below 1.44 the others are connected before the clone starts (`clone_networks`)."""
    source = template["Config"]
    config: dict[str, Any] = {k: source[k] for k in _CONFIG_KEYS if source.get(k) is not None}
    # The image ID, not its tag: a tag moved by a rebuild must not make clones differ.
    config["Image"] = template["Image"]
    own = dict(source.get("Labels") or {})
    own[labels.COMPOSE_NUMBER] = str(number)
    own[labels.CLONE_OF] = template["Id"]
    config["Labels"] = own

    host = {k: v for k, v in template["HostConfig"].items() if k not in _HOST_OWN}
    if host.get("NanoCpus"):
        # One CPU limit, as it was given: Podman reports NanoCpus with the quota and period it
        # made of them, and refuses a create that sets both (as Docker would).
        host.pop("CpuQuota", None)
        host.pop("CpuPeriod", None)
    if host.get("Ulimits"):
        # Podman names them RLIMIT_NOFILE where its create (and Docker's) takes `nofile`.
        host["Ulimits"] = [
            {**u, "Name": str(u.get("Name", "")).lower().removeprefix("rlimit_")}
            for u in host["Ulimits"]
        ]
    # Fixed host ports would collide with the template's; let the engine pick free ones.
    bindings = host.get("PortBindings") or {}
    host["PortBindings"] = {
        port: [{"HostIp": b.get("HostIp", ""), "HostPort": ""} for b in spec or []]
        for port, spec in bindings.items()
    }
    config["HostConfig"] = host

    endpoints = clone_networks(template, name or clone_name_of(template, number))
    primary = primary_network(template)
    chosen = endpoints if every_network else {n: e for n, e in endpoints.items() if n == primary}
    if chosen:
        config["NetworkingConfig"] = {"EndpointsConfig": chosen}
    return config


def primary_network(template: Mapping[str, Any]) -> str:
    """The network the template was created on (its network mode), by the name its endpoint
    has: `default` is the engine's word for its default bridge, `bridge`."""
    mode = str((template.get("HostConfig") or {}).get("NetworkMode") or "")
    return "bridge" if mode == "default" else mode


def clone_networks(template: Mapping[str, Any], name: str) -> dict[str, dict[str, Any]]:
    """Every network of the template, each with an endpoint like the template's there: its
    aliases (the service's name, the user's aliases), without what is the template's alone
    (its id, its name, its addresses); and the clone's own name where the template's was among
    them, as Compose v2 adds every container's name.

    Not the default bridge's aliases (it has no DNS, and the engine refuses them there), and
    not an endpoint the engine never joined: a container started on an engine without a
    default bridge (`"bridge": "none"`) still reports one for `bridge`, with no network id;
    connecting a clone to it fails (Docker 20.10 panics in the handler)."""
    networks = (template.get("NetworkSettings") or {}).get("Networks") or {}
    started = bool(labels.timestamp((template.get("State") or {}).get("StartedAt")))
    own = template["Name"].lstrip("/")
    out: dict[str, dict[str, Any]] = {}
    for network, endpoint in networks.items():
        if started and not endpoint.get("NetworkID"):
            continue
        theirs = endpoint.get("Aliases") or []
        aliases = [a for a in theirs if a != own and not template["Id"].startswith(a)]
        if own in theirs:
            aliases.insert(0, name)
        if network == "bridge":
            aliases = []
        out[network] = {"Aliases": aliases or None, "Links": endpoint.get("Links")}
    return out


def clone_name_of(template: Mapping[str, Any], number: int) -> str:
    """`clone_name`, from inspect data."""
    own = str((template["Config"].get("Labels") or {}).get(labels.COMPOSE_NUMBER, ""))
    return _renumbered(template["Name"].lstrip("/"), int(own) if own.isdigit() else None, number)


def free_numbers(taken: set[int | None], count: int) -> list[int]:
    numbers: list[int] = []
    candidate = 1
    while len(numbers) < count:
        if candidate not in taken:
            numbers.append(candidate)
        candidate += 1
    return numbers
