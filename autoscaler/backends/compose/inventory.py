"""The live set of opted-in containers, kept from one listing plus the engine's event stream.

    connect ──► list (since = engine time) ──► follow events ──► (stream ends, fails,
       ▲                                           │ list again      or is found silent)
       │                                           ▼ every `relist`        │
       └──────────────── backoff, `ready` cleared ◄────────────────────────┘

Events are requested from the moment just before the listing, so nothing that happens between
the two is missed; replaying an event twice is harmless because every event re-inspects its
container. While disconnected `ready` is clear and the control loop does not act.

An instance given projects (AUTOSCALER_PROJECTS) keeps only their containers: those of other
projects on the engine are left out of the listing before any is inspected, and their events are
not read further than their labels. (On an engine that runs a thousand other containers, the
listing inspected every one of them before the instance was ready, and each of their events
cost an inspect.)

A stream can die without a word (a `tcp://` engine behind a NAT that forgot the connection):
every `relist` seconds the containers are listed again, and a difference from the view that is
still there a moment later is what the stream failed to say. The stream is then followed
afresh, from a new listing.

Events are read in the order they come, but the inspect an event needs does not hold the reading
of the next: a slow start's inspect must not hold the view of every other container. (On a
loaded engine an inspect can wait seconds behind a container that is slow to start. With each
event's inspect awaited before the next event was read, the whole view stood still meanwhile,
and a round saw only part of a `docker compose up --scale web=5`: without the user's newest
container, it took clones away.) Inspects run side by side, at most _LIST_CONCURRENCY at once,
and an answer older than the view is dropped (see _refresh). What would mislead if applied ahead
of the events read before it is not: a stop asked shows at once, from the event itself, and a
container leaves the view only after those events are applied (see _settled). A container's
events are told (`on_event`) in the order they were read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import aiodocker

from autoscaler import labels
from autoscaler.backends.docker.client import (
    LIBRARY_ERRORS,
    engine_errors,
    label_filter,
    unanswered,
)
from autoscaler.backends.docker.replicas import from_inspect
from autoscaler.control.replicas import Replica
from autoscaler.errors import Faults, Reconnect
from autoscaler.labels import ServiceKey

logger = logging.getLogger(__name__)

_BACKOFF_START, _BACKOFF_CAP = 0.5, 30.0
_AWAY = 0.5  # seconds between tries while the engine does not answer at all
_SETTLE = 1.0  # seconds for the events of a change the listing saw to arrive
_LIST_CONCURRENCY = 16
# The actions that change what a decision reads: a container's existence, state, health,
# limits, name. Asked of the engine by name, so that what changes none of it (a health check's
# exec_create/exec_start/exec_die three times an interval, attach, resize, top, ...) is never
# sent, and never costs an inspect.
_ACTIONS = (
    "create", "start", "restart", "die", "kill", "stop", "oom", "destroy", "pause", "unpause",
    "update", "rename", "health_status",
)  # fmt: skip


# The signals of a stop: the engine's `kill` event names the signal sent, and only these (or the
# container's own stop signal) ask it to end; `docker kill -s HUP` asks it to reload.
_STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGQUIT, signal.SIGKILL, signal.SIGTERM})


class SilentStream(Exception):
    """The event stream said nothing of changes a listing found."""


@dataclass
class _Queue:
    """The events of one container read and not told yet: each is told after the one before."""

    last: asyncio.Event  # set once the newest of them is told
    gone: bool = False  # one of them told that it is gone: the rest do not tell it again


class Inventory:
    def __init__(
        self,
        docker: aiodocker.Docker,
        *,
        on_event: Callable[[str, Replica], None] | None = None,
        on_ready: Callable[[], None] | None = None,
        faults: Faults | None = None,
        relist: float = 60.0,
        projects: frozenset[str] = frozenset(),
    ) -> None:
        self._docker = docker
        self._relist = relist
        self._projects = projects  # none: every project's
        self._unreadable: set[str] = set()  # containers whose inspect we could not read
        self._on_event = on_event
        self._on_ready = on_ready
        self._faults = faults or Faults()
        self._replicas: dict[str, Replica] = {}
        # How each container last ended, told apart by its events: asked to stop (`kill`,
        # `stop`: its owner, `docker compose stop`) or not (a crash, an `oom`).
        self._asked: dict[str, float] = {}  # id -> when its stop was asked (wall clock)
        self._oomed: set[str] = set()
        self._ended: dict[str, bool] = {}  # id -> crashed, as its last `die` said
        self._stop_signals: dict[str, str] = {}  # id -> its own stop signal, where it has one
        # Inspects are numbered as they begin: an answer older than the one a container's view
        # holds is not applied (see _refresh). A container's view is as new as the last inspect
        # begun before it was read (its own, a listing's, or every one begun before its
        # `destroy` was read): an answer to that inspect or an earlier one is dropped.
        self._inspects = 0
        self._fresh: dict[str, int] = {}  # id -> the last inspect its view is not older than
        self._asking: set[int] = set()  # the inspects begun and not yet applied
        self._slots = asyncio.Semaphore(_LIST_CONCURRENCY)  # events' inspects asked at once
        self._queued: dict[str, _Queue] = {}  # id -> its events read and not told yet
        self._read = 0  # events read, each numbered as it is
        self._unapplied: dict[int, asyncio.Event] = {}  # read and not applied, in read order
        self.ready = asyncio.Event()
        """Set while the listing is complete and the event stream is followed."""
        self.events_seen = 0
        """Engine events applied since start: shown in /status."""

    def services(self) -> dict[ServiceKey, list[Replica]]:
        """Replicas grouped by service, each list in container-number order."""
        grouped: dict[ServiceKey, list[Replica]] = defaultdict(list)
        for replica in self._replicas.values():
            grouped[replica.key].append(replica)
        for replicas in grouped.values():
            replicas.sort(key=lambda r: (r.number is None, r.number or 0, r.name))
        return dict(grouped)

    def get(self, container_id: str) -> Replica | None:
        return self._replicas.get(container_id)

    def _elsewhere(self, container_labels: Mapping[str, str]) -> bool:
        """Of a project this instance does not manage (by its labels alone: a listing's, an
        event's or an inspect's), as its service's key names the project (the container's name
        names only a service)."""
        project = labels.service_key(container_labels, "").project
        return bool(self._projects) and project not in self._projects

    async def _listed(self) -> list[Any]:
        """The containers of ours as the engine lists them now."""
        listed = await self._docker.containers.list(all=True, filters=label_filter(labels.ENABLE))
        return [c for c in listed if not self._elsewhere(c._container.get("Labels") or {})]

    async def run(self) -> None:
        """Follow the engine forever; reconnect with capped, jittered backoff, or every _AWAY
        seconds while the engine does not answer at all."""
        retry = Reconnect(_BACKOFF_START, _BACKOFF_CAP)
        away = False  # the last try found no engine to answer it
        while True:
            try:
                await self._follow()
            except* LIBRARY_ERRORS as group:
                was, away = away, unanswered(group)
                if not (was and away):  # told once while the engine is away
                    logger.warning(
                        "engine connection lost (%s); %s",
                        "; ".join(str(e) or type(e).__name__ for e in group.exceptions),
                        "following it again as soon as it answers"
                        if away
                        else f"retrying in about {retry.delay:.1f}s",
                    )
            except* SilentStream as group:
                away = False
                logger.warning("%s; following it afresh", group.exceptions[0])
            else:
                away = False
                logger.warning("engine event stream ended; re-listing in about %.1fs", retry.delay)
            if self.ready.is_set():
                # It had been working: start the backoff over rather than wait the capped delay.
                self.ready.clear()
                retry.reset()
            # An engine that does not answer (restarting) costs nothing to ask again: a doubling
            # backoff would find it back up to half its cap late (the services unmanaged
            # meanwhile). One that answers and fails is given the backoff.
            await asyncio.sleep(_AWAY if away else retry.next())

    async def _follow(self) -> None:
        info = await self._docker.system.info()
        since = f"{labels.timestamp(info.get('SystemTime')) - 1:.6f}"
        await self.resync()
        subscriber = self._docker.events.subscribe(create_task=False)  # type: ignore[no-untyped-call]
        filters = label_filter(labels.ENABLE, type=["container"], event=list(_ACTIONS))
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._docker.events.run(since=since, filters=filters))
            tg.create_task(self._audit())
            self.ready.set()
            if self._on_ready is not None:
                self._on_ready()
            logger.info("following engine events; %d opted-in containers", len(self._replicas))
            while (event := await subscriber.get()) is not None:
                self.events_seen += 1
                # Tasks begin in the order they are made: each event's first step (what it says
                # of how its container ends, its place in the order) is taken in reading order.
                tg.create_task(self._applied(event))

    async def _applied(self, event: Mapping[str, Any]) -> None:
        try:
            await self._apply(event)
        except LIBRARY_ERRORS:
            raise  # the engine went away: reconnect and list again
        except Exception as exc:
            # An event we cannot read must not stop us reading the next one.
            self._faults.failed("engine events", exc)

    async def _audit(self) -> None:
        """List again every `relist` seconds; raise SilentStream when the listing and the view
        still differ about the same containers a moment after they first did."""
        suspects: set[str] = set()
        while True:
            await asyncio.sleep(_SETTLE if suspects else self._relist)
            found = {
                c.id: c._container.get("State")
                for c in await self._listed()
                if labels.opted_in(c._container.get("Labels") or {})
            }
            view = {r.id: r.status for r in self._replicas.values()}
            differ = {i for i in found.keys() | view.keys() if found.get(i) != view.get(i)}
            differ -= self._unreadable
            if missed := differ & suspects:
                raise SilentStream(
                    f"the engine's event stream missed changes of {len(missed)} containers "
                    f"(the view had {', '.join(sorted(view.get(i) or 'none' for i in missed))}, "
                    f"the engine {', '.join(sorted(found.get(i) or 'none' for i in missed))})"
                )
            suspects = differ

    async def resync(self) -> None:
        """Replace the whole view with a fresh listing. The listing and its inspects are
        numbered as a refresh's are: a container's view that a refresh (the actuator's, of a
        clone it just made) or its `destroy` made newer meanwhile is kept."""
        listing = self._begin()
        begun: dict[str, int] = {}
        try:
            listed = await self._listed()
            slots = asyncio.Semaphore(_LIST_CONCURRENCY)

            async def inspect(container_id: str) -> Replica | None:
                async with slots:
                    begun[container_id] = self._begin()
                    return await self._inspect(container_id)

            found = await asyncio.gather(*(inspect(c.id) for c in listed))
            replicas: dict[str, Replica] = {}
            for container, replica in zip(listed, found, strict=True):
                if self._fresh.get(container.id, 0) >= begun[container.id]:
                    if (newer := self._replicas.get(container.id)) is not None:
                        replicas[container.id] = newer
                    continue
                self._fresh[container.id] = begun[container.id]
                if replica is not None:
                    replicas[container.id] = replica
            for container_id, replica in self._replicas.items():
                if container_id not in begun and self._fresh.get(container_id, 0) > listing:
                    # Made after the listing began, and seen by a refresh since: it is there.
                    replicas[container_id] = replica
            self._replicas = replicas
        finally:
            self._asking.difference_update({listing, *begun.values()})
        self._unreadable &= {c.id for c in listed}
        self._oomed &= self._replicas.keys()
        self._asked = {i: t for i, t in self._asked.items() if i in self._replicas}
        self._ended = {i: c for i, c in self._ended.items() if i in self._replicas}
        self._stop_signals = {i: s for i, s in self._stop_signals.items() if i in self._replicas}
        self._forget_gone()

    def _begin(self) -> int:
        """Number an inspect (or a listing) as it begins; it is asked until applied."""
        self._inspects += 1
        self._asking.add(self._inspects)
        return self._inspects

    def _forget_gone(self) -> None:
        """Forget the numbers of containers gone from the view that no answer still awaited
        could be older than: nothing is left for them to drop."""
        oldest = min(self._asking, default=self._inspects + 1)
        self._fresh = {i: n for i, n in self._fresh.items() if i in self._replicas or n >= oldest}

    async def refresh(self, container_id: str) -> Replica | None:
        """Re-inspect one container, e.g. right after the actuator created it; an engine that
        fails to answer is an EngineError."""
        with engine_errors(f"refreshing the view of container {container_id[:12]}"):
            return await self._refresh(container_id)

    async def _refresh(self, container_id: str, read: int | None = None) -> Replica | None:
        """`read`: the event it is for (see _apply). Then it is one of at most _LIST_CONCURRENCY
        inspects at once, and an answer that the container is gone is applied once every event
        read before it is (see _settled)."""
        begun = 0
        try:
            async with self._slots if read is not None else contextlib.nullcontext():
                begun = self._begin()  # as it is sent: a later number is a newer answer
                replica = await self._inspect(container_id)
            if replica is None and read is not None:
                await self._settled(read)
        finally:
            self._asking.discard(begun)
        if self._fresh.get(container_id, 0) >= begun:
            # An inspect begun later has answered first, or the container's `destroy` was read
            # meanwhile: this one's answer is older than the view. (An event's refresh, read
            # late on a loaded engine, answering after the actuator's own refresh of the clone
            # it just started would show it as never started, and have it taken for an orphan
            # and replaced: one over max. One answered after the `destroy` would bring a
            # removed container back.)
            return self._replicas.get(container_id)
        self._fresh[container_id] = begun
        if replica is None:
            self._replicas.pop(container_id, None)
        else:
            self._replicas[container_id] = replica
        return replica

    async def _inspect(self, container_id: str) -> Replica | None:
        try:
            data = await self._docker.containers.get(container_id)
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                return None
            raise
        try:
            replica = from_inspect(data._container)
            stop_signal = str((data._container.get("Config") or {}).get("StopSignal") or "")
        except Exception as exc:
            # One container we cannot read is left out; every other one is still seen.
            self._faults.failed(f"container {container_id[:12]}", exc)
            self._unreadable.add(container_id)
            return None
        if container_id in self._unreadable:
            self._unreadable.discard(container_id)
            self._faults.ok(f"container {container_id[:12]}")
        if not labels.opted_in(replica.labels) or self._elsewhere(replica.labels):
            return None
        self._stop_signals[replica.id] = stop_signal
        if replica.running and replica.id in self._asked:
            if replica.started_at > self._asked[replica.id]:
                # Started again since the stop was asked, its `start` event missed (the
                # engine's own restart stops every container, and its restart policy starts
                # them before the stream is read again): no stop under way.
                del self._asked[replica.id]
            else:
                replica = replace(replica, stopping_since=self._asked[replica.id])
        if replica.status in ("exited", "dead") and replica.id in self._ended:
            # Its `die` event says; of a container that ended before we watched, its state
            # (replicas.crashed_by_its_state).
            replica = replace(replica, crashed=self._ended[replica.id])
        return replica

    def _ending(
        self, action: str, container_id: str, sent: str | None = None, at: float = 0.0
    ) -> None:
        """Keep what the events say of how a container ends: a `die` after a `kill` or `stop`
        request, or followed by the engine's `stop`, is its owner's stop; one without, or after
        an `oom`, a crash. `sent`: the signal a `kill` event names; `at`: when it happened."""
        if action == "kill" and not self._stops(container_id, sent):
            return
        if action in ("kill", "stop"):
            self._asked.setdefault(container_id, at or time.time())
            if action == "stop" and container_id in self._ended and container_id not in self._oomed:
                # The engine says `stop` after the `die` it asked for: a `die` seen without its
                # `kill` (the events read back from just before this process started) was still
                # its owner's stop, not a crash.
                self._ended[container_id] = False
        elif action == "oom":
            self._oomed.add(container_id)
        elif action == "die":
            asked = container_id in self._asked and container_id not in self._oomed
            self._ended[container_id] = not asked
        elif action in ("start", "destroy"):
            self._asked.pop(container_id, None)
            self._oomed.discard(container_id)
            self._ended.pop(container_id, None)

    def _stops(self, container_id: str, sent: str | None) -> bool:
        """Whether the signal a `kill` sent asks the container to stop: a stop signal, or the
        container's own (`stop_signal`). An event without one is taken as a stop."""
        if not sent or not sent.isdigit():
            return True
        number = int(sent)
        if number in _STOP_SIGNALS:
            return True
        own = self._stop_signals.get(container_id, "")
        if own.isdigit():
            return number == int(own)
        name = own.upper() if own.upper().startswith("SIG") else f"SIG{own.upper()}"
        return name in signal.Signals.__members__ and number == signal.Signals[name].value

    async def _apply(self, event: Mapping[str, Any]) -> None:
        """Apply one event to the view and tell it (`on_event`) after the container's events
        read before it."""
        action = str(event.get("Action", "")).split(":")[0]
        container_id = event.get("id") or event.get("Actor", {}).get("ID", "")
        if action not in _ACTIONS or not container_id:
            return
        logger.debug("event %s %s", event.get("Action"), container_id[:12])
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        if labels.ENABLE in attributes and self._elsewhere(attributes):
            return  # another project's (a container event's attributes carry its labels)
        at = float(event.get("timeNano") or 0) / 1e9
        self._ending(action, container_id, attributes.get("signal"), at)
        known = self._replicas.get(container_id)
        asked = self._asked.get(container_id, 0.0)
        if action in ("kill", "stop") and asked and known is not None and known.serving:
            # A stop asked is in the view as soon as its event is read, not once its inspect
            # answers: a later event may be applied first. (A `docker compose down` whose
            # template's `destroy` was applied while its clones' inspects were still out would
            # show clones without a template, none of them on its way out: an error.)
            self._replicas[container_id] = known = replace(known, stopping_since=asked)
        self._read += 1
        read, applied, told = self._read, asyncio.Event(), asyncio.Event()
        self._unapplied[read] = applied
        queue = self._queued.get(container_id)
        before = queue.last if queue is not None else None
        if queue is None:
            queue = self._queued[container_id] = _Queue(told)
        queue.last = told
        try:
            if action == "destroy":
                # Every inspect begun before now is older than this: one still unanswered must
                # not bring the container back.
                self._fresh[container_id] = self._inspects
                await self._settled(read)
                replica = self._replicas.pop(container_id, None)
                self._forget_gone()
            else:
                replica = await self._refresh(container_id, read)
                if replica is None and known is not None:
                    # Removed before its event was read (`docker compose up` stops and removes
                    # at once): told as its destroy now, which then finds nothing left to tell.
                    action, replica = "destroy", known
            del self._unapplied[read]
            applied.set()
            if before is not None:
                await before.wait()
            if action == "destroy":
                # An earlier event of it may have found it removed already, and told so.
                replica = None if queue.gone else replica
                queue.gone = True
            if replica is not None and self._on_event is not None:
                self._on_event(action, replica)
        finally:
            self._unapplied.pop(read, None)
            applied.set()
            told.set()
            if queue.last is told:
                del self._queued[container_id]

    async def _settled(self, read: int) -> None:
        """Until every event read before event `read` is applied. A container leaves the view
        no sooner: applied ahead of them, a `docker compose up` that replaced the template
        (its new container's `create` still unanswered, the old one's `destroy` applied) would
        show the clones without a template, an error."""
        for earlier, applied in list(self._unapplied.items()):
            if earlier >= read:
                break
            await applied.wait()
