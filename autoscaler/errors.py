"""Failure, in one place: the one error root (library errors are wrapped at the boundary with
`raise ... from exc`), the backoff between tries, and where a bug of one part of the process
ends.

Backoff: waits that grow with failures in a row: 1 failure waits `start`, each further one twice
as long, up to `cap`; a success, or a quiet spell of `quiet` seconds, starts the count over.

Where a bug of one part of the process ends: it is logged once with its traceback, reported,
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
import random
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


class AutoscalerError(Exception):
    """Root of every error this service raises on purpose."""

    service: str | None = None

    def event_attributes(self) -> dict[str, str]:
        """What an MQTT error event carries about this error, besides its message."""
        return {"error": type(self).__name__}


_USERINFO = re.compile(r"(://[^/@:\s]*:)[^@/\s]*@")
"""The password of a URL's `user:password@`."""


class LabelError(AutoscalerError):
    """A service's `autoscaler.*` labels are wrong; the service is skipped until they are fixed."""

    def __init__(self, service: str, label: str, value: str | None, reason: str) -> None:
        # A URL's password (a label that should not hold one) never reaches the log or an
        # event: it is shown as `***`.
        value = _USERINFO.sub(r"\1***@", value) if value is not None else None
        shown = f"{label}={value!r}" if value is not None else label
        super().__init__(f"service {service}: label {shown}: {reason}")
        self.service = service
        self.label = label
        self.value = value
        self.reason = reason

    def event_attributes(self) -> dict[str, str]:
        attrs = super().event_attributes() | {"label": self.label}
        if self.value is not None:
            attrs["value"] = self.value
        return attrs


class TemplateError(AutoscalerError):
    """A service has no container to clone, or its template cannot be cloned."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"service {service}: {reason}")
        self.service = service


class TemplateLeaving(TemplateError):
    """The template is being stopped or removed by its owner (`docker compose rm -s`, `stop`,
    `down`, Compose replacing it): no clone is made of it, and the service holds until the
    owner's change is over. A hold, not a failure: no backoff, and the next engine event of the
    service tries again."""


class EngineError(AutoscalerError):
    """The Docker Engine is unreachable or refused a request."""

    def __init__(self, message: str, *, service: str | None = None, status: int | None = None):
        super().__init__(f"service {service}: {message}" if service else message)
        self.service = service
        self.status = status


class BrokerError(AutoscalerError):
    """The MQTT broker is unreachable or refused us."""


class Fenced(AutoscalerError):
    """An action's request not sent: the action was decided under a lease term this instance
    no longer holds (backends/docker/fence.py)."""

    def __init__(self, service: str | None, doing: str, decided: int, held: int | None) -> None:
        now = f"it holds term {held}" if held is not None else "it holds none"
        super().__init__(f"service {service}: not {doing}: decided under lease term {decided}, "
                         f"and {now} now (another instance may lead)")  # fmt: skip
        self.service = service


class InternalError(AutoscalerError):
    """A bug met while acting for a service: reported like any other error, never fatal."""

    def __init__(self, service: str, doing: str, exc: BaseException) -> None:
        super().__init__(f"service {service}: unexpected {type(exc).__name__} while {doing}: {exc}")
        self.service = service


class MetricError(AutoscalerError):
    """A service's metric source gives no value to trust: unreachable, stale or malformed."""

    def __init__(self, service: str, source: str, reason: str) -> None:
        super().__init__(f"service {service}: metric {source}: {reason}; holding")
        self.service = service
        self.source = source

    def event_attributes(self) -> dict[str, str]:
        return super().event_attributes() | {"source": self.source}


# -- backoff --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Backoff:
    start: float
    cap: float
    quiet: float = float("inf")
    failures: int = 0
    last: float = float("-inf")

    @property
    def wait(self) -> float:
        """Seconds to wait after the last failure before trying again."""
        return min(self.start * 2 ** (self.failures - 1), self.cap) if self.failures else 0.0

    def ready(self, now: float) -> bool:
        if self.failures and now - self.last > self.quiet:
            self.failures = 0
        return now - self.last >= self.wait

    def left(self, now: float) -> float:
        return max(self.wait - (now - self.last), 0.0)

    def failed(self, now: float) -> None:
        self.failures += 1
        self.last = now

    def succeeded(self) -> None:
        self.failures = 0


@dataclass(slots=True)
class Reconnect:
    """Delays between tries to reach the engine or a broker: `start`, doubling up to `cap`, each
    drawn from its upper half so that clients cut off together do not come back together;
    `reset` once connected."""

    start: float
    cap: float
    delay: float = field(init=False)

    def __post_init__(self) -> None:
        self.delay = self.start

    def reset(self) -> None:
        self.delay = self.start

    def next(self) -> float:
        """The seconds to wait now; the next wait doubles."""
        wait = self.delay * random.uniform(0.5, 1.0)
        self.delay = min(self.delay * 2, self.cap)
        return wait


# -- supervision ----------------------------------------------------------------------------------

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
