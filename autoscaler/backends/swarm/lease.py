"""One actor per cluster: a Swarm config named after the lease, whose labels name the holder
and a counter. They are updated at the config's version, a compare-and-swap the whole cluster
agrees on, so of two instances writing at once exactly one succeeds.

    follower ──(no config: create it; its counter still for a ttl: write ours at its version)──►
    leader ──(a renewal refused, or the last good one older than ttl/3)──► follower

The same rules as the engine lease (backends/compose/lease.py), on what a swarm has instead of a
name.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiodocker

from autoscaler.backends.docker.client import LIBRARY_ERRORS
from autoscaler.settings import instance_name

logger = logging.getLogger(__name__)


class SwarmLease:
    """One actor per cluster, the same rules as the engine lease (lease.py): the holder renews a
    counter every ttl/6 and acts while its last renewal is younger than ttl/3; the others take
    over when the counter stood still for a whole ttl. Each write is at the config's version,
    so of two instances writing at once exactly one succeeds."""

    HOLDER, COUNTER = "autoscaler.lease.holder", "autoscaler.lease.counter"
    TERM = "autoscaler.lease.term"
    """Grows with every takeover: what actions are fenced by (backends/docker/fence.py)."""

    def __init__(
        self, docker: aiodocker.Docker, name: str, ttl: float, holder: str | None = None
    ) -> None:
        """`holder`: this instance's name (`settings.instance_name`, made here when not given)."""
        self._docker = docker
        self.name = name
        self.ttl = ttl
        # Unique per instance even within one process: the holder is who acts.
        self.holder = holder or instance_name()
        self._renewed = float("-inf")
        self._seen: tuple[str, str] | None = None  # (holder, counter) of another's lease
        self._seen_since = 0.0
        self._failing: str | None = None  # the error last logged, logged once while it lasts
        self.term: int | None = None
        """The term of the lease this instance holds (as the config's labels say)."""

    @property
    def leading(self) -> bool:
        return time.monotonic() - self._renewed < self.ttl / 3

    def held(self) -> int | None:
        """The term this instance acts under now: its lease's, while it leads; else None."""
        return self.term if self.leading else None

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self._step()
                    self._failing = None
                except LIBRARY_ERRORS as exc:
                    if str(exc) != self._failing:
                        logger.warning("swarm lease %s: %s", self.name, exc)
                    self._failing = str(exc)
                await asyncio.sleep(self.ttl / 6)
        finally:
            await asyncio.shield(self._release())

    async def _step(self) -> None:
        # Counted from before the read: a renewal answered late must not stretch our lead past
        # the moment another instance may take over.
        now = time.monotonic()
        try:
            config = await self._docker._query_json(f"configs/{self.name}")
        except aiodocker.DockerError as exc:
            if exc.status != 404:
                raise
            await self._create(now)
            return
        own = config["Spec"].get("Labels") or {}
        holder, counter = own.get(self.HOLDER, ""), own.get(self.COUNTER, "0")
        term = _int(own.get(self.TERM, "0"))
        if holder == self.holder:
            if await self._write(config, int(counter) + 1, term):
                self._renewed, self.term = now, term
            return
        if (holder, counter) != self._seen:
            self._seen, self._seen_since = (holder, counter), now
            return
        # A takeover starts a new term: the wall clock in nanoseconds, above the lapsed one's.
        taken = max(time.time_ns(), term + 1)
        if now - self._seen_since >= self.ttl and await self._write(config, 0, taken):
            logger.warning("swarm lease %s of %s lapsed; taken over", self.name, holder)
            self._renewed, self.term = now, taken

    async def _write(self, config: Mapping[str, Any], counter: int, term: int) -> bool:
        """Set holder, counter and term at the version read; False if someone wrote first."""
        spec = dict(config["Spec"])
        spec["Labels"] = {self.HOLDER: self.holder, self.COUNTER: str(counter),
                          self.TERM: str(term)}  # fmt: skip
        try:
            await self._docker._query_json(
                f"configs/{config['ID']}/update",
                method="POST",
                params={"version": config["Version"]["Index"]},
                data=spec,
            )
        except aiodocker.DockerError as exc:
            if "out of sequence" in str(exc) or exc.status in (404, 409):
                return False
            raise
        return True

    async def _create(self, asked: float) -> None:
        term = time.time_ns()
        spec = {
            "Name": self.name,
            "Labels": {self.HOLDER: self.holder, self.COUNTER: "0", self.TERM: str(term)},
            # Swarm wants some data in a config; what the lease is, for whoever lists configs.
            "Data": base64.b64encode(b"compose-autoscaler cluster lease\n").decode(),
        }
        try:
            await self._docker._query_json("configs/create", method="POST", data=spec)
        except aiodocker.DockerError as exc:
            if exc.status == 409:
                return  # someone was faster
            raise
        self._renewed, self.term = asked, term
        logger.info("swarm lease %s taken: this instance (%s) acts", self.name, self.holder)

    async def _release(self) -> None:
        if not self.leading:
            return
        self._renewed = float("-inf")
        try:
            await self._docker._query_json(f"configs/{self.name}", method="DELETE")
        except LIBRARY_ERRORS as exc:
            logger.warning("swarm lease %s not released (%s): it lapses in %.0fs", self.name,
                           exc, self.ttl)  # fmt: skip


def _int(text: str) -> int:
    """A label's number (0 for one of an earlier release, which had no term)."""
    try:
        return int(text)
    except ValueError:
        return 0
