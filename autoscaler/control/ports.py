"""The interfaces the core consumes, each fitted by a part above it: where a service's replicas
live (`Backend`: the Compose backend's actuator, the Swarm backend's scaler), where its events and
state go (`Notices`: mqtt's notifier), and what is counted of it (`Meter`: ops' metrics)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from autoscaler.control.replicas import Replica, ScaleResult
from autoscaler.errors import AutoscalerError
from autoscaler.labels import ServiceKey


class Backend(Protocol):
    """Where a service's replicas live: containers cloned on one engine (the Compose backend's
    Actuator), or a Swarm service whose tasks Swarm places (the Swarm backend's SwarmScaler). The
    controller talks to either the same way. Both raise only AutoscalerError."""

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
    """What a controller (and a backend's round) counts for /metrics."""

    def acted(self, key: ServiceKey, direction: str) -> None: ...

    def failed(self, key: ServiceKey, exc: AutoscalerError) -> None: ...

    def forget(self, key: ServiceKey) -> None: ...

    def sampled(self, seconds: float) -> None:
        """A sampling round took `seconds`."""
