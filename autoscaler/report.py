"""What the world is told of one service: its events, each naming the instance that acted, and
its state, built in one place and published (retained) when it says something new or when the
last one is a heartbeat old. MQTT, /status, /metrics and `explain` all read that one state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from autoscaler.context import Context, ScaleResult
from autoscaler.errors import AutoscalerError
from autoscaler.labels import Replica, ServiceKey, counted
from autoscaler.spec import ServiceSpec
from autoscaler.state import Evaluation, Phase, ServiceState


class Report:
    def __init__(self, key: ServiceKey, context: Context) -> None:
        self.key = key
        self._ctx = context
        self.state: ServiceState | None = None
        self._published: tuple[ServiceState, float] | None = None  # and when (monotonic)

    def scaled(self, spec: ServiceSpec, evaluation: Evaluation, result: ScaleResult | None) -> None:
        """A scale event: what the actuator did, or (dry run, `result` None) what it would do."""
        decision = evaluation.decision
        after = decision.desired if result is None else result.after
        if after == decision.current:
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
        )

    def fault(self, exc: AutoscalerError) -> None:
        self._ctx.metrics.failed(self.key, exc)
        self.event("error", exc.event_attributes(), message=str(exc))

    def event(self, action: str, attributes: Mapping[str, Any], **extra: Any) -> None:
        """Every event of this service names the instance that acted: the engine lease's
        holder, or the cluster lease's for a Swarm service."""
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
        samplers: Mapping[str, str],
        error: str | None,
        finding: str | None = None,
        schedule: str | None = None,
    ) -> None:
        """Build the service's state and keep it; publish it when it says something new."""
        live = counted(replicas)
        sources = sorted({s for r in live if (s := samplers.get(r.id))})
        self.state = ServiceState(
            project=self.key.project,
            service=self.key.service,
            scope=self.key.scope,
            own=sum(1 for r in replicas if not r.is_clone) if self._ctx.clones else None,
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
            targets=_targets(spec),
            sampler="+".join(sources) or None,
            error=error,
            finding=finding,
            schedule=schedule,
        )
        now = self._ctx.clock.monotonic()
        if self._published is not None:
            last, at = self._published
            if not self.state.differs(last, self._ctx.band) and now - at < self._ctx.heartbeat:
                return
        self._published = (self.state, now)
        self._ctx.notifier.state(self.key, self.state.to_dict())


def _targets(spec: ServiceSpec | None) -> dict[str, float] | None:
    """The policy's targets by metric, when its options name them the built-ins' way."""
    if spec is None:
        return None
    found = {m: getattr(spec.policy_options, f"{m}_target", None) for m in ("cpu", "memory")}
    return {m: float(t) for m, t in found.items() if isinstance(t, (int, float))} or None
