"""One actor per engine: a lease held as a container name.

    follower ──(lease gone, or its counter still for ttl: delete it, create it)──► leader
    follower ──(the lease names this instance: renew it)────────────────────────► leader
       ▲                                                                          │
       └───(a renewal fails, or the last good one is older than ttl/3 by our clock)┘

The engine has no key-value store outside swarm mode, but container names are unique and taking
one is atomic: whoever creates the container named `Settings.engine_lease` holds the lease. The
container is created, never started, from an image already on the engine: the one the autoscaler's
own container runs, else a managed container's, so that the lease needs no more of the Engine API
than the containers a socket proxy grants. Only an engine with neither gets a tiny image loaded
(an empty file system with nothing to run; the images API). The holder renews every ttl/6 by
`update`-ing a counter the container carries (its restart policy's retry count, inert in a
container that never runs).
Others poll it every ttl/6 and time the counter with their own clock, so no two clocks need
agree. If it stood still for a whole ttl, they delete that very container (by id: if someone
else already took over, the delete fails) and create their own (if someone was faster, the
create fails). The holder acts only while its last good renewal is younger than ttl/3, so it
stops at least 2/3 ttl before anyone may take over. A scale action already under way when that
happens sends nothing more: every write of an action is fenced by the lease's term (a new one at
every takeover) and by that same age (backends/docker/fence.py).

A holder that is provably dead is not waited out. The lease carries who holds it: the machine's
boot id, the pid namespace, the pid and its start time, and the container it runs in (if any)
with that container's start time. A watcher on the same boot and in the same pid namespace sees
at once whether that process still runs; any watcher can ask the engine whether the holder's
container still runs the same start. Either proof lets it take over in its next watch, within
one interval of starting (holder.py). Without a proof it waits out the ttl, so two live
instances still never both act.

A lease that names this instance is its own: a create of ours went through though its answer
was lost (a timeout, a dropped connection), and the watch that follows finds the lease, or a
create tried again is refused with a conflict and the lease it met names us. It is held from
then on, renewed at once, never waited out as a stranger's. The holder's name is unique to the
instance (`settings.instance_name`), so no other instance, even in this process, passes for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import tarfile
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiodocker

from autoscaler.backends.compose.holder import (
    CONTAINER,
    CONTAINER_START,
    container_gone,
    gone_here,
    identity,
)
from autoscaler.backends.docker.client import (
    LIBRARY_ERRORS,
    engine_errors,
    label_filter,
    unanswered,
)
from autoscaler.errors import EngineError, Faults
from autoscaler.labels import ENABLE
from autoscaler.settings import instance_name

logger = logging.getLogger(__name__)

IMAGE = "autoscaler-lease:1"
HOLDER = "autoscaler.lease.holder"
_PROJECTS = "autoscaler.lease.projects"
"""The projects its holder manages: a JSON list, or `*` for all."""
TERM = "autoscaler.lease.term"
"""The lease's term: it grows with every takeover (the fence on actions, fence.py)."""


def _term(data: Mapping[str, Any]) -> int:
    """A lease container's term (0 for one of a release that had none)."""
    try:
        return int((data["Config"].get("Labels") or {}).get(TERM, 0))
    except ValueError:
        return 0


def _managing(projects: frozenset[str]) -> str:
    return json.dumps(sorted(projects)) if projects else "*"


def _shared(ours: set[str] | None, theirs: set[str] | None) -> str:
    """The projects two leases both manage, in words (None: every project)."""
    if ours is None and theirs is None:
        return "every project"
    common = theirs if ours is None else ours if theirs is None else ours & theirs
    return ", ".join(sorted(common or ()))


def _managed(label: str) -> set[str] | None:
    """The projects a lease's label names; None for all (or a label we cannot read)."""
    try:
        found = json.loads(label) if label != "*" else None
    except ValueError:
        return None
    return {str(p) for p in found} if isinstance(found, list) else None


def _counter(lease: Mapping[str, Any]) -> int:
    """The count its holder renews the lease by (its restart policy's retry count)."""
    return int((lease["HostConfig"].get("RestartPolicy") or {}).get("MaximumRetryCount") or 0)


def _image_tar() -> bytes:
    """A `docker save` archive of an image with one empty layer and nothing to run."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w"):
        pass
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "config": {},
         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    ).encode()  # fmt: skip
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": [IMAGE], "Layers": ["layer.tar"]}]
    ).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, data in (("layer.tar", layer_bytes), (config_name, config),
                           ("manifest.json", manifest)):  # fmt: skip
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


class Lease:
    def __init__(
        self,
        docker: aiodocker.Docker,
        name: str,
        ttl: float,
        *,
        projects: frozenset[str] = frozenset(),
        proc: str = "/proc",
        faults: Faults | None = None,
        on_lead: Callable[[], None] | None = None,
        holder: str | None = None,
    ) -> None:
        """`on_lead`: called each time this instance begins to lead; `holder`: this instance's
        name (`settings.instance_name`, made here when not given)."""
        self._docker = docker
        self._faults = faults
        self._on_lead = on_lead
        self.problem: str | None = None
        """Why this instance cannot take or keep the lease, while it cannot."""
        self.name = name
        self.ttl = ttl
        self._projects = projects
        self._proc = proc
        self.holder = holder or instance_name()
        self._identity = identity(proc)
        self._mine: str | None = None  # id of the lease container we created
        self._counter = 0
        self._renewed = float("-inf")  # monotonic time of our last good renewal
        self._seen: tuple[str, int] | None = None  # (id, counter) of another's lease
        self._seen_since = 0.0
        self.term: int | None = None
        """The term of the lease this instance holds (its actions are fenced by it)."""

    @property
    def leading(self) -> bool:
        return self._mine is not None and time.monotonic() - self._renewed < self.ttl / 3

    def held(self) -> int | None:
        """The term this instance acts under now: its lease's, while it leads; else None."""
        return self.term if self.leading else None

    async def run(self) -> None:
        """Hold or watch the lease until cancelled; release it on the way out if held."""
        try:
            await self._overlapping()
            while True:
                was = self.leading
                try:
                    if self._mine is not None:
                        with engine_errors(f"cannot renew the lease {self.name}"):
                            await self._renew()
                    else:
                        # Its steps say what failed where they can; a call the engine dropped
                        # in between (the holder's container asked after, ours) is one still.
                        with engine_errors(f"cannot watch the lease {self.name}"):
                            await self._watch()
                except EngineError as exc:
                    self._failed(exc)
                else:
                    self._working()
                if self.leading and not was and self._on_lead is not None:
                    self._on_lead()
                await asyncio.sleep(self.ttl / 6)
        finally:
            await asyncio.shield(self._release())

    def _failed(self, exc: EngineError) -> None:
        """Why this instance cannot act, for /readyz, the page and the retained status; told
        once (an error event and an ERROR line) while it lasts."""
        if exc.__cause__ is not None and unanswered(exc.__cause__):
            # Nor could the lease's holder renew it while the engine did not answer (a restart
            # of the engine): its lapse is judged anew from the first answer, never over the
            # outage. An engine that answered with an error (a conflict, a 500) still had the
            # lease as it was: its lapse counts on.
            self._seen = None
        self.problem = str(exc)
        if self._faults is not None:
            self._faults.failed("engine lease", exc)
        else:
            logger.error("%s", exc)

    def _working(self) -> None:
        self.problem = None
        if self._faults is not None:
            self._faults.ok("engine lease")

    async def _overlapping(self) -> None:
        """Warn when another lease on this engine manages some of our projects: its holder and
        this instance would both act on them."""
        try:
            listed = await self._docker.containers.list(all=True, filters=label_filter(_PROJECTS))
        except LIBRARY_ERRORS as exc:
            logger.debug("lease %s: other leases not listed: %s", self.name, exc)
            return
        for other in listed:
            name = (other["Names"] or ["?"])[0].lstrip("/")
            if name == self.name:
                continue
            shared = _shared(set(self._projects) or None, _managed(other["Labels"][_PROJECTS]))
            if shared:
                logger.warning(
                    "lease %s of another instance manages %s too: both act on them; give each "
                    "instance AUTOSCALER_PROJECTS of its own", name, shared,
                )  # fmt: skip

    async def _renew(self) -> None:
        assert self._mine is not None
        self._counter += 1
        # Counted from before the write: a renewal answered late must not stretch our lead past
        # the moment another instance may take over.
        asked = time.monotonic()
        try:
            await self._docker._query_json(
                f"containers/{self._mine}/update",
                method="POST",
                data={"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": self._counter}},
            )
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                logger.warning("lease %s was taken over; following", self.name)
                self._mine = self.term = None
                return
            raise
        self._renewed = asked

    async def _lease(self) -> dict[str, Any] | None:
        """The lease container as the engine has it; None when there is none."""
        try:
            with engine_errors(f"cannot watch the lease: GET /containers/{self.name}/json"):
                found: dict[str, Any] = (await self._docker.containers.get(self.name))._container
        except EngineError as exc:
            if exc.status != 404:
                raise
            return None
        return found

    def _ours(self, data: Mapping[str, Any]) -> bool:
        return bool((data["Config"].get("Labels") or {}).get(HOLDER) == self.holder)

    async def _adopt(self, data: Mapping[str, Any]) -> None:
        """The lease names this instance: a create of ours went through though its answer was
        lost. It is ours, and renewed at once: as after any renewal, the lead runs from when the
        renewal was sent (a create that landed long ago buys nothing)."""
        logger.warning("lease %s names this instance (%s): its create went through though the "
                       "answer was lost; holding it", self.name, self.holder)  # fmt: skip
        self._mine, self._counter, self._seen = data["Id"], _counter(data), None
        self.term = _term(data)
        with engine_errors(f"cannot renew the lease {self.name}"):
            await self._renew()
        if self._mine is not None:
            logger.info("lease %s taken: this instance (%s) acts", self.name, self.holder)

    async def _watch(self) -> None:
        data = await self._lease()
        if data is None:
            await self._take(None)
            return
        if self._ours(data):
            await self._adopt(data)
            return
        labels = data["Config"].get("Labels") or {}
        dead = await self._dead(labels)
        if dead is not None:
            logger.warning("lease %s: its holder %s %s; taking over", self.name,
                           labels.get(HOLDER, "?"), dead)  # fmt: skip
            await self._take(data["Id"], _term(data))
            return
        seen = (data["Id"], _counter(data))
        now = time.monotonic()
        if seen != self._seen:
            self._seen, self._seen_since = seen, now
            return
        if now - self._seen_since >= self.ttl:
            holder = data["Config"].get("Labels", {}).get(HOLDER, "?")
            logger.warning("lease %s of %s lapsed %.0fs ago; taking over", self.name, holder,
                           now - self._seen_since)  # fmt: skip
            await self._take(data["Id"], _term(data))

    async def _dead(self, holder: Mapping[str, str]) -> str | None:
        """How we know the lease's holder is dead, or None if we cannot prove it."""
        if (here := gone_here(holder, self._identity, self._proc)) is not False:
            return here
        container = holder.get(CONTAINER)
        if not container:
            return None
        try:
            state = (await self._docker.containers.get(container))._container["State"]
        except aiodocker.DockerError as exc:
            return "is gone: its container no longer exists" if exc.status == 404 else None
        return container_gone(holder, state)

    async def _take(self, lapsed: str | None, after: int = 0) -> None:
        """Take the lease (over the `lapsed` one, of term `after`). Its term is the wall clock
        in nanoseconds, and above the lapsed one's: it grows with every takeover, even where a
        clock stepped back, and a lease released (gone, its term with it) and taken again
        later still gets a larger one."""
        if lapsed is not None:
            try:
                with engine_errors(f"cannot take the lease: DELETE /containers/{lapsed[:12]}"):
                    await self._docker.containers.container(lapsed).delete(force=True)
            except EngineError as exc:
                if exc.status in (404, 409):
                    return  # someone else is taking it over
                raise
        term = max(time.time_ns(), after + 1)
        labels = {HOLDER: self.holder, _PROJECTS: _managing(self._projects), TERM: str(term),
                  **self._identity}  # fmt: skip
        image = None
        if CONTAINER in labels:
            # Only a container this engine runs can be checked through it.
            try:
                own = (await self._docker.containers.get(labels[CONTAINER]))._container
                labels[CONTAINER_START] = own["State"]["StartedAt"]
                image = own["Image"]
            except aiodocker.DockerError:
                del labels[CONTAINER]
        config: dict[str, Any] = {
            "Image": image or await self._image(),
            "Cmd": ["lease"],
            "Labels": labels,
            "HostConfig": {"NetworkMode": "none", "RestartPolicy": {"Name": "no"}},
        }
        asked = time.monotonic()
        try:
            with engine_errors("cannot take the lease: POST /containers/create"):
                container = await self._docker.containers.create(config, name=self.name)
        except EngineError as exc:
            if exc.status != 409:
                raise
            # The name is taken: by a faster instance, or by a create of ours that went through
            # though its answer was lost. The lease says which.
            if (found := await self._lease()) is not None and self._ours(found):
                await self._adopt(found)
            return
        self._mine, self._counter, self._renewed = container.id, 0, asked
        self._seen, self.term = None, term
        logger.info("lease %s taken: this instance (%s) acts", self.name, self.holder)

    async def _image(self) -> str:
        """An image the engine has, to create the lease from: a managed container's (any
        container's, on an engine that runs none yet); loaded only on an engine without any."""
        with engine_errors("cannot take the lease: GET /containers/json"):
            listed = await self._docker.containers.list(all=True, filters=label_filter(ENABLE))
            listed = listed or await self._docker.containers.list(all=True)
        for container in listed:
            if image := container._container.get("ImageID"):
                return str(image)
        with engine_errors("cannot take the lease: no container on the engine to take an image "
                           "from, and loading one failed: POST /images/load"):  # fmt: skip
            try:
                await self._docker.images.inspect(IMAGE)
            except aiodocker.DockerError:
                await self._docker.images.import_image(_image_tar())
        return IMAGE

    async def _release(self) -> None:
        if self._mine is None:
            return
        mine, self._mine, self.term = self._mine, None, None
        try:
            await self._docker.containers.container(mine).delete(force=True)
            logger.info("lease %s released", self.name)
        except LIBRARY_ERRORS as exc:
            logger.warning(
                "lease %s not released (%s): it lapses in %.0fs", self.name, exc, self.ttl
            )
