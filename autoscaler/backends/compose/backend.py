"""The Compose backend on one engine, as the app drives it: the view (inventory.py), the
samples (backends/docker/collector.py), the lease (lease.py), the writer (actuator.py) and the
fleet of its services' controllers.

    parts()    its long-lived parts, each supervised by the app: the event follower, the lease
    acts()     its view is current and this instance holds its lease: its services are acted on
    round(tg)  sample every opted-in container, then step each service's controller
    control()  an operator's pause, hold or resume of a service, recorded on the engine
    look(tg)   between rounds, as soon as windows measure: a service whose replicas became held
               at their CPU limit since the round, and one that grew while held there (once the
               load has moved onto its new replicas, settle.py), are sampled and stepped then
    mend(tg)   between rounds, the services its engine's events named: a replica gone (removed,
               crashed) or one of the user's containers started (a template replaced or
               started again) is mended at once, never at the next round
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import aiodocker

from autoscaler.backends.compose.actuator import Actuator
from autoscaler.backends.compose.controls import ControlRecords
from autoscaler.backends.compose.inventory import Inventory
from autoscaler.backends.compose.lease import Lease
from autoscaler.backends.docker.collector import Collector
from autoscaler.backends.docker.fence import TERM, Fence
from autoscaler.backends.docker.settle import Settling
from autoscaler.control.context import Clock, Context
from autoscaler.control.controls import Control, ControlError
from autoscaler.control.fleet import Fleet
from autoscaler.control.keep import Keep
from autoscaler.control.ports import Meter, Notices
from autoscaler.control.replicas import Replica, Sample
from autoscaler.control.spec import MetricSource, Sources
from autoscaler.control.state import replica_samples
from autoscaler.errors import Faults
from autoscaler.labels import ServiceKey
from autoscaler.settings import Settings
from policies.base import Signal
from policies.saturation import held_back

_LATE = 0.05
"""Seconds past a window's shortest measurable length at which it is looked at: a timer may
fire a little early."""
_STALE_ROUNDS = 3
"""Intervals after which the controls last read are stale: a round waits for the engine's
listing then (a listing that failed, or is slower than an interval, leaves them to age)."""
ASKED = 0.2
"""Seconds between two looks at a service for values pushed to its metric: a publisher may push
faster than anything can act on it, and each look samples the service."""

logger = logging.getLogger(__name__)


class Compose:
    def __init__(
        self,
        docker: aiodocker.Docker,
        settings: Settings,
        *,
        notifier: Notices,
        metrics: Meter,
        signal: Callable[[MetricSource], Signal],
        sources: Sources,
        faults: Faults,
        clock: Clock,
        wake: Callable[[], None],
        instance: str,
    ) -> None:
        """`wake`: tells the app's loop to look before its next round; `instance`: this
        instance's name, the lease's holder and the `instance` of what it tells."""
        self._settings = settings
        self._notifier = notifier
        self._metrics = metrics
        self._faults = faults
        self._wake = wake
        self.inventory = Inventory(
            docker, on_event=self._engine_event, on_ready=wake, faults=faults,
            relist=settings.relist, projects=settings.projects,
        )  # fmt: skip
        self.lease: Lease | None = None
        if settings.lease.enabled:
            self.lease = Lease(
                docker, settings.engine_lease, settings.lease.ttl, projects=settings.projects,
                faults=faults, on_lead=wake, holder=instance,
            )  # fmt: skip
        self.collector = Collector(docker, interval=settings.interval)
        # Every write of an action is fenced by the lease term it was decided under.
        self.fence = Fence(self.lease.held if self.lease is not None else lambda: None)
        self.controls = ControlRecords(docker)
        self.context = Context(
            actuator=Actuator(
                docker,
                concurrency=settings.clone_concurrency,
                timeout=settings.engine_timeout,
                fence=self.fence,
                current=self.inventory.get,
            ),
            refresh=self.inventory.refresh,
            restart=self.collector.restart,
            view=lambda key: self.inventory.services().get(key, []),
            notifier=notifier,
            metrics=metrics,
            dry_run=settings.dry_run,
            instance=lambda: instance,
            signal=signal,
            sources=sources,
            heartbeat=settings.mqtt.heartbeat,
            band=settings.mqtt.state_band,
            clock=clock,
            interval=settings.interval,
            keep=Keep(settings.state_dir) if settings.state_dir else None,
            look=self._look,
            acted=self._acted,
            control=self.controls.get,
        )
        self.fleet = Fleet(self.context)
        self._to_mend: set[ServiceKey] = set()
        self._due: dict[ServiceKey, float] = {}  # service -> when it can be measured again
        self._asked: dict[ServiceKey, float] = {}  # service -> its last look for a pushed value
        self._waiting: set[ServiceKey] = set()  # pushed values that found their service acting
        self._settling: dict[ServiceKey, Settling] = {}  # service -> its new replicas watched
        self._watch_at: float | None = None  # when the round's windows measure
        self._watched: set[ServiceKey] = set()  # services with CPU limits, not held at the round
        self._reading: tuple[int | None, asyncio.Task[None]] | None = None
        """The controls' latest listing (one at a time), and the lease term it began under."""

    def parts(self) -> dict[str, Callable[[], Awaitable[None]]]:
        found: dict[str, Callable[[], Awaitable[None]]] = {"engine events": self.inventory.run}
        if self.lease is not None:
            found["engine lease"] = self.lease.run
        return found

    def leads(self) -> bool:
        """Whether this instance holds the engine's lease (there being one)."""
        return self.lease is None or self.lease.leading

    def acts(self) -> bool:
        """Its view of the engine is current, and it leads."""
        return self.inventory.ready.is_set() and self.leads()

    def problem(self) -> str | None:
        """Why this instance stands by (a lease it cannot take), or None."""
        return self.lease.problem if self.lease is not None else None

    def instance(self) -> str | None:
        return self.context.instance()

    async def round(self, tg: asyncio.TaskGroup) -> None:
        """Sample every opted-in container, then step each service's controller."""
        self._term()
        services = self._services()
        # The engine lists the controls while this process reads the cgroup files: the
        # listing's request is sent first (one at a time). The round decides on the controls
        # last read, and waits for this listing only where they are stale: never read under
        # this lease's term (a takeover: what the instance before was told), or too long ago.
        # Otherwise a loaded engine's late answer would hold every decision of the round.
        term = self.lease.term if self.lease is not None else None
        if self._reading is None or self._reading[1].done():
            self._reading = (term, tg.create_task(self._read_controls(term), name="controls"))
        await asyncio.sleep(0)
        # Without samples every service holds this round: none is scaled on nothing.
        samples = await self._sample(services)
        longest = _STALE_ROUNDS * self._settings.interval
        if self.controls.stale(term, time.monotonic(), longest):
            await asyncio.wait([self._reading[1]])
            if self._reading[0] != term:
                # That listing began under another term (this instance took the lease back
                # while it ran): read again, under this one.
                self._reading = (term, tg.create_task(self._read_controls(term), name="controls"))
                await asyncio.wait([self._reading[1]])
        got = samples or {}
        self.fleet.step(tg, services, got)
        self._watched = {
            key for key, rs in services.items() if _limited(rs, got) and not _held(rs, got)
        }
        self._watch_at = (
            time.monotonic() + self.collector.min_window + _LATE if self._watched else None
        )

    async def _read_controls(self, term: int | None) -> None:
        with self._faults.guard("reading controls"):
            # Operators' controls as the engine has them (one listing); where it cannot be
            # read, the last known ones hold.
            await self.controls.read(term, time.monotonic())

    async def _sample(
        self, services: dict[ServiceKey, list[Replica]], *, every: bool = True
    ) -> dict[str, Sample] | None:
        """These services' replicas sampled, the time it took counted; None when sampling
        failed (a fault, told once). `every`: all the services (a round), not a look's few."""
        started = time.perf_counter()
        samples = None
        with self._faults.guard("sampling"):
            replicas = [r for rs in services.values() for r in rs]
            samples = await self.collector.sample(replicas, every=every)
        self._metrics.sampled(time.perf_counter() - started)
        return samples

    def _look(self, key: ServiceKey, new: Sequence[str] = ()) -> None:
        """Look at this service again (`look`) once the windows just started are long enough
        to measure; with `new` replicas, once the load has moved onto them (settle.py) and the
        windows started then are."""
        now = time.monotonic()
        if new:
            self._due.pop(key, None)
            # Until the load has moved, a round measures none of its windows (they would hold
            # the ramp): they start again once it has.
            self.collector.forget(r.id for r in self.inventory.services().get(key, []))
            longest = max(self._settings.interval, self.collector.min_window)
            self._settling[key] = Settling(frozenset(new), now, longest, now)
        else:
            self._due[key] = now + self.collector.min_window + _LATE
        self._wake()

    def asked(self, keys: Iterable[ServiceKey]) -> None:
        """These services' metric was pushed a new value: each is looked at now, at most once
        in ASKED (a publisher may push faster than anything can act), unless it is due later
        already (its new replicas are not measurable yet: the look then sees the value too)."""
        now = time.monotonic()
        for key in keys:
            if key in self._settling or self._due.get(key, now) > now:
                continue
            self._due[key] = max(now, self._asked.get(key, -ASKED) + ASKED)
            self._asked[key] = self._due[key]

    def _acted(self, key: ServiceKey) -> None:
        if key in self._waiting:
            self._waiting.discard(key)
            self.asked([key])
            self._wake()

    def followed(self) -> list[ServiceKey]:
        return list(self._services())

    async def control(self, key: ServiceKey, control: Control) -> None:
        """Record an operator's command for the service, and look at it now: a pause or a hold
        takes effect at once, not at the next round."""
        replicas = self.inventory.services().get(key, [])
        if not replicas:
            raise ControlError(f"service {key}: no container of it on this engine", 404)
        if control.id and (latest := self.controls.get(key)) and latest.id == control.id:
            return  # the same command again (MQTT delivers at least once): set already
        await self.controls.write(key, control, replicas[0].image)
        self._due[key] = time.monotonic()
        self._wake()

    def due(self) -> float | None:
        watch = [] if self._watch_at is None else [self._watch_at]
        return min([*self._due.values(), *(s.next for s in self._settling.values()), *watch],
                   default=None)  # fmt: skip

    async def look(self, tg: asyncio.TaskGroup) -> None:
        """Read the counters of services whose load is moving onto new replicas, and of those
        that may have become held at their limit since the round; sample and step the services
        whose new windows are measurable now."""
        await self._settle()
        await self._watch()
        now = time.monotonic()
        keys = {k for k, at in self._due.items() if at <= now}
        for key in keys:
            del self._due[key]
        if not keys or not self.acts():
            return
        # A value pushed while its service acts (a queue read half-filled set the action off)
        # is looked at as soon as the action ends, not left to the next round: the value that
        # asked may not change again.
        acting = {k for k in keys if (c := self.fleet.get(k)) is not None and c.busy}
        self._waiting |= acting
        keys -= acting
        services = {k: rs for k, rs in self._services().items() if k in keys}
        if (samples := await self._sample(services, every=False)) is not None:
            self._term()
            self.fleet.look(tg, services, samples)

    async def _watch(self) -> None:
        """Once the round's windows measure: a service whose replicas are held at their CPU
        limit now, and were not at the round, is looked at now, not up to 0.4 of an interval
        later at the next round. One read of their counters a round (tens of microseconds a
        container); its windows go on."""
        if self._watch_at is None or time.monotonic() < self._watch_at:
            return
        self._watch_at = None
        busy = self._due.keys() | self._settling.keys()
        services = {k: rs for k, rs in self._services().items()
                    if k in self._watched and k not in busy}  # fmt: skip
        previews = None
        with self._faults.guard("sampling"):
            previews = await self.collector.preview(r for rs in services.values() for r in rs)
        for key, replicas in services.items():
            # At their limit, not only throttled: a window that began just before the load
            # rose reads short of it, and its floor would fall a step short; the round, later,
            # holds more of the rise.
            if previews and _held(replicas, previews, to_the_limit=True):
                logger.debug("%s: held at its CPU limit since the round: looked at now", key)
                self._due[key] = time.monotonic()

    async def _settle(self) -> None:
        """A read of each watched service whose next is due; where the load has moved, its
        windows start again now, and its look comes once they measure."""
        now = time.monotonic()
        for key in [k for k, s in self._settling.items() if s.next <= now]:
            replicas = self.inventory.services().get(key, [])
            readings = None
            with self._faults.guard("sampling"):
                readings = await self.collector.peek(replicas)
            # Counters that cannot be read say nothing of the load: the windows as they are.
            settling = self._settling[key]
            starting = {r.id for r in replicas if r.health == "starting"}
            if readings is None or settling.read(readings, time.monotonic(), starting):
                del self._settling[key]
                waited = time.monotonic() - settling.began
                logger.debug("%s: the windows start again %.2fs after the scale-up, %s its %d new "
                             "replicas", key, waited, "without waiting longer for" if
                             waited >= settling.longest else "as the load has moved onto",
                             len(settling.new))  # fmt: skip
                with self._faults.guard("sampling"):
                    await self.collector.restart(replicas)
                self._due[key] = time.monotonic() + self.collector.min_window + _LATE

    def _term(self) -> None:
        """The term the actions started from here on are decided under: each action's task
        copies it as it is made (fence.py)."""
        TERM.set(self.lease.term if self.lease is not None else None)

    def mend(self, tg: asyncio.TaskGroup) -> None:
        """Mend the services events named since the last look; while this instance does not
        act (a lease renewal answered late), they wait for it to act again."""
        if not self.acts():
            return
        keys, self._to_mend = self._to_mend, set()
        services = self.inventory.services()
        self._term()
        self.fleet.mend(tg, {k: services[k] for k in keys if k in services})

    def unready(self) -> str | None:
        """Why this instance cannot act on the engine's services, or None."""
        if not self.inventory.ready.is_set():
            return "engine view not current"
        if (problem := self.problem()) is not None:
            return f"standing by: {problem}"
        return None

    def header(self) -> dict[str, Any]:
        """Its part of the instance's state, as /status and the page's stream begin."""
        return {
            "ready": self.inventory.ready.is_set(),
            "engine_events": self.inventory.events_seen,
            "leading": self.leads(),
            **({"standing_by": problem} if (problem := self.problem()) else {}),
        }

    def close(self) -> None:
        self.collector.close()

    def _services(self) -> dict[ServiceKey, list[Replica]]:
        # Only the projects this instance manages: the inventory keeps no other.
        return self.inventory.services()

    def _engine_event(self, action: str, replica: Replica) -> None:
        """Engine events worth acting on between rounds, and worth telling: an OOM kill, as it
        happens."""
        gone = action == "destroy" or (action == "die" and replica.crashed)
        if gone or (action == "start" and not replica.is_clone):
            logger.debug("%s: %s of %s: mend at once", replica.key, action, replica.name)
            self._to_mend.add(replica.key)
            self._wake()
        if action == "oom":
            logger.warning("%s: %s was killed for lack of memory", replica.key, replica.name)
            self._notifier.event(
                replica.key,
                "oom",
                {"container": replica.name},
                instance=self.instance(),
                container=replica.id,
            )


def _limited(replicas: Sequence[Replica], samples: Mapping[str, Sample]) -> bool:
    """Whether the kernel tells when these replicas are held back (they have a CPU limit)."""
    return any((s := samples.get(r.id)) is not None and s.throttled is not None for r in replicas)


def _held(
    replicas: Sequence[Replica], samples: Mapping[str, Sample], *, to_the_limit: bool = False
) -> bool:
    """Whether at least half of these replicas were held at their CPU limit over their windows
    (policies/saturation.py's rule), judged on the measured ones."""
    measured = [s for s in replica_samples(replicas, samples) if s.cpu is not None]
    return held_back(measured, to_the_limit=to_the_limit)
