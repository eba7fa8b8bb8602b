"""What the world is told of one service: its events, each naming the instance that acted, and
its state, built in one place and published (retained) when it says something new or when the
last one is a heartbeat old. MQTT, /status, /metrics, `explain` and the page all read that one
state; each state shown is a row of the service's history (history.py), which the page charts.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from autoscaler.control.context import Context
from autoscaler.control.controls import Control
from autoscaler.control.history import History
from autoscaler.control.replicas import Replica, Sample, ScaleResult, counted, own
from autoscaler.control.spec import ServiceSpec
from autoscaler.control.state import Evaluation, Phase, ServiceState, moved
from autoscaler.errors import AutoscalerError
from autoscaler.labels import ServiceKey
from policies.base import Signal
from policies.saturation import saturated

ACTIONS = frozenset({"scale_up", "scale_down", "repair", "restore", "roll", "sleep", "wake"})
"""The events that change the service's containers: the state's `last_action`."""


class Report:
    def __init__(self, key: ServiceKey, context: Context) -> None:
        self.key = key
        self._ctx = context
        self._state: ServiceState | None = None
        self._readings: _Readings | None = None  # a quiet round's, not built into a state yet
        self.shown = 0
        """States shown in full so far: a quiet round goes on from the one it knows."""
        # Each service's heartbeat is its own share shorter (up to a quarter): services started
        # together (every one, at the process's start) drift apart, and send theirs spread
        # over rounds, not all in one (at 500 services, one round a minute built and sent 500
        # states, the slowest round of the minute).
        self._beat = 1 - stagger(key) / 4
        self._published: tuple[ServiceState, float] | None = None  # and when (monotonic)
        self.history = History(context.interval)
        self._last_action: tuple[str, float] | None = None  # in words, and when (wall time)
        self._targets: tuple[object, dict[str, float] | None] = (None, None)  # of these options

    def scaled(self, spec: ServiceSpec, evaluation: Evaluation, result: ScaleResult | None) -> None:
        """A scale event: what the actuator did, or (dry run, `result` None) what it would do."""
        decision = evaluation.decision
        after = decision.desired if result is None else result.after
        if after == decision.current or (result is not None and not result.changed):
            # An action that only found its clones gone (another hand removed them after the
            # view was read) is no scale action of this instance's: the one that removed them
            # tells its own.
            return
        action = "scale_up" if after > decision.current else "scale_down"
        attributes: dict[str, Any] = {"policy": spec.policy_name, "from": decision.current,
                                      "to": after}  # fmt: skip
        if result is None:
            attributes["dry_run"] = "true"
        else:
            self._ctx.metrics.acted(self.key, action)
        self.event(
            action,
            attributes,
            **{"from": decision.current, "to": after, "desired": decision.desired},
            reason=decision.reason,
            dry_run=result is None,
            # How long the action took: it is told as it ends, so it began `seconds` before.
            **({} if result is None else {"seconds": round(result.seconds, 3)}),
        )

    def fault(self, exc: AutoscalerError) -> None:
        self._ctx.metrics.failed(self.key, exc)
        self.event("error", exc.event_attributes(), message=str(exc))

    def event(self, action: str, attributes: Mapping[str, Any], **extra: Any) -> None:
        """Every event of this service names the instance that acted: the engine lease's
        holder, or the cluster lease's for a Swarm service."""
        if action in ACTIONS:
            self._last_action = (_words(action, extra), self._ctx.clock.wall())
        self._ctx.notifier.event(
            self.key, action, attributes, instance=self._ctx.instance(), **extra
        )

    def show(
        self,
        phase: Phase,
        replicas: Sequence[Replica],
        spec: ServiceSpec | None,
        evaluation: Evaluation | None,
        reason: str,
        *,
        decided: int | None,
        samples: Mapping[str, Sample],
        signal: Signal | None,
        error: str | None,
        finding: str | None = None,
        schedule: str | None = None,
        startup: float | None = None,
        control: Control | None = None,
    ) -> None:
        """Build the service's state and keep it; publish it when it says something new."""
        live = counted(replicas)
        seen = [samples[r.id] for r in live if r.id in samples]
        sources = sorted({s.source for s in seen})
        action, action_at = self._last_action or (None, None)
        self._readings = None
        self.shown += 1
        self._state = state = ServiceState(
            project=self.key.project,
            service=self.key.service,
            scope=self.key.scope,
            own=own(replicas),
            phase=phase,
            replicas=len(live),
            containers=tuple(sorted(r.name for r in live)),
            reason=reason,
            time=self._ctx.clock.wall(),
            instance=self._ctx.instance(),
            dry_run=self._ctx.dry_run,
            desired=evaluation.decision.desired if evaluation else None,
            decided=decided,
            minimum=spec.minimum if spec else None,
            maximum=spec.maximum if spec else None,
            policy=spec.policy_name if spec else None,
            paused=spec.paused if spec else None,
            cpu=evaluation.cpu if evaluation else None,
            memory=evaluation.memory if evaluation else None,
            saturated=bool(seen) and len(seen) == len(live) and all(map(saturated, seen)),
            targets=self._targets_of(spec),
            metric=signal.name if signal else None,
            metric_value=signal.value if signal else None,
            received=_total(s.received for s in seen),
            sent=_total(s.sent for s in seen),
            bound=evaluation.decision.bound if evaluation else None,
            last_action=action,
            last_action_at=action_at,
            startup=round(startup, 2) if startup is not None else None,
            sampler="+".join(sources) or None,
            error=error,
            finding=finding,
            schedule=schedule,
            control=control.to_dict() if control is not None else None,
        )
        self.history.add(state)
        now = self._ctx.clock.monotonic()
        if self._published is not None:
            last, at = self._published
            if not state.differs(last, self._ctx.band) and now - at < self._heartbeat:
                return
        self._publish(state, now)

    def again(
        self,
        cpu: float,
        memory: float | None,
        received: float | None,
        sent: float | None,
        sampler: str | None,
    ) -> None:
        """The last state a round on, with this round's readings: a quiet round (quiet.py),
        where nothing else it shows has changed. Its row is kept; the state itself is built
        when it is read or published, not each round. Only the readings can say something new:
        whatever else the state shows was compared when it was shown, and has not changed."""
        base = self._state
        assert base is not None
        wall, now = self._ctx.clock.wall(), self._ctx.clock.monotonic()
        self._readings = (wall, cpu, memory, received, sent, sampler)
        self.history.row(
            wall, base.replicas, base.desired, base.minimum, base.maximum, cpu, memory,
            base.metric_value, received, sent,
        )  # fmt: skip
        if self._published is not None:
            last, at = self._published
            band = self._ctx.band
            # (A quiet round's replicas are as held back as its state says: its band is the
            # one of replicas all held back at their limit, or of none.)
            at_limit = base.saturated and last.saturated
            changed = (not at_limit and moved(cpu, last.cpu, band)) or moved(
                memory, last.memory, band
            )
            if not changed and now - at < self._heartbeat:
                return
        state = self.state
        assert state is not None
        self._publish(state, now)

    @property
    def _heartbeat(self) -> float:
        return self._ctx.heartbeat * self._beat

    @property
    def state(self) -> ServiceState | None:
        """The service as it stands after the latest step (None before the first)."""
        if self._readings is not None:
            assert self._state is not None
            self._state, self._readings = self._state.again(*self._readings), None
        return self._state

    def _publish(self, state: ServiceState, now: float) -> None:
        self._published = (state, now)
        self._ctx.notifier.state(self.key, state.to_dict())

    def _targets_of(self, spec: ServiceSpec | None) -> dict[str, float] | None:
        """`_targets`, read again only when the policy's options change (the spec in force is a
        new one each round where a schedule sets its bounds)."""
        options = spec.policy_options if spec is not None else None
        if options is not self._targets[0]:
            self._targets = (options, _targets(spec))
        return self._targets[1]


def _targets(spec: ServiceSpec | None) -> dict[str, float] | None:
    """The policy's targets by metric, when its options name them the built-ins' way."""
    if spec is None:
        return None
    found = {
        m: getattr(spec.policy_options, f"{m}_target", None) for m in ("cpu", "memory", "metric")
    }
    return {m: float(t) for m, t in found.items() if isinstance(t, (int, float))} or None


def stagger(key: ServiceKey) -> float:
    """The service's share of a heartbeat, in [0, 1): the same on every instance and run."""
    return zlib.crc32(str(key).encode()) / 2**32


_Readings = tuple[float, float, float | None, float | None, float | None, str | None]
"""A quiet round's: its time (wall), CPU, memory, bytes received and sent, and sampler."""


def _total(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _words(action: str, extra: Mapping[str, Any]) -> str:
    """`scale_up 2 → 3`, `restore` ...: an action as the overview shows it."""
    before, after = extra.get("from"), extra.get("to")
    counts = f" {before} → {after}" if before is not None and after is not None else ""
    return f"{action}{counts}"
