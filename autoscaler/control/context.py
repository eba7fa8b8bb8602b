"""What every controller of one backend shares (`Context`): its backend, the view, the
world's ports (control/ports.py), and the clocks.

The controller imports none of the backends, MQTT or the operator's face: the app builds a
`Context` from them, and each only has to fit a protocol of ports.py.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from autoscaler.control.controls import Control
from autoscaler.control.keep import Keep
from autoscaler.control.ports import Backend, Meter, Notices
from autoscaler.control.replicas import Replica
from autoscaler.control.spec import MetricSource, Sources
from autoscaler.labels import ServiceKey
from policies.base import Signal


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
    """The latest value of a service's metric source (the sources' Signals.read)."""
    sources: Sources = field(default_factory=dict)
    """The kinds of metric source a service's labels may name, and their options' models."""
    heartbeat: float = 60.0
    """Seconds between retained states of a service whose state does not change."""
    band: float = 5.0
    """Points CPU or memory must move to be a change of state."""
    clock: Clock = field(default_factory=Clock)
    interval: float = 5.0
    """Seconds between rounds: what defaults that count in rounds are measured by."""
    keep: Keep | None = None
    """Where what a policy learns over days is kept across restarts; None: not kept."""
    look: Callable[[ServiceKey, Sequence[str]], None] = field(default=lambda key, new: None)
    """Look at this service again as soon as its fresh sample windows measure, before the
    next round (a backend without a look of its own leaves it to the round); the containers
    the action made are watched until the load has moved onto them, and the windows measured
    from then."""
    control: Callable[[ServiceKey], Control | None] = field(default=lambda key: None)
    """The service's latest runtime control (pause, hold, resume) as the backend keeps it, or
    None."""
    acted: Callable[[ServiceKey], None] = field(default=lambda key: None)
    """The service's action has ended (done or failed): a look that found it acting may come
    now."""
