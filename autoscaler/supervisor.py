"""Where a bug of one part of the process ends: it is logged once with its traceback, reported,
and that part alone waits or starts over. Nothing but cancellation reaches the TaskGroup.

    with faults.guard(part): ...        one round's work of a part (the Swarm listing, the
                                        metric sources, a sampling round): an exception is
                                        that part's fault, and the round goes on without it
    await faults.supervise(part, run)   a long-lived task (the event follower, a broker
                                        connection, a lease): restarted after a growing pause
                                        when it fails, as if it had lost its connection

A fault is told once while it lasts (the same part, kind and message); the part working again
ends it. An AutoscalerError is expected (an engine that refused, a broker away) and is logged
without a traceback; anything else is a bug of ours and keeps its traceback for the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from autoscaler.backoff import Reconnect
from autoscaler.errors import AutoscalerError

logger = logging.getLogger(__name__)

Report = Callable[[str, BaseException], None]
"""Tell the world of a part's fault (an MQTT event, a counter): called once per fault."""

_RESTART_START, _RESTART_CAP = 1.0, 30.0


class Faults:
    def __init__(self, report: Report | None = None) -> None:
        self._report = report
        self._told: dict[str, str] = {}  # part -> the fault told while it lasts

    def failed(self, part: str, exc: BaseException) -> None:
        told = f"{type(exc).__name__}: {exc}"
        if self._told.get(part) == told:
            logger.debug("%s: still failing: %s", part, told)
            return
        self._told[part] = told
        if isinstance(exc, AutoscalerError):
            logger.error("%s: %s", part, exc)
        else:
            logger.error("%s: unexpected %s; it carries on", part, told, exc_info=exc)
        if self._report is not None:
            self._report(part, exc)

    def ok(self, part: str) -> None:
        if self._told.pop(part, None) is not None:
            logger.info("%s works again", part)

    @contextmanager
    def guard(self, part: str) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            self.failed(part, exc)
        else:
            self.ok(part)

    async def supervise(self, part: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run `run` until it returns; when it raises, report it and run it again after a
        pause that doubles with failures in a row (1 s up to 30 s)."""
        retry = Reconnect(_RESTART_START, _RESTART_CAP)
        while True:
            started = asyncio.get_running_loop().time()
            try:
                await run()
            except Exception as exc:
                self.failed(part, exc)
            else:
                return
            if asyncio.get_running_loop().time() - started > _RESTART_CAP:
                retry.reset()  # it had been working a while: not a crash loop
            await asyncio.sleep(retry.next())
