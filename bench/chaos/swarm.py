"""The chaos run's Swarm fault (issue 35): on scripts/swarm.sh's three-node swarm, one node's link
cut while a scale-up is under way, until Swarm noticed (its heartbeat) and replaced the node's
tasks, then restored. As users run it: a controller on each manager (one acts: the cluster lease,
ttl 6 s) and an agent on every node, in its node's network namespace, so that its samples cross
the node's link (a relay on the bridge carries them to the broker): a cut node's agent goes
silent. The service is scaled on a queue depth published over MQTT (1..8, 10 a task).

Checked from the managers' own view, polled (no event says a task runs), never the autoscaler's:

    over max       the service's Spec replicas, what the autoscaler asked for, never above max
    stale action   every scale event's instance held the cluster lease (the Swarm config's
                   labels) when its action began, within a second (the lease is polled)
    events         every event id told once; every change of Spec replicas told by an event,
                   and no event telling a change the Spec did not see (a count it had already)

What Swarm does while a node is unreachable is Swarm's, not ours, and is told apart (`swarm's
own`): when it marks the node down, the tasks it replaces elsewhere, the containers the cut
node's engine keeps running meanwhile. The recovery: seconds until the managers count the
demand's tasks running on ready nodes, from the cut where Swarm's replacements run them while
cut, else from the restore (`measured` says which).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import math
import os
import re
import socket
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiodocker
import aiomqtt

from bench.chaos.stack import stop
from bench.chaos.watch import Changing
from tests.integration.relay import relay

if TYPE_CHECKING:
    from bench.chaos import Result

IMAGE = os.environ.get("AUTOSCALER_TEST_IMAGE", "autoscaler-test/busybox:latest")
PREFIX = os.environ.get("AUTOSCALER_SWARM_PREFIX", "casw")  # scripts/swarm.sh's namespaces
RELAY = "198.18.0.1"  # the bridge's own address, in scripts/swarm.sh's range, while a run lasts
TTL, INTERVAL, MAXIMUM, TARGET, POLL = 6.0, 1.0, 8, 10, 0.25
NOTICE = RECOVERY = 60.0  # seconds Swarm is given to mark the node down; a recovery at most
SWARMS_OWN, MEASURED = "swarm's own", "measured"
"""Keys of the second value beside the invariants': facts, never violations."""
LABELS = {"enable": "true", "min": "1", "max": str(MAXIMUM), "metric.source": "mqtt",
          "metric.target": str(TARGET), "scale-down.stabilization": "5s",
          # Two tasks every 5 s: the scale-up lasts long enough for the cut to land in it.
          "scale-up.max-replicas": "2", "scale-up.period": "5s"}  # fmt: skip


def _number(node: str) -> str:
    """A node's number, from its socket (`.../node<N>/run/docker.sock`)."""
    if (found := re.search(r"node(\d+)/run/docker\.sock$", node)) is None:
        raise ValueError(f"{node} is no node of scripts/swarm.sh")
    return found.group(1)


async def _ip(*args: str, check: bool = True) -> None:
    """`ip` in the bridge's namespace."""
    process = await asyncio.create_subprocess_exec("ip", "-n", f"{PREFIX}-lan", *args,
                                                   stderr=asyncio.subprocess.PIPE)  # fmt: skip
    _, err = await process.communicate()
    if check and process.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {err.decode().strip()}")


def _listening_in(namespace: str, host: str) -> socket.socket:
    """A listening socket in another network namespace: the thread enters it for the socket's
    creation only (a socket stays in the namespace it was made in)."""
    libc, newnet = ctypes.CDLL(None, use_errno=True), 0x40000000  # CLONE_NEWNET
    own, there = os.open("/proc/self/ns/net", os.O_RDONLY), os.open(namespace, os.O_RDONLY)
    try:
        if libc.setns(there, newnet):
            raise OSError(ctypes.get_errno(), f"entering {namespace}")
        try:
            listener = socket.create_server((host, 0))
            listener.setblocking(False)
        finally:
            if libc.setns(own, newnet):
                raise OSError(ctypes.get_errno(), "back to this process's namespace")
    finally:
        os.close(own)
        os.close(there)
    return listener


@contextlib.asynccontextmanager
async def _relay(broker: tuple[str, int]) -> AsyncIterator[int]:
    """The broker on the swarm's bridge (its port yielded): the nodes reach it over their link."""
    await _ip("addr", "add", f"{RELAY}/24", "dev", "br0")
    try:
        listening = _listening_in(f"/run/netns/{PREFIX}-lan", RELAY)
        async with relay(f"{broker[0]}:{broker[1]}", sock=listening):
            yield listening.getsockname()[1]
    finally:
        await _ip("addr", "del", f"{RELAY}/24", "dev", "br0", check=False)


@dataclass
class _View(Changing):
    """What the managers and the engines said, polled, and the scale events told."""

    cut_node: str = ""
    expected: int = 3
    spec: int = 0
    specs: list[tuple[float, int, int]] = field(default_factory=list)  # (wall, from, to)
    lease: list[tuple[float, str | None]] = field(default_factory=list)  # (wall, holder)
    timeline: list[tuple[float, bool]] = field(default_factory=list)  # (monotonic, recovered)
    events: list[dict[str, Any]] = field(default_factory=list)
    at: dict[str, float] = field(default_factory=dict)
    """When (monotonic) the node was cut, marked down, restored, ready again, and the engines
    back to the Spec's count."""
    on_cut: set[str] | None = None  # the cut node's tasks as it was cut
    replaced: set[str] = field(default_factory=set)
    desired_most, engines_most, basis = 0, 0, ""

    def recovered_since(self, since: float) -> float | None:
        return next((t for t, ok in self.timeline if t >= since and ok), None)

    def managers_said(self, spec: int, tasks: list[Any], nodes: dict[str, str]) -> None:
        if spec != self.spec:
            self.specs.append((time.time(), self.spec, spec))
            self.spec = spec
        now, cutting = time.monotonic(), "cut" in self.at and "restored" not in self.at
        if (node := nodes.get(self.cut_node)) == "down" and cutting:
            self.at.setdefault("down", now)
        elif node == "ready" and "restored" in self.at:
            self.at.setdefault("ready", now)
        self.desired_most = max(self.desired_most, len(tasks))
        if cutting and self.on_cut is None:
            self.on_cut = {t["ID"] for t in tasks if t["NodeID"] == self.cut_node}
        if cutting:  # the cut node's tasks Swarm shut down, to replace them elsewhere
            self.replaced |= (self.on_cut or set()) - {t["ID"] for t in tasks}
        running = [t for t in tasks if t["Status"]["State"] == "running"
                   and nodes.get(t["NodeID"]) == "ready"]  # fmt: skip
        # Until Swarm noticed the cut, its word on the cut node is stale: no recovery then.
        blind = cutting and "down" not in self.at
        self.timeline.append((now, len(running) == self.expected == spec and not blind))
        self.notify()


async def _managers(manager: aiodocker.Docker, name: str, lease: str, view: _View) -> None:
    """The service, its tasks, the nodes and the lease, from a manager the cut leaves up."""
    wanted = json.dumps({"service": [name], "desired-state": ["running"]})
    while True:
        with contextlib.suppress(aiodocker.DockerError, OSError, TimeoutError):
            service = await manager._query_json(f"services/{name}")
            tasks = await manager._query_json("tasks", params={"filters": wanted})
            nodes = {n["ID"]: n["Status"]["State"] for n in await manager._query_json("nodes")}
            holder = None
            with contextlib.suppress(aiodocker.DockerError):  # none: nobody holds it
                config = await manager._query_json(f"configs/{lease}")
                holder = (config["Spec"].get("Labels") or {}).get("autoscaler.lease.holder")
            if not view.lease or view.lease[-1][1] != holder:
                view.lease.append((time.time(), holder))
            view.managers_said(int(service["Spec"]["Mode"]["Replicated"]["Replicas"]), tasks,
                               nodes)  # fmt: skip
        await asyncio.sleep(POLL)


async def _engines(engines: list[aiodocker.Docker], name: str, view: _View) -> None:
    """The service's containers each engine runs, by its own word (the cut node's included)."""
    label = json.dumps({"label": [f"com.docker.swarm.service.name={name}"]})
    while True:
        with contextlib.suppress(aiodocker.DockerError, OSError, TimeoutError):
            running = sum([len(await e.containers.list(filters=label)) for e in engines])
            view.engines_most = max(view.engines_most, running)
            if running > view.spec:
                view.at.pop("back", None)
            elif "restored" in view.at:
                view.at.setdefault("back", time.monotonic())
        await asyncio.sleep(1.0)


async def _broker(broker: tuple[str, int], prefix: str, demand: dict[str, int],
                  view: _View) -> None:  # fmt: skip
    """The demand published (retained, every half second) and the scale events followed."""
    while True:
        try:
            async with aiomqtt.Client(*broker) as client, asyncio.TaskGroup() as tg:
                await client.subscribe(f"{prefix}/swarm/+/+/events", qos=1)
                tg.create_task(_publish(client, f"{prefix}-demand/worker", demand))
                async for message in client.messages:
                    with contextlib.suppress(ValueError):
                        view.events.append(json.loads(bytes(message.payload or b"")))
        except* aiomqtt.MqttError:
            await asyncio.sleep(0.5)  # connected again


async def _publish(client: aiomqtt.Client, topic: str, demand: dict[str, int]) -> None:
    while True:
        await client.publish(topic, str(demand["worker"]), qos=1, retain=True)
        await asyncio.sleep(0.5)


def _judge(view: _View) -> dict[str, list[str]]:
    """The invariants' violations, and Swarm's own doing told apart."""
    seen: dict[str, list[str]] = defaultdict(list)
    scale = [e for e in view.events if e.get("Action") in ("scale_up", "scale_down")]
    if (most := max((to for _, _, to in view.specs), default=0)) > MAXIMUM:
        seen["over max"].append(f"Spec replicas reached {most}, max {MAXIMUM}")
    ids = [str(e.get("id")) for e in scale]
    seen["events"] += [f"event {i} told {ids.count(i)} times" for i in set(ids) if ids.count(i) > 1]
    for _, before, after in view.specs[1:]:  # the first is the service's creation
        if not any(e.get("to") == after for e in scale):
            seen["events"].append(f"Spec replicas {before} -> {after} told by no event")
    for e in scale:
        what = f"{e['Action']} {e.get('from')} -> {e.get('to')}"
        began = e.get("timeNano", 0) / 1e9 - float(e.get("seconds") or 0)
        if _at(view.specs, began, 2) == e.get("to"):
            seen["events"].append(f"{what} told, the Spec's count already (no change)")
        by, holders = e.get("Actor", {}).get("Attributes", {}).get("instance"), {
            _at(view.lease, began + d, 1) for d in (-1.0, 0.0, 1.0)}  # fmt: skip
        if by not in holders:
            seen["stale action"].append(f"{what} by {by}, the lease's holder {holders}")
    at, most = view.at, max((t for _, _, t in view.specs), default=0)
    seen[MEASURED].append(f"cut for {at.get('restored', 0) - at.get('cut', 0):.1f} s; lease "
                          f"holders seen: {len({h for _, h in view.lease if h})}")  # fmt: skip
    seen[SWARMS_OWN] += [
        f"node marked down {_after(at, 'down', 'cut')} the cut, ready again "
        f"{_after(at, 'ready', 'restored')} the restore",
        f"{len(view.replaced)} of the node's {len(view.on_cut or ())} tasks replaced while cut; "
        f"tasks desired running at most {view.desired_most}, Spec at most {most}",
        f"containers its engines ran, by their own word: at most {view.engines_most}; back to the "
        f"Spec's count {_after(at, 'back', 'restored')} the restore",
    ]
    return seen


def _after(at: dict[str, float], moment: str, since: str) -> str:
    known = moment in at and since in at
    return f"{at[moment] - at[since]:.1f} s after" if known else "never after"


def _at(history: list[Any], wall: float, column: int) -> Any:
    """What a polled history said at `wall`: its last entry seen by then."""
    return ([entry[column] for entry in history if entry[0] <= wall] or [None])[-1]


async def swarm_link_cut(
    nodes: list[str], broker: tuple[str, int], cut: int = -1
) -> tuple[Result, dict[str, list[str]]]:
    """The fault on the swarm of `nodes` (its engines' sockets, the two managers first); `cut`:
    the index of the node whose link is cut, the worker by default."""
    from bench.chaos import Result  # the package imports this module to run it

    nodes = [n if "://" in n else f"unix://{n}" for n in nodes]
    run = uuid.uuid4().hex[:8]
    stack, prefix = f"chaos{run}", f"chaos-{run}"
    name, lease, link = f"{stack}_worker", f"chaos-lease-{stack}", f"{PREFIX}v{_number(nodes[cut])}"
    folder = Path(tempfile.mkdtemp(prefix="chaos-swarm-"))
    # Where the processes' logs are is the run's, not the results': on stderr, not in the table.
    print(f"chaos, swarm: the autoscaler's logs in {folder}", file=sys.stderr)
    engines = [aiodocker.Docker(url=n) for n in nodes]
    processes: list[asyncio.subprocess.Process] = []
    demand, view = {"worker": 30}, _View()
    result = Result(f"swarm: node {_number(nodes[cut])}'s link cut")

    async def spawn(what: list[str], log: str, **env: str) -> None:
        env |= {"AUTOSCALER_INTERVAL": str(INTERVAL), "AUTOSCALER_MQTT__TOPIC_PREFIX": prefix}
        with (folder / log).open("wb") as out:  # the process has the file; this handle closes
            processes.append(await asyncio.create_subprocess_exec(
                *what, env=os.environ | env, stdout=out, stderr=out))  # fmt: skip

    labels = {f"autoscaler.{k}": v for k, v in LABELS.items()} | {"com.docker.stack.namespace":
              stack, "autoscaler.metric.topic": f"{prefix}-demand/worker"}  # fmt: skip
    task = {"ContainerSpec": {"Image": IMAGE, "Command": ["sleep", "86400"],
                              "StopGracePeriod": 1_000_000_000}}  # fmt: skip
    try:
        view.cut_node = (await engines[cut].system.info())["Swarm"]["NodeID"]
        await engines[0]._query_json("services/create", method="POST", data={
            "Name": name, "Labels": labels, "Mode": {"Replicated": {"Replicas": 1}},
            "TaskTemplate": task})  # fmt: skip
        async with _relay(broker) as port, asyncio.TaskGroup() as tg:
            watching = [tg.create_task(_managers(engines[0], name, lease, view)),
                        tg.create_task(_engines(engines, name, view)),
                        tg.create_task(_broker(broker, prefix, demand, view))]  # fmt: skip
            for index, node in enumerate(nodes):  # over the node's link, through the relay
                await spawn(["nsenter", f"--net=/run/netns/{PREFIX}-node{_number(node)}",
                             sys.executable, "-m", "autoscaler", "agent"], f"agent-{index}.log",
                            DOCKER_HOST=node, AUTOSCALER_MQTT__HOST=RELAY,
                            AUTOSCALER_MQTT__PORT=str(port))  # fmt: skip
            for index, node in enumerate(nodes[:2]):  # on the managers
                await spawn([sys.executable, "-m", "autoscaler", "run"], f"controller-{index}.log",
                            DOCKER_HOST=node, AUTOSCALER_PROJECTS=json.dumps([stack]),
                            AUTOSCALER_MQTT__HOST=broker[0], AUTOSCALER_MQTT__PORT=str(broker[1]),
                            AUTOSCALER_API__PORT="0", AUTOSCALER_LEASE__ENABLED="false",
                            AUTOSCALER_SWARM__LEASE_NAME=lease, AUTOSCALER_MQTT__HEARTBEAT="1",
                            AUTOSCALER_SWARM__LEASE_TTL=str(TTL))  # fmt: skip
            if not await view.until(lambda: bool(view.timeline and view.timeline[-1][1]), 90):
                raise RuntimeError("the service never ran its first 3 tasks")
            # The step to 8 tasks' demand; the cut as the first update of the scale-up lands.
            demand["worker"], view.expected = 75, min(math.ceil(75 / TARGET), MAXIMUM)
            await view.until(lambda: view.spec > 3, 30)
            result.recovery = await _cut(view, link)
            if result.recovery is None:
                result.stuck = f"Spec {view.spec} of {view.expected} asked"
            await stop(processes)  # before the relay and the demand go: nothing acts on that
            for watcher in watching:
                watcher.cancel()
    finally:
        await _ip("link", "set", link, "up", check=False)
        await _teardown(processes, engines, name, lease)
    seen = _judge(view)
    seen[MEASURED].append(f"recovery from {view.basis}")
    result.violations = {k: len(v) for k, v in seen.items() if k not in (SWARMS_OWN, MEASURED)}
    return result, dict(seen)


async def _cut(view: _View, link: str) -> float | None:
    """The link cut until Swarm noticed and its replacements ran the count (or a while for them
    to), then restored: the recovery, from the cut if reached while cut, else from the restore."""
    at = view.at
    try:
        at["cut"] = time.monotonic()
        await _ip("link", "set", link, "down")
        await view.until(lambda: "down" in at, NOTICE)
        await view.until(lambda: view.recovered_since(at.get("down", math.inf)) is not None, 30)
        await asyncio.sleep(5)  # the autoscaler's rounds on what Swarm replaced
    finally:
        await _ip("link", "set", link, "up")
        at["restored"] = time.monotonic()
    await view.until(lambda: "ready" in at, NOTICE)
    await view.until(lambda: view.recovered_since(at["restored"]) is not None and "back" in at,
                     RECOVERY)  # fmt: skip
    during = view.recovered_since(at.get("down", math.inf))
    if during is not None and during < at["restored"]:
        view.basis = "the cut: Swarm's replacements ran the count while cut"
        return during - at["cut"]
    view.basis = "the restore: the count not run while cut"
    after = view.recovered_since(at["restored"])
    return None if after is None else after - at["restored"]


async def _teardown(processes: list[asyncio.subprocess.Process],
                    engines: list[aiodocker.Docker], name: str, lease: str) -> None:  # fmt: skip
    """The processes stopped, the service and the lease removed, and the service's containers
    waited for until no engine has one left (30 s at most): the next run starts clean."""
    try:
        await stop(processes)
        for leftover in (f"services/{name}", f"configs/{lease}"):  # a killed holder leaves it
            with contextlib.suppress(aiodocker.DockerError):
                await engines[0]._query_json(leftover, method="DELETE")
        label = json.dumps({"label": [f"com.docker.swarm.service.name={name}"]})
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                for engine in engines:
                    while await engine.containers.list(all=True, filters=label):  # noqa: ASYNC110
                        await asyncio.sleep(0.5)
    finally:
        for engine in engines:
            await engine.close()
