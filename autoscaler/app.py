"""The service's lifecycle: start-up, the loop, and a bounded shutdown. Everything about one
service lives in its controller (control/controller.py); the App owns time, not services.

    startup ──► every interval: sample all ─► controller.step per service ─► (actions in flight)
                     ▲                                                              │
                     └───────────────────────── until stop is set ◄─────────────────┘
                     between rounds: an engine event that a replica went away or one of the
                     user's containers started ─► controller.mend for that service, at once
    shutdown: finish in-flight actions (bounded), flush MQTT, publish offline, cancel the rest

One TaskGroup owns every long-lived task: the inventory's event follower, the MQTT notifier, the
metric topics, the API, the leases and each controller's action in flight. Each long-lived task
runs under the supervisor (errors.Faults), and each part of a round (the metric sources, the
Swarm listing, the sampling) under its guard: a bug of one part is logged, reported and that
part alone starts over; only cancellation ever reaches the TaskGroup.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from autoscaler.backends.compose.actuator import Actuator
from autoscaler.backends.compose.inventory import Inventory
from autoscaler.backends.compose.lease import Lease
from autoscaler.backends.docker import client as engine
from autoscaler.backends.docker.client import LIBRARY_ERRORS
from autoscaler.backends.docker.collector import Collector
from autoscaler.backends.swarm.cluster import Cluster, is_manager
from autoscaler.control.context import Clock, Context
from autoscaler.control.controller import Controller
from autoscaler.control.fleet import Fleet
from autoscaler.control.history import History
from autoscaler.control.keep import Keep
from autoscaler.control.replicas import Replica, Sample
from autoscaler.errors import AutoscalerError, Faults
from autoscaler.labels import ServiceKey
from autoscaler.mqtt.journal import Journal
from autoscaler.mqtt.notifier import Notifier
from autoscaler.ops.api import Api
from autoscaler.ops.metrics import Metrics
from autoscaler.ops.stream import Snapshot
from autoscaler.settings import Settings
from autoscaler.sources.signals import Signals

logger = logging.getLogger(__name__)

_SETTLE = 0.1
"""Seconds an engine event that asks for a mend waits for the rest of its command's events:
Compose removes a service's clones all at once, and their ends arrive within milliseconds."""


class App:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        """`clock`: the clocks the controllers read (tests step the wall clock)."""
        self.settings = settings
        self.clock = clock or Clock()
        self._wake = asyncio.Event()
        """Set when the loop should look before the next round: a stop, services to mend, a
        view of the engine that is current again, or a lease just taken."""
        self.docker = engine.client(
            settings.docker_host, settings.engine_timeout, settings.docker_api_version
        )
        self.faults = Faults(self._fault)
        self.inventory = Inventory(
            self.docker, on_event=self._engine_event, on_ready=self._wake.set,
            faults=self.faults, relist=settings.relist,
        )  # fmt: skip
        self.lease = (
            Lease(
                self.docker,
                settings.engine_lease,
                settings.lease.ttl,
                projects=settings.projects,
                faults=self.faults,
                on_lead=self._wake.set,
            )
            if settings.lease.enabled
            else None
        )
        self.collector = Collector(self.docker, interval=settings.interval)
        self.signals = Signals(settings.mqtt, interval=settings.interval, faults=self.faults)
        self.journal = Journal()
        self.notifier = Notifier(settings.mqtt, self.journal)
        self.metrics = Metrics()
        self.api = Api(
            settings.api.host,
            settings.api.port,
            metrics=self.metrics,
            unready=self.unready,
            status=self.status,
            snapshot=self.snapshot,
            history=self.history,
            journal=self.journal,
            band=settings.mqtt.state_band,
            token=settings.api.token.get_secret_value() if settings.api.token else None,
            streams=settings.api.streams,
        )
        self.context = Context(
            actuator=Actuator(
                self.docker, concurrency=settings.clone_concurrency, timeout=settings.engine_timeout
            ),
            refresh=self.inventory.refresh,
            restart=self.collector.restart,
            view=lambda key: self.inventory.services().get(key, []),
            notifier=self.notifier,
            metrics=self.metrics,
            dry_run=settings.dry_run,
            instance=lambda: self.lease.holder if self.lease else None,
            signal=self.signals.read,
            heartbeat=settings.mqtt.heartbeat,
            band=settings.mqtt.state_band,
            clock=self.clock,
            interval=settings.interval,
            keep=Keep(settings.state_dir) if settings.state_dir else None,
        )
        self.controllers = Fleet(self.context)
        """The Compose services' controllers; the Swarm services' are the cluster's."""
        self.cluster: Cluster | None = None
        self._to_mend: set[ServiceKey] = set()
        self._owed = False
        """A round was skipped for want of a current view or of the lease: it runs as soon as
        this instance acts."""

    async def serve(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then shut down within the configured bound."""
        await self._startup()
        try:
            async with asyncio.TaskGroup() as tg:
                follower = self._supervised(tg, "engine events", self.inventory.run)
                notifier = self._supervised(tg, "MQTT notifier", self.notifier.run)
                others = [self._supervised(tg, "metric topics", self.signals.run)]
                if self.settings.api.enabled:
                    others.append(self._supervised(tg, "API", self.api.serve))
                if self.lease is not None:
                    others.append(self._supervised(tg, "engine lease", self.lease.run))
                if self.cluster is not None:
                    others.append(self._supervised(tg, "swarm lease", self.cluster.lease.run))
                    others.append(self._supervised(tg, "agent samples", self.cluster.feed.run))
                others.append(tg.create_task(self._wake_on(stop), name="stop"))
                await self._main_loop(tg, stop)
                await self._shutdown(follower, notifier)
                for task in others:
                    task.cancel("shutdown")
        finally:
            self.collector.close()
            await self.docker.close()

    def _supervised(
        self, tg: asyncio.TaskGroup, part: str, run: Callable[[], Awaitable[None]]
    ) -> asyncio.Task[None]:
        return tg.create_task(self.faults.supervise(part, run), name=part)

    def _fault(self, part: str, exc: BaseException) -> None:
        """A part of the process failed: told on `<prefix>/events` and counted, once a fault."""
        self.metrics.faulted(part)
        self.notifier.fault(part, exc, instance=self.context.instance())

    async def _startup(self) -> None:
        try:
            version = await engine.ping(self.docker)
        except AutoscalerError as exc:
            # Not fatal: the inventory keeps retrying, and nothing acts until it is back.
            logger.error("%s; will keep retrying", exc)
        else:
            logger.info(
                "engine %s (API %s) at %s",
                version.get("Version"), version.get("ApiVersion"), self.docker.docker_host,
            )  # fmt: skip
        await self._swarm()
        mqtt = self.settings.mqtt
        broker = f"{mqtt.host}:{mqtt.port}" if mqtt.enabled else "off"
        logger.info(
            "interval %.1fs, dry run %s, MQTT %s",
            self.settings.interval,
            self.settings.dry_run,
            broker,
        )

    async def _swarm(self) -> None:
        """Serve Swarm services too when asked to, or (by default) when the engine manages a
        swarm; a worker's or a lone engine's instance serves Compose only."""
        wanted = self.settings.swarm.enabled
        if wanted is None:
            try:
                wanted = await is_manager(self.docker)
            except LIBRARY_ERRORS as exc:
                logger.warning("could not ask the engine whether it is a swarm manager (%s): "
                               "Compose services only", exc)  # fmt: skip
                wanted = False
        if wanted:
            self.cluster = Cluster(
                self.docker,
                self.settings,
                notifier=self.notifier,
                metrics=self.metrics,
                signal=self.signals.read,
                faults=self.faults,
                clock=self.clock,
            )
            logger.info("swarm services too: lease %s", self.settings.cluster_lease)

    def _all(self) -> dict[ServiceKey, Controller]:
        cluster = self.cluster.controllers.items() if self.cluster is not None else []
        return dict([*self.controllers.items(), *cluster])

    async def _main_loop(self, tg: asyncio.TaskGroup, stop: asyncio.Event) -> None:
        next_tick = time.monotonic()
        while not stop.is_set():
            compose = self._acts()
            self._owed = not compose
            swarm = self.cluster is not None and self.cluster.lease.leading
            # Another instance acts while this one does not lead: what it did meanwhile is read
            # afresh when this one leads again, never undone from what this one last decided.
            if self.lease is not None and not self.lease.leading:
                self.controllers.release()
            if self.cluster is not None and not swarm:
                self.cluster.controllers.release()
            if compose or swarm:
                # The services' metric sources, read before any of them is evaluated.
                metrics = [c.spec.metric for c in self._all().values() if c.spec and c.spec.metric]
                with self.faults.guard("metric sources"):
                    await self.signals.follow(metrics)
            if swarm:
                assert self.cluster is not None
                with self.faults.guard("swarm round"):
                    await self.cluster.tick(tg)
            if compose:
                await self.tick(tg)
            else:
                logger.debug("engine view not ready, or another instance holds the lease")
            self.notifier.standing_by(self.lease.problem if self.lease is not None else None)
            self.api.round_done()
            next_tick = max(next_tick + self.settings.interval, time.monotonic())
            if await self._between_rounds(tg, stop, next_tick):
                next_tick = time.monotonic()  # the rounds keep their interval from this one

    def _acts(self) -> bool:
        """Whether this instance acts on the Compose services now: its view of the engine is
        current, and it holds the lease (if there is one)."""
        return self.inventory.ready.is_set() and (self.lease is None or self.lease.leading)

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    async def _between_rounds(
        self, tg: asyncio.TaskGroup, stop: asyncio.Event, next_tick: float
    ) -> bool:
        """Until the next round (or a stop): services the engine's events named are mended at
        once, so that what Compose removed or replaced is back in the time the engine takes,
        not at the next round; and a round skipped for want of a view runs once there is one
        (True: that round is early)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(next_tick - time.monotonic()):
                    await self._wake.wait()
            self._wake.clear()
            if stop.is_set() or time.monotonic() >= next_tick:
                return False
            if self._owed and self._acts():
                return True  # the view is current again, or the lease taken: the round now
            await asyncio.sleep(_SETTLE)  # the rest of one command's events
            self.mend(tg)
        return False

    def mend(self, tg: asyncio.TaskGroup) -> None:
        """Mend the services events named since the last look; while this instance does not
        act (a lease renewal answered late), they wait for it to act again."""
        if not self._acts():
            return
        keys, self._to_mend = self._to_mend, set()
        services = self.inventory.services()
        self.controllers.mend(tg, {k: services[k] for k in keys if k in services})

    async def tick(self, tg: asyncio.TaskGroup) -> None:
        """One round: sample every opted-in container, then step each service's controller."""
        services = self.inventory.services()
        if self.settings.projects:
            services = {k: v for k, v in services.items() if k.project in self.settings.projects}
        started = time.perf_counter()
        samples: dict[str, Sample] = {}
        with self.faults.guard("sampling"):
            # Without samples every service holds this round: none is scaled on nothing.
            samples = await self.collector.sample(r for rs in services.values() for r in rs)
        self.metrics.sampling.observe(time.perf_counter() - started)
        self.controllers.step(tg, services, samples)

    def _engine_event(self, action: str, replica: Replica) -> None:
        """Engine events worth acting on between rounds: a replica gone (removed, crashed) or
        one of the user's containers started (a template replaced or started again); and worth
        telling: an OOM kill, as it happens."""
        ours = not self.settings.projects or replica.key.project in self.settings.projects
        gone = action == "destroy" or (action == "die" and replica.crashed)
        if ours and (gone or (action == "start" and not replica.is_clone)):
            logger.debug("%s: %s of %s: mend at once", replica.key, action, replica.name)
            self._to_mend.add(replica.key)
            self._wake.set()
        if action == "oom":
            logger.warning("%s: %s was killed for lack of memory", replica.key, replica.name)
            self.notifier.event(
                replica.key,
                "oom",
                {"container": replica.name},
                instance=self.context.instance(),
                container=replica.id,
            )

    def unready(self) -> str | None:
        """Why this instance cannot act, or None: what /readyz answers."""
        if not self.inventory.ready.is_set():
            return "engine view not current"
        if self.lease is not None and self.lease.problem is not None:
            return f"standing by: {self.lease.problem}"
        return None

    def _header(self) -> dict[str, Any]:
        """The instance's own state, as /status and the page's stream begin."""
        return {
            "ready": self.inventory.ready.is_set(),
            "engine_events": self.inventory.events_seen,
            "leading": self.lease.leading if self.lease else True,
            **({"standing_by": self.lease.problem} if self.lease and self.lease.problem else {}),
            "dry_run": self.settings.dry_run,
            "mqtt": {
                "connected": self.notifier.connected,
                "pending": self.notifier.pending,
                "dropped": self.notifier.dropped,
            },
            **({"swarm": self.cluster.status()} if self.cluster is not None else {}),
        }

    def status(self) -> dict[str, Any]:
        """Every service's state and recent decisions, newest last: what /status serves."""
        return {
            **self._header(),
            "services": {
                str(key): {
                    "state": c.state.to_dict(),
                    "decisions": [e.to_dict() for e in c.history],
                }
                for key, c in sorted(self._all().items())
                if c.state is not None
            },
        }

    def snapshot(self) -> Snapshot:
        """The instance and every service's state, without decisions: what the page streams."""
        states = {str(k): c.state for k, c in self._all().items() if c.state is not None}
        return Snapshot(self._header(), states)

    def history(self, name: str) -> tuple[str, History] | None:
        """The service named `name` (`project/service`, or a service alone when only one has
        that name) and its history."""
        named = {str(k): c for k, c in self._all().items()}
        found = [name] if name in named else [n for n in named if n.endswith(f"/{name}")]
        return (found[0], named[found[0]].timeline) if len(found) == 1 else None

    async def _shutdown(self, follower: asyncio.Task[None], notifier: asyncio.Task[None]) -> None:
        inflight = [c.inflight for c in self._all().values() if c.inflight is not None]
        if inflight:
            logger.info("waiting for %d scale actions to finish", len(inflight))
            _, pending = await asyncio.wait(inflight, timeout=self.settings.shutdown_timeout)
            for task in pending:
                task.cancel(f"shutdown: not finished within {self.settings.shutdown_timeout}s")
        for controller in self._all().values():
            controller.keep()
        follower.cancel("shutdown")
        self.notifier.close()
        _, pending_mqtt = await asyncio.wait([notifier], timeout=5.0)
        for task in pending_mqtt:
            task.cancel("shutdown: MQTT did not flush within 5s")
