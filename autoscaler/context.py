"""What every controller shares, and the small interfaces through which it meets the world.

    Backend   where a service's replicas live: `scale_to` and `repair` (engine.Actuator clones
              containers on one engine; swarm.SwarmScaler updates a Swarm service's count),
              and for scale to zero `sleep`, `wake`, `asleep` and `awake`
    Notices   where events and retained states go (mqtt.Notifier)
    Meter     what is counted for /metrics (ops.Metrics)

The controller imports none of the backends, MQTT or the operator's face: the app builds a
`Context` from them, and each only has to fit the protocol here.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from autoscaler.errors import AutoscalerError
from autoscaler.keep import Keep
from autoscaler.labels import Replica, ServiceKey
from autoscaler.spec import MetricSource
from autoscaler.state import Evaluation
from policies.base import Signal


@dataclass(slots=True)
class ScaleResult:
    key: ServiceKey
    before: int
    created: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    """The user's own containers a sleep stopped (never removed)."""
    started: list[str] = field(default_factory=list)
    """The user's own containers a wake started again."""
    errors: list[AutoscalerError] = field(default_factory=list)
    seconds: float = 0.0
    target: int | None = None
    """Set where the count is asked of a scheduler (Swarm) rather than made container by
    container: the count the action leaves."""

    @property
    def after(self) -> int:
        if self.target is not None:
            return self.target
        return (self.before + len(self.created) + len(self.started)
                - len(self.removed) - len(self.stopped))  # fmt: skip


class Backend(Protocol):
    """Where a service's replicas live: containers cloned on one engine (engine.Actuator), or
    a Swarm service whose tasks Swarm places (swarm.SwarmScaler). The controller talks to
    either the same way. Both raise only AutoscalerError."""

    async def scale_to(
        self, key: ServiceKey, replicas: Sequence[Replica], target: int
    ) -> ScaleResult: ...

    async def repair(
        self,
        key: ServiceKey,
        replicas: Sequence[Replica],
        old: Sequence[Replica],
        replace: int,
        *,
        surge: bool = False,
    ) -> ScaleResult: ...

    async def sleep(self, key: ServiceKey, replicas: Sequence[Replica]) -> ScaleResult:
        """To zero: recorded as the autoscaler's doing first, then every replica goes (the
        user's own containers are stopped, never removed)."""

    async def wake(self, key: ServiceKey, replicas: Sequence[Replica]) -> ScaleResult:
        """From zero: the user's own containers started again (a start, not a create), and the
        record of the sleep ended."""

    async def asleep(self, key: ServiceKey) -> bool:
        """Whether the autoscaler put the service to zero (and not its owner)."""

    async def awake(self, key: ServiceKey) -> bool:
        """Its owner started the service again: any record of a sleep ends (True if there was
        one)."""


class Notices(Protocol):
    """Where a service's events and retained state go; neither call waits."""

    def event(
        self,
        key: ServiceKey,
        action: str,
        attributes: Mapping[str, Any],
        *,
        instance: str | None,
        **extra: Any,
    ) -> None: ...

    def state(self, key: ServiceKey, state: Mapping[str, Any]) -> None: ...

    def clear(self, key: ServiceKey) -> None:
        """The service is gone: its retained state is removed from the broker."""


class Meter(Protocol):
    """What a controller counts for /metrics."""

    def evaluated(self, key: ServiceKey, evaluation: Evaluation) -> None: ...

    def acted(self, key: ServiceKey, direction: str) -> None: ...

    def failed(self, key: ServiceKey, exc: AutoscalerError) -> None: ...

    def forget(self, key: ServiceKey) -> None: ...


@dataclass(frozen=True, slots=True)
class Clock:
    """The two clocks a controller reads. `wall` says when (states, events, what people read);
    `monotonic` measures how long (windows, cooldowns, rates, backoffs), so that a step of
    the wall clock (NTP, a suspended host) neither holds nor empties them."""

    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic


@dataclass(slots=True)
class Context:
    """What every controller of one backend shares: its writer, the view, the outside world."""

    actuator: Backend
    refresh: Callable[[str], Awaitable[object]]
    """Re-inspect one container into the view; raises only AutoscalerError."""
    restart: Callable[[Sequence[Replica]], Awaitable[None]]
    """Start these replicas' sample windows afresh (the collector's)."""
    view: Callable[[ServiceKey], list[Replica]]
    """The service's replicas as the view has them now."""
    notifier: Notices
    metrics: Meter
    dry_run: bool
    instance: Callable[[], str | None]
    signal: Callable[[MetricSource], Signal] | None = None
    """The latest value of a service's metric source (signals.Signals.read)."""
    heartbeat: float = 60.0
    """Seconds between retained states of a service whose state does not change."""
    band: float = 5.0
    """Points CPU or memory must move to be a change of state."""
    clones: bool = True
    """Replicas are clones of the user's containers, which are never removed; broken clones are
    mended here. False where the engine places and mends them (Swarm tasks)."""
    clock: Clock = field(default_factory=Clock)
    interval: float = 5.0
    """Seconds between rounds: what defaults that count in rounds are measured by."""
    keep: Keep | None = None
    """Where what a policy learns over days is kept across restarts; None: not kept."""
