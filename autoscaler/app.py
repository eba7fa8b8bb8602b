"""The service's lifecycle: start-up, the loop, and a bounded shutdown. Everything about one
service lives in its controller (control/controller.py), and everything about where replicas
live in its backend (backends/): the App owns time, not services, and drives each backend the
same way (`Backend` below: the Compose backend on the engine, and the Swarm backend on a
manager).

    startup ──► every interval: each acting backend's round: sample, then controller.step per
                     ▲          service ─► (actions in flight)                         │
                     └───────────────────────── until stop is set ◄─────────────────────┘
                     between rounds: a backend's events that name services to mend (a
                     replica gone, a template started) ─► controller.mend for each, at once;
                     a value pushed to a metric (MQTT) ─► the services that read it, stepped
    shutdown: finish in-flight actions (bounded), flush MQTT, publish offline, cancel the rest

One TaskGroup owns every long-lived task: the backends' parts (the engine's event follower, the
leases, the agents' samples), the MQTT notifier, the metric topics, the API and each
controller's action in flight. Each long-lived task runs under the supervisor (errors.Faults),
and each part of a round (the metric sources, a backend's listing, the sampling) under its
guard: a bug of one part is logged, reported and that part alone starts over; only
cancellation ever reaches the TaskGroup.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from autoscaler.backends.compose.backend import Compose
from autoscaler.backends.docker import client as engine
from autoscaler.backends.docker.client import LIBRARY_ERRORS
from autoscaler.backends.swarm.cluster import Cluster, is_manager
from autoscaler.control import controls
from autoscaler.control.context import Clock
from autoscaler.control.controller import HISTORY, Controller
from autoscaler.control.controls import Control, ControlError
from autoscaler.control.fleet import Fleet
from autoscaler.control.history import History
from autoscaler.control.spec import MetricSource
from autoscaler.errors import AutoscalerError, Faults
from autoscaler.labels import ServiceKey
from autoscaler.mqtt.commands import Commands
from autoscaler.mqtt.journal import Journal
from autoscaler.mqtt.notifier import Notifier, Standing
from autoscaler.ops.api import Api
from autoscaler.ops.metrics import Metrics, Observed
from autoscaler.ops.stream import Snapshot
from autoscaler.settings import Settings, instance_name
from autoscaler.sources.signals import Signals
from autoscaler.webhooks.dispatcher import Webhooks, outbox_folder

logger = logging.getLogger(__name__)

_SETTLE = 0.1
"""Seconds an event that asks for a mend waits for the rest of its command's events: Compose
removes a service's clones all at once, and their ends arrive within milliseconds."""


class Backend(Protocol):
    """A backend as the app drives it (backends/compose/backend.py, backends/swarm/cluster.py)."""

    fleet: Fleet

    def parts(self) -> dict[str, Callable[[], Awaitable[None]]]:
        """Its long-lived parts, by name: each runs supervised until shutdown."""

    def leads(self) -> bool:
        """Whether this instance holds its lease: where it does not, another instance acts."""

    def acts(self) -> bool:
        """Whether this instance acts on its services now: it leads, and its view is current."""

    def problem(self) -> str | None:
        """Why this instance stands by (a lease it cannot take), or None."""

    def instance(self) -> str | None:
        """The name of the instance that acts, as its events say it."""

    async def round(self, tg: asyncio.TaskGroup) -> None:
        """One round: its services listed and sampled, each controller stepped."""

    def mend(self, tg: asyncio.TaskGroup) -> None:
        """Between rounds: the services its events named since the last look, mended."""

    def due(self) -> float | None:
        """When (time.monotonic) a service it acted on can be measured again, the earliest,
        or None: a look then decides on the new count without waiting for the round."""

    async def look(self, tg: asyncio.TaskGroup) -> None:
        """Between rounds: the services due to be measured again, sampled and stepped."""

    def asked(self, keys: Iterable[ServiceKey]) -> None:
        """These services' metric was pushed a new value: they are due to decide on it now."""

    def unready(self) -> str | None:
        """Why this instance cannot act on its services, or None."""

    def followed(self) -> Iterable[ServiceKey]:
        """The services it follows, whether or not this instance leads."""

    async def control(self, key: ServiceKey, control: Control) -> None:
        """Record an operator's pause, hold or resume of the service where every instance
        reads it; ControlError where it cannot be."""

    def header(self) -> dict[str, Any]:
        """Its part of the instance's state in /status and the page's stream."""

    def close(self) -> None: ...


class App:
    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        round_guard: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
    ) -> None:
        """`clock`: the clocks the controllers read (tests step the wall clock). `round_guard`:
        what each round runs inside (`autoscaler run`: the garbage collector off, cli.py)."""
        self.settings = settings
        self._round_guard = round_guard
        self.clock = clock or Clock()
        self.instance = instance_name()
        """This instance's name: it holds the leases, names its status topic, and is the
        `instance` of the events and states of the services it acts on."""
        self._wake = asyncio.Event()
        """Set when the loop should look before the next round: a stop, services to mend, a
        view that is current again, or a lease just taken."""
        self.docker = engine.client(
            settings.docker_host, settings.engine_timeout, settings.docker_api_version
        )
        self.faults = Faults(self._fault)
        self.signals = Signals(
            settings.mqtt,
            interval=settings.interval,
            faults=self.faults,
            max_payload=settings.max_payload,
            max_scrape=settings.max_scrape,
            secrets_dir=settings.secrets_dir,
            secrets=settings.secrets,
            arrived=self._arrived,
        )
        self.journal = Journal()
        self.webhooks = Webhooks(settings.webhooks, outbox_folder(settings))
        """Every event told to HTTP endpoints and chats too, whether or not MQTT is on."""
        self.notifier = Notifier(
            settings.mqtt, self.journal, instance=self.instance, forward=self.webhooks.offer
        )
        self.metrics = Metrics(observe=self._observed)
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
            command=self.command,
        )
        self.commands = Commands(
            settings.mqtt, command=self.command, answer=self.notifier.publish,
            leads=lambda: any(b.leads() for b in self.backends),
        )  # fmt: skip
        self.compose = Compose(
            self.docker, settings, notifier=self.notifier, metrics=self.metrics,
            signal=self.signals.read, sources=self.signals.options, faults=self.faults,
            clock=self.clock, wake=self._wake.set, instance=self.instance,
        )  # fmt: skip
        """The Compose services of the engine."""
        self.cluster: Cluster | None = None
        """The Swarm services of the cluster, where the engine manages one (start-up says)."""
        self.backends: list[Backend] = [self.compose]
        self._owed: list[Backend] = []
        """The backends whose round was skipped for want of a current view or of their lease:
        the round runs as soon as one of them acts."""

    async def serve(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then shut down within the configured bound."""
        await self._startup()
        try:
            async with asyncio.TaskGroup() as tg:
                every = {k: v for backend in self.backends for k, v in backend.parts().items()}
                parts = [self._supervised(tg, name, run) for name, run in every.items()]
                notifier = self._supervised(tg, "MQTT notifier", self.notifier.run)
                hooks = [self._supervised(tg, name, run)
                         for name, run in self.webhooks.parts().items()]  # fmt: skip
                others = [self._supervised(tg, "metric topics", self.signals.run),
                          self._supervised(tg, "commands", self.commands.run)]  # fmt: skip
                if self.settings.api.enabled:
                    others.append(self._supervised(tg, "API", self.api.serve))
                others.append(tg.create_task(self._wake_on(stop), name="stop"))
                await self._main_loop(tg, stop)
                await self._shutdown(parts, [notifier, *hooks])
                for task in others:
                    task.cancel("shutdown")
        finally:
            for backend in self.backends:
                backend.close()
            await self.docker.close()

    def _supervised(
        self, tg: asyncio.TaskGroup, part: str, run: Callable[[], Awaitable[None]]
    ) -> asyncio.Task[None]:
        return tg.create_task(self.faults.supervise(part, run), name=part)

    def _fault(self, part: str, exc: BaseException) -> None:
        """A part of the process failed: told on `<prefix>/events` and counted, once a fault."""
        self.metrics.faulted(part)
        self.notifier.fault(part, exc, instance=self.compose.instance())

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
                sources=self.signals.options,
                faults=self.faults,
                clock=self.clock,
                instance=self.instance,
            )
            # The Swarm services are rounded first, as they always were: their listing is one
            # engine call, and the Compose services' sampling reads every container.
            self.backends.insert(0, self.cluster)
            logger.info("swarm services too: lease %s", self.settings.cluster_lease)

    def _all(self) -> dict[ServiceKey, Controller]:
        return {k: c for backend in self.backends for k, c in backend.fleet.items()}

    async def _main_loop(self, tg: asyncio.TaskGroup, stop: asyncio.Event) -> None:
        next_tick = time.monotonic()
        while not stop.is_set():
            with self._round_guard():
                await self._round(tg)
            next_tick = max(next_tick + self.settings.interval, time.monotonic())
            if await self._between_rounds(tg, stop, next_tick):
                next_tick = time.monotonic()  # the rounds keep their interval from this one

    async def _round(self, tg: asyncio.TaskGroup) -> None:
        started = time.monotonic()
        acting = [b for b in self.backends if b.acts()]
        self._owed = [b for b in self.backends if b not in acting]
        for backend in self.backends:
            # Another instance acts while this one does not lead: what it did meanwhile is
            # read afresh when this one leads again, never undone from what this one last
            # decided.
            if not backend.leads():
                backend.fleet.release()
        for backend in acting:
            await backend.round(tg)
        if acting:
            # The services' metric sources, followed for the rounds to come as soon as the
            # round made their controllers, not a round later; and never while this instance
            # stands by (its controllers released), so that taking the lease back (after an
            # engine restart) finds each source's live value, not one handed over anew on a
            # new subscription (of unknown age, which holds the count a round).
            metrics = [c.spec.metric for c in self._all().values() if c.spec and c.spec.metric]
            with self.faults.guard("metric sources"):
                await self.signals.follow(metrics)
        if self._owed:
            logger.debug("a view not current, or another instance holds a lease")
        self.notifier.standing(
            Standing(
                leading=self.compose.leads(),
                swarm_leading=self.cluster.leads() if self.cluster is not None else None,
                standing_by=next((p for b in self.backends if (p := b.problem())), None),
            )
        )
        self.api.round_done()
        if acting:
            self.metrics.rounded(time.monotonic() - started)

    async def command(self, body: object, who: str) -> dict[str, Any]:
        """An operator's command (the API's or MQTT's JSON): the service it names, recorded
        with its control and obeyed from the next look, the control in force answered.
        ControlError says why not, with the HTTP status it stands for."""
        name, control = controls.command(body, wall=self.clock.wall(), who=who)
        followed = {str(k): (k, b) for b in self.backends for k in b.followed()}
        found = [followed[n] for n in named(name, followed)]
        if not found:
            raise ControlError(f"no service {name!r} among those followed", 404)
        if len(found) > 1:
            names = ", ".join(sorted(str(k) for k, _ in found))
            raise ControlError(f"{name!r} names several services: {names}", 409)
        key, backend = found[0]
        controller = backend.fleet.get(key)
        controls.check(control, controller.spec if controller else None, str(key))
        await backend.control(key, control)
        shown = control.to_dict() if control.in_force(self.clock.wall()) else None
        return {"service": str(key), "control": shown}

    def _arrived(self, source: MetricSource) -> None:
        """A pushed value of `source` arrived: the services that read it decide now (a look
        between rounds, the same rules as a round's), not up to an interval later."""
        for backend in self.backends:
            backend.asked(k for k, c in backend.fleet.items() if c.spec and c.spec.metric == source)
        self._wake.set()

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    async def _between_rounds(
        self, tg: asyncio.TaskGroup, stop: asyncio.Event, next_tick: float
    ) -> bool:
        """Until the next round (or a stop): services the backends' events named are mended at
        once, so that what Compose removed or replaced is back in the time the engine takes,
        not at the next round; and a round skipped for want of a view runs once there is one
        (True: that round is early); a service acted on is looked at again as soon as its new
        sample windows are long enough to measure."""
        while not stop.is_set():
            dues = [d for b in self.backends if (d := b.due()) is not None]
            until = min([next_tick, *dues])
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(until - time.monotonic()):
                    await self._wake.wait()
            self._wake.clear()
            if stop.is_set() or time.monotonic() >= next_tick:
                return False
            if any(b.acts() for b in self._owed):
                return True  # a view is current again, or a lease taken: the round now
            if dues and time.monotonic() >= min(dues):
                # A service just acted on is measurable again: it decides on its new count
                # now, not at the next round (up to an interval later).
                for backend in self.backends:
                    await backend.look(tg)
                continue
            await asyncio.sleep(_SETTLE)  # the rest of one command's events
            for backend in self.backends:
                backend.mend(tg)
        return False

    def _observed(self) -> Observed:
        """What /metrics reads at each scrape: the services' states, the leases, the outbox."""
        controllers = self._all()
        return Observed(
            states={k: c.state for k, c in controllers.items() if c.state is not None},
            tallies={k: c.tally for k, c in controllers.items()},
            leading={"swarm" if b is self.cluster else "compose": b.leads() for b in self.backends},
            outbox=self.notifier.pending, dropped=self.notifier.dropped,
            refused=self.notifier.refused,
        )  # fmt: skip

    def unready(self) -> str | None:
        """Why this instance cannot act, or None: what /readyz answers."""
        return next((why for b in self.backends if (why := b.unready()) is not None), None)

    def _header(self) -> dict[str, Any]:
        """The instance's own state, as /status and the page's stream begin."""
        compose, *others = [self.compose, *(b for b in self.backends if b is not self.compose)]
        return {
            "instance": self.instance,
            **compose.header(),
            "dry_run": self.settings.dry_run,
            "mqtt": {
                "connected": self.notifier.connected,
                "pending": self.notifier.pending,
                "dropped": self.notifier.dropped,
                "refused": self.notifier.refused,
            },
            **({"webhooks": self.webhooks.status()} if self.webhooks.senders else {}),
            **{k: v for b in others for k, v in b.header().items()},
        }

    def status(self, decisions: int | None = None) -> dict[str, Any]:
        """Every service's state and its recent decisions, newest last (the last `decisions`
        of them; None: all it keeps): what /status serves."""
        kept = HISTORY if decisions is None else max(0, decisions)
        return {
            **self._header(),
            "services": {
                str(key): {
                    "state": c.state.to_dict(),
                    "decisions": [e.to_dict() for e in list(c.history)[-kept:]] if kept else [],
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
        services = {str(k): c for k, c in self._all().items()}
        found = named(name, services)
        return (found[0], services[found[0]].timeline) if len(found) == 1 else None

    async def _shutdown(
        self, parts: list[asyncio.Task[None]], outlets: list[asyncio.Task[None]]
    ) -> None:
        """`outlets`: the MQTT notifier's and the webhooks' delivery, drained last."""
        inflight = [c.inflight for c in self._all().values() if c.inflight is not None]
        if inflight:
            logger.info("waiting for %d scale actions to finish", len(inflight))
            _, pending = await asyncio.wait(inflight, timeout=self.settings.shutdown_timeout)
            for task in pending:
                task.cancel(f"shutdown: not finished within {self.settings.shutdown_timeout}s")
        for controller in self._all().values():
            controller.keep()
        # The backends' parts go once nothing acts any more (an action refreshes the view);
        # a lease is released on the way out.
        for task in parts:
            task.cancel("shutdown")
        self.notifier.close()
        self.webhooks.close()
        # Together, within one bound: what is left stays in their outbox files for the next start.
        _, pending_outlets = await asyncio.wait(outlets, timeout=5.0)
        for task in pending_outlets:
            task.cancel("shutdown: MQTT or a webhook did not flush within 5s")


def named(name: str, services: Iterable[str]) -> list[str]:
    """The services (`project/service`) that `name` names: itself where it is one, else every
    service of that name, in any project or stack (one, or several a caller must tell apart)."""
    every = list(services)
    return [name] if name in every else [s for s in every if s.endswith(f"/{name}")]
