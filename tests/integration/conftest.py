"""Fixtures for tests against the real engine and broker started by scripts/engine.sh and
scripts/broker.sh. `make test` starts both; run alone, this starts them (and leaves them running
for the next run; `make down` stops them)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiodocker
import aiomqtt
import pytest
from aiohttp import web

from autoscaler.app import App
from autoscaler.settings import ApiSettings, LeaseSettings, MqttSettings, Settings, lease_name
from policies import registry
from tests.integration.browser import Browser, chromium
from tests.integration.exporter import Queue, exporting
from tests.integration.platforms import Platform, platform_named
from tests.integration.relay import Relay, relay
from tests.integration.socket_proxy import socket_proxy
from tests.integration.web import build_images

ROOT = Path(__file__).resolve().parents[2]
TEST_IMAGE = os.environ.get("AUTOSCALER_TEST_IMAGE", "autoscaler-test/busybox:latest")

pytestmark = pytest.mark.integration


def _script_env(script: str) -> dict[str, str]:
    subprocess.run(["bash", str(ROOT / "scripts" / script), "start"], check=True)
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / script), "env"], check=True, capture_output=True, text=True
    ).stdout
    return dict(line.split("=", 1) for line in out.split())


ON_BOTH = pytest.mark.parametrize("platform", ["current", "legacy"], indirect=True)
"""On Docker 26.1 with Compose v2.26, and on Docker 20.10 with docker-compose 1.29."""


@pytest.fixture(scope="session")
def platform(request: pytest.FixtureRequest) -> Platform:
    """The engine and Compose a test runs on (platforms.py): `current` unless it asks."""
    return platform_named(getattr(request, "param", "current"))


@pytest.fixture(scope="session")
def docker_host(platform: Platform) -> str:
    return platform.docker_host


@pytest.fixture(scope="session")
def broker() -> tuple[str, int]:
    if "AUTOSCALER_MQTT__PORT" in os.environ:
        env: Mapping[str, str] = os.environ
    else:
        env = _script_env("broker.sh")
    return env.get("AUTOSCALER_MQTT__HOST", "127.0.0.1"), int(env["AUTOSCALER_MQTT__PORT"])


@pytest.fixture(scope="session")
def broker_auth(broker: tuple[str, int]) -> tuple[int, str]:
    """The broker's password-protected listener: (port, password of user `autoscaler`)."""
    env: Mapping[str, str] = os.environ
    if "AUTOSCALER_TEST_BROKER_AUTH_PORT" not in env:
        env = _script_env("broker.sh")
    password = Path(env["AUTOSCALER_TEST_BROKER_PASSWORD_FILE"]).read_text().strip()
    return int(env["AUTOSCALER_TEST_BROKER_AUTH_PORT"]), password


@pytest.fixture(scope="session")
def broker_tls(broker: tuple[str, int]) -> tuple[int, Path]:
    """The broker's TLS listener: (port, the private CA that signed its certificate)."""
    env: Mapping[str, str] = os.environ
    if "AUTOSCALER_TEST_BROKER_TLS_PORT" not in env:
        env = _script_env("broker.sh")
    return int(env["AUTOSCALER_TEST_BROKER_TLS_PORT"]), Path(env["AUTOSCALER_TEST_BROKER_CA_FILE"])


async def control(script: str, verb: str) -> None:
    """Stop or start the engine or broker the scripts run: an outage, as the tests cause it."""
    process = await asyncio.create_subprocess_exec("bash", str(ROOT / "scripts" / script), verb)
    assert await process.wait() == 0, f"{script} {verb} failed"


@contextlib.contextmanager
def once_a_run(name: str) -> Iterator[bool]:
    """A build that session fixtures start, done once a test run. `make test` runs most tests in
    several processes (pytest-xdist), each with its own session: the first to get here builds
    (True) while the others wait on the lock and find it built (False). Run without xdist,
    every session builds."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:
        yield True
        return
    shared = Path(tempfile.gettempdir()) / f"autoscaler-tests-{run}"
    shared.mkdir(exist_ok=True)
    name = name.replace("/", "_")
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / f"{name}.done"
        first = not done.exists()
        yield first
        done.touch()  # not reached when the build raised: the next worker tries again


@pytest.fixture(scope="session")
def deploy_image(docker_host: str) -> str:
    """The deploy image, built once a session (the Debian base once a machine: it is cached)."""
    image = "compose-autoscaler:test"
    env = {**os.environ, "DOCKER_HOST": docker_host}
    with once_a_run(f"deploy-image {docker_host}") as first:
        if first:
            subprocess.run(["bash", str(ROOT / "scripts" / "image.sh"), image], check=True, env=env)
    return image


@pytest.fixture(scope="session")
def web_images(docker_host: str) -> None:
    """The webapp's and the proxies' images, made offline once a machine."""
    with once_a_run(f"web-images {docker_host}") as first:
        if first:
            build_images(docker_host)


@pytest.fixture(scope="session")
def engine_api(
    web_images: None, docker_host: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The engine through deploy/socket-proxy, with its shipped grants: a DOCKER_HOST."""
    with socket_proxy(docker_host, tmp_path_factory.mktemp("socket-proxy")) as host:
        yield host


@pytest.fixture(scope="session")
def swarm(docker_host: str) -> list[str]:
    """The engines of a three-node Swarm (scripts/swarm.sh: nodes 1 and 2 managers, 3 a worker),
    each with the test image; started once a session, as slow fixtures are."""
    env: Mapping[str, str] = os.environ
    if "AUTOSCALER_TEST_SWARM_NODES" not in env:
        env = _script_env("swarm.sh")
    with once_a_run("swarm-test-image") as first:
        if first:
            subprocess.run(
                ["bash", str(ROOT / "scripts" / "swarm.sh"), "load", TEST_IMAGE],
                check=True,
                env=os.environ | {"DOCKER_HOST": docker_host},
            )
    return [f"unix://{path}" for path in env["AUTOSCALER_TEST_SWARM_NODES"].split(",")]


@pytest.fixture(scope="session")
def stack_images(
    swarm: list[str], deploy_image: str, docker_host: str, web_images: None
) -> dict[str, str]:
    """deploy/stack.yaml's images on every node of the swarm: the deploy image, a broker image
    made offline from this machine's mosquitto (scripts/broker-image.sh), and the socket
    proxy's (Debian's HAProxy, scripts/web-images.sh)."""
    broker, proxy = "autoscaler-test/mosquitto:latest", "autoscaler-test/haproxy:latest"
    env = os.environ | {"DOCKER_HOST": docker_host}
    with once_a_run("stack-images") as first:
        if first:
            script = str(ROOT / "scripts" / "broker-image.sh")
            subprocess.run(["bash", script, broker], check=True, env=env)
            for image in (deploy_image, broker, proxy):
                script = str(ROOT / "scripts" / "swarm.sh")
                subprocess.run(["bash", script, "load", image], check=True, env=env)
    return {"AUTOSCALER_IMAGE": deploy_image, "BROKER_IMAGE": broker, "SOCKET_PROXY_IMAGE": proxy}


@pytest.fixture
async def docker(docker_host: str) -> AsyncIterator[aiodocker.Docker]:
    client = aiodocker.Docker(url=docker_host)
    try:
        yield client
    finally:
        await client.close()


_PROJECTS: list[str] = []


@pytest.fixture(scope="session")
def _leases(docker_host: str) -> Iterator[None]:
    """The lease containers of the session's projects go when the session ends: a lease outlives
    its holder by design (the next instance reads it), so nothing else removes a test's."""
    yield
    names = [lease_name(frozenset({p})) for p in _PROJECTS]
    for start in range(0, len(names), 50):
        subprocess.run(["docker", "rm", "-f", *names[start : start + 50]], capture_output=True,
                       env=os.environ | {"DOCKER_HOST": docker_host})  # fmt: skip


@pytest.fixture
def project(_leases: None) -> str:
    """A Compose project name of the test's own, so tests never see each other's containers."""
    name = f"t{uuid.uuid4().hex[:8]}"
    _PROJECTS.append(name)
    return name


@dataclass
class Load:
    """The shared demand the replicas of a service burn (see scripts/burn.sh)."""

    path: Path

    def set(self, millicores: int) -> None:
        (self.path / "demand").write_text(f"{millicores}\n")


@pytest.fixture
def make_load(tmp_path: Path) -> Callable[[str], Load]:
    def make(name: str) -> Load:
        path = tmp_path / name
        (path / "replicas").mkdir(parents=True)
        load = Load(path)
        load.set(0)
        return load

    return make


@pytest.fixture
async def make_container(
    docker: aiodocker.Docker, project: str
) -> AsyncIterator[Callable[..., Any]]:
    """Create and start a container shaped like one `docker compose up` makes; every container of
    the project, clones included, is removed afterwards."""

    async def make(
        service: str,
        labels: Mapping[str, str] | None = None,
        *,
        load: Load | None = None,
        number: int = 1,
        cpus: float = 0.25,
        compose: bool = True,
        name: str | None = None,
        stop_timeout: int = 2,
        env: Mapping[str, str] | None = None,
        command: list[str] | None = None,
        network: str = "none",
        host: Mapping[str, Any] | None = None,
    ) -> aiodocker.containers.DockerContainer:
        all_labels = {"com.docker.compose.oneoff": "False", **(labels or {})}
        if compose:
            all_labels |= {
                "com.docker.compose.project": project,
                "com.docker.compose.service": service,
                "com.docker.compose.container-number": str(number),
            }
        else:
            all_labels["test.project"] = project
        binds = [f"{ROOT / 'scripts' / 'burn.sh'}:/burn.sh:ro"]
        if load is not None:
            binds.append(f"{load.path}:/load")
        config = {
            "Image": TEST_IMAGE,
            "Cmd": command or (["sh", "/burn.sh"] if load is not None else ["sleep", "86400"]),
            "Labels": all_labels,
            "StopTimeout": stop_timeout,
            "Env": [f"{k}={v}" for k, v in (env or {}).items()],
            "HostConfig": {"NetworkMode": network, "NanoCpus": int(cpus * 1e9), "Binds": binds,
                           **(host or {})},
        }  # fmt: skip
        container = await docker.containers.create(
            config, name=name or f"{project}-{service}-{number}"
        )
        await container.start()
        return container

    async def remove(container: aiodocker.containers.DockerContainer) -> None:
        async with slots:
            with contextlib.suppress(aiodocker.DockerError):
                await container.delete(force=True)

    slots = asyncio.Semaphore(8)
    try:
        yield make
    finally:
        for label in (f"com.docker.compose.project={project}", f"test.project={project}"):
            leftovers = await docker.containers.list(
                all=True, filters=json.dumps({"label": [label]})
            )
            await asyncio.gather(*(remove(c) for c in leftovers))


@dataclass
class Mqtt:
    """Every message under a test's own topic prefix, as they arrive."""

    prefix: str
    messages: list[tuple[str, dict[str, Any], bool]] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)
    """Topics whose retained message was cleared (an empty retained payload), in order."""
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def on(self, suffix: str) -> list[dict[str, Any]]:
        return [p for t, p, _ in self.messages if t == f"{self.prefix}/{suffix}"]

    def statuses(self) -> dict[str, list[dict[str, Any]]]:
        """Each instance's status messages (`<prefix>/status/<instance>`), by instance."""
        found: dict[str, list[dict[str, Any]]] = {}
        for topic, payload, _ in self.messages:
            if topic.startswith(f"{self.prefix}/status/"):
                found.setdefault(topic.rsplit("/", 1)[1], []).append(payload)
        return found

    async def wait_for(self, predicate: Callable[[Mqtt], Any], within: float = 30.0) -> Any:
        async with asyncio.timeout(within), self.arrived:
            while not (result := predicate(self)):
                await self.arrived.wait()
            return result


async def subscribe(
    host: str, port: int, prefix: str, into: Mqtt, subscribed: asyncio.Event
) -> None:
    """Collect until cancelled, reconnecting when a test takes the broker away."""
    while True:
        try:
            async with aiomqtt.Client(host, port) as client:
                await client.subscribe(f"{prefix}/#", qos=1)  # returns on the broker's SUBACK
                subscribed.set()
                async for message in client.messages:
                    raw = bytes(message.payload or b"")  # type: ignore[arg-type]
                    async with into.arrived:
                        if raw:
                            payload = json.loads(raw)
                            into.messages.append((str(message.topic), payload, message.retain))
                        else:
                            into.cleared.append(str(message.topic))
                        into.arrived.notify_all()
        except aiomqtt.MqttError:
            await asyncio.sleep(0.2)


def _awaiting(task: asyncio.Task[Any]) -> str:
    """Where a task waits: each coroutine in its chain of awaits, by file and line."""
    where, coro = [], task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
        if frame is not None:
            where.append(
                f"{frame.f_code.co_name} ({Path(frame.f_code.co_filename).name}:{frame.f_lineno})"
            )
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
    return " > ".join(where) or repr(task)


async def _report_hangs(project: str, after: float) -> None:
    """Shortly before pytest-timeout ends a test (its report shows threads, not tasks), where
    every task of the event loop waits: the await a hung test is stuck on, and any task an
    earlier test left behind."""
    await asyncio.sleep(after)
    for task in asyncio.all_tasks() - {asyncio.current_task()}:
        logging.getLogger(__name__).error("%s still running: %s waits at %s",
                                          project, task.get_name(), _awaiting(task))  # fmt: skip


@pytest.fixture
async def mqtt(
    broker: tuple[str, int], project: str, request: pytest.FixtureRequest
) -> AsyncIterator[Mqtt]:
    collected = Mqtt(prefix=f"autoscaler-test-{project}")
    # Setup and teardown of an async fixture may run in different tasks, so no TaskGroup spans
    # the yield: the tasks are awaited (and so never leaked) in teardown instead.
    subscribed = asyncio.Event()
    task = asyncio.create_task(subscribe(*broker, collected.prefix, collected, subscribed))
    marked = request.node.get_closest_marker("timeout")
    limit = float(marked.args[0] if marked else request.config.getini("timeout") or 0)
    watchdog = asyncio.create_task(_report_hangs(project, max(limit - 15, 1))) if limit else None
    try:
        async with asyncio.timeout(10):
            await subscribed.wait()
        yield collected
    finally:
        for each in (task, watchdog):
            if each is not None:
                each.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await each


def mqtt_settings(**values: Any) -> MqttSettings:
    """MQTT settings for a test: a state every round (a heartbeat shorter than the interval),
    so that tests can count rounds; test_mqtt.py checks the lean default on its own."""
    return MqttSettings(**({"heartbeat": 0.5} | values))


def settings_for(
    docker_host: str, broker: tuple[str, int], project: str, prefix: str, **overrides: Any
) -> Settings:
    host, port = broker
    mqtt = mqtt_settings(host=host, port=port, topic_prefix=prefix)
    values: dict[str, Any] = {
        "docker_host": docker_host,
        "interval": 1.0,
        "projects": frozenset({project}),
        "mqtt": mqtt,
        "shutdown_timeout": 10.0,
        "api": ApiSettings(port=0),
        # A lease of the test's own: a test that kills an instance leaves no lease behind for
        # the next test to wait out. Its ttl of 10 s: the holder acts while its last renewal
        # is younger than 3.3 s, and on a host three tests load at once an engine answers a
        # renewal a second late now and then (at 5 s, the fence then dropped a scale-up's
        # starts as another instance's; the tests of the fence set their own ttl).
        "lease": LeaseSettings(name=f"autoscaler-lease-{project}", ttl=10),
    }
    return Settings(**(values | overrides))


@pytest.fixture
async def run_autoscaler(
    docker_host: str, broker: tuple[str, int], project: str, mqtt: Mqtt
) -> AsyncIterator[_Runner]:
    """Start the service in this event loop; it is stopped (with its bounded drain) afterwards,
    or by `await run_autoscaler.stop()` (before a stack goes down, so that it mends nothing)."""
    runner = _Runner(lambda host, **o: settings_for(host, broker, project, mqtt.prefix, **o),
                     docker_host)  # fmt: skip
    try:
        yield runner
    finally:
        await runner.stop()


class _Runner:
    def __init__(self, settings: Callable[..., Settings], docker_host: str) -> None:
        self._settings, self._docker_host = settings, docker_host
        self._running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def __call__(self, **overrides: Any) -> App:
        host = overrides.pop("docker_host", self._docker_host)  # another engine: a swarm manager
        clock = overrides.pop("clock", None)  # the controllers' clocks, when a test steps one
        app = App(self._settings(host, **overrides), clock=clock)
        stop = asyncio.Event()
        self._running.append((stop, asyncio.create_task(app.serve(stop))))
        async with asyncio.timeout(10):
            await app.compose.inventory.ready.wait()
        return app

    async def stop(self) -> None:
        """Every instance started, stopped."""
        running, self._running = self._running, []
        for stop, _ in running:
            stop.set()
        for _, task in running:
            async with asyncio.timeout(30):
                await task


@pytest.fixture
async def spawn_autoscaler(
    docker_host: str, broker: tuple[str, int], project: str, mqtt: Mqtt
) -> AsyncIterator[Callable[..., Any]]:
    """Start `autoscaler run` as a process of its own (to kill -9 it, or run two); the lease is
    the test's own with a 3 s ttl unless `start` is given other AUTOSCALER_* settings. Whatever
    still runs at the end gets SIGTERM."""
    env = {
        **os.environ,
        "DOCKER_HOST": docker_host,
        "AUTOSCALER_INTERVAL": "1",
        "AUTOSCALER_PROJECTS": json.dumps([project]),
        "AUTOSCALER_MQTT__HOST": broker[0],
        "AUTOSCALER_MQTT__PORT": str(broker[1]),
        "AUTOSCALER_MQTT__TOPIC_PREFIX": mqtt.prefix,
        "AUTOSCALER_API__PORT": "0",
        "AUTOSCALER_LEASE__NAME": f"autoscaler-lease-{project}",
        "AUTOSCALER_LEASE__TTL": "3",
        "AUTOSCALER_MQTT__HEARTBEAT": "0.5",
    }
    started: list[asyncio.subprocess.Process] = []

    async def start(**settings: str | None) -> asyncio.subprocess.Process:
        """A setting given as None is left unset (its default applies)."""
        chosen = {k: v for k, v in (env | settings).items() if v is not None}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "autoscaler", "run", env=chosen,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            if process.returncode is None:
                process.terminate()
                await process.wait()


@pytest.fixture
def fixed_policy(tmp_path: Path) -> Iterator[None]:
    """The example plugin of docs/policies.md, word for word, installed as a distribution that
    registers it under the `autoscaler.policies` entry-point group."""
    text = (ROOT / "docs" / "policies.md").read_text()
    code = text.split("```python\n# my_policies/fixed.py\n", 1)[1].split("```", 1)[0]
    toml = text.split('[project.entry-points."autoscaler.policies"]\n', 1)[1].split("\n", 1)[0]
    entry = toml.replace('"', "")
    package = tmp_path / "plugins" / "my_policies"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "fixed.py").write_text(code)
    info = tmp_path / "plugins" / "my_policies-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-policies\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[autoscaler.policies]\n{entry}\n")
    sys.path.insert(0, str(tmp_path / "plugins"))
    registry._registered.cache_clear()
    registry.lookup.cache_clear()
    try:
        yield
    finally:
        sys.path.remove(str(tmp_path / "plugins"))
        for name in ("my_policies", "my_policies.fixed"):
            sys.modules.pop(name, None)
        registry._registered.cache_clear()
        registry.lookup.cache_clear()


@pytest.fixture(autouse=True)
def _no_leaked_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Settings read the environment; a developer's AUTOSCALER_* must not change what tests see.
    # The scripts' own settings stay: a test that restarts the engine must reach the same one.
    scripts = {"AUTOSCALER_STATE_DIR", "AUTOSCALER_SWARM_PREFIX", "AUTOSCALER_BASE_IMAGE",
               "AUTOSCALER_DEBIAN_MIRROR"}  # fmt: skip
    for name in list(os.environ):
        if name.startswith("AUTOSCALER_") and not name.startswith("AUTOSCALER_TEST_"):
            if name not in scripts:
                monkeypatch.delenv(name)
    yield


def states(mqtt: Mqtt, project: str, service: str) -> list[dict[str, Any]]:
    return mqtt.on(f"{project}/{service}/state")


async def states_after(
    mqtt: Mqtt, project: str, service: str, since: float, count: int = 3, within: float = 30
) -> list[dict[str, Any]]:
    """The first `count` states the service publishes after time `since`: rounds that came after
    an event, never ones from before it."""

    def fresh(m: Mqtt) -> list[dict[str, Any]] | None:
        later = [s for s in states(m, project, service) if s["time"] > since]
        return later[:count] if len(later) >= count else None

    result: list[dict[str, Any]] = await mqtt.wait_for(fresh, within)
    return result


def events(mqtt: Mqtt, project: str, service: str, action: str) -> list[dict[str, Any]]:
    return [e for e in mqtt.on(f"{project}/{service}/events") if e["Action"] == action]


async def reaches(
    mqtt: Mqtt, project: str, service: str, replicas: int, *, hold: int = 3, within: float = 45
) -> list[dict[str, Any]]:
    """Wait until the service's published state shows `replicas` for `hold` rounds in a row."""

    def held(m: Mqtt) -> list[dict[str, Any]] | None:
        seen = states(m, project, service)
        tail = seen[-hold:]
        if len(tail) == hold and all(s.get("replicas") == replicas for s in tail):
            return seen
        return None

    try:
        result: list[dict[str, Any]] = await mqtt.wait_for(held, within)
    except TimeoutError:
        history = states(mqtt, project, service)
        seen = [s.get("replicas") for s in history]
        moves = [
            f"{s.get('replicas')} -> {s.get('desired')}: {s.get('reason')}"
            for s in history
            if s.get("desired") != s.get("replicas")
        ]
        raise AssertionError(
            f"{service} never held {replicas} replicas; states: {seen}; moves: {moves}"
        ) from None
    return result


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Debian's chromium, headless, started once a session (scripts/test.sh installs it)."""
    async with chromium() as started:
        yield started


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where tests leave what a person may want to look at (screenshots); not committed."""
    path = ROOT / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


@dataclass
class Exporter:
    """A Prometheus target the tests serve themselves: `set(name, labels, value)`."""

    port: int
    url: str
    """The Prometheus server that scrapes it every second."""
    values: dict[str, float] = field(default_factory=dict)

    def set(self, metric: str, project: str, value: float) -> None:
        self.values[f'{metric}{{project="{project}"}}'] = value


@pytest.fixture(scope="session")
async def exporter() -> AsyncIterator[Exporter]:
    """scripts/prometheus.sh's Prometheus, and one of the targets it scrapes, served here."""
    env: Mapping[str, str] = os.environ
    if "AUTOSCALER_TEST_PROMETHEUS_URL" not in env:
        env = _script_env("prometheus.sh")
    # A target a test process: `make test` runs several (PYTEST_XDIST_WORKER gw0, gw1, ...).
    ports = env["AUTOSCALER_TEST_EXPORTER_PORTS"].split(",")
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    if worker >= len(ports):
        raise RuntimeError(
            f"{len(ports)} exporter targets for test process gw{worker}: fewer workers"
        )
    served = Exporter(int(ports[worker]), env["AUTOSCALER_TEST_PROMETHEUS_URL"])

    async def metrics(_: web.Request) -> web.Response:
        body = "".join(f"{k} {v}\n" for k, v in served.values.items())
        return web.Response(text=body, content_type="text/plain")

    app = web.Application()
    app.add_routes([web.get("/metrics", metrics)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", served.port).start()
    try:
        yield served
    finally:
        await runner.cleanup()


@pytest.fixture
async def engine_relay(docker_host: str) -> AsyncIterator[Relay]:
    """The engine behind a relay a test can cut, hold or silence (relay.py); `.url` is its
    DOCKER_HOST. A unix socket path must be short, so not under the test's own tmp_path."""
    folder = Path(tempfile.mkdtemp(prefix="relay-"))
    try:
        async with relay(docker_host, folder / "engine.sock") as made:
            yield made
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def prometheus_relay(exporter: Exporter) -> AsyncIterator[Relay]:
    """The private Prometheus behind a relay (relay.py): `.url` is its base URL."""
    async with relay(exporter.url.removeprefix("http://").rstrip("/")) as made:
        yield made


@pytest.fixture
async def queue(broker: tuple[str, int], mqtt: Mqtt, project: str) -> AsyncIterator[Queue]:
    """A queue's exporter of the test's own (exporter.py), publishing to
    `<prefix>-queues/<project>/jobs`."""
    async with exporting(broker, f"{mqtt.prefix}-queues/{project}/jobs") as exporter:
        yield exporter
