"""From a raw proposal to the count to act on, as the Kubernetes HPA does it
(`normalizeDesiredReplicasWithBehaviors`), plus cooldowns:

    proposal ─► stabilization window ─► rate limit per period ─► cooldown ─► [min, max] ─► desired

* Stabilization: scaling up follows the lowest proposal of the scale-up window, scaling down the
  highest of the scale-down window, so one low reading cannot shrink the service.
* Rate limits: per period, add at most max(N replicas, P % of the count at the period's start)
  and remove at most the larger of max-replicas and max-percent likewise.
* Cooldowns: no action in a direction until its cooldown has passed since the last action.

It keeps the proposals of the longest window and the actions of the longest period: bounded.
The clock is whatever `now` the caller passes.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from policies.base import Decision, PolicyInput, clamp
from policies.options import BehaviorOptions


@dataclass(frozen=True, slots=True)
class Normalized:
    desired: int
    stabilized: int
    bound: str | None
    steps: tuple[str, ...]


class Behavior:
    def __init__(self, options: BehaviorOptions) -> None:
        self.options = options
        self._proposals: deque[tuple[float, int]] = deque()
        self._actions: deque[tuple[float, int]] = deque()  # (when, replicas added; < 0 removed)
        self._last_action: float | None = None
        self._seeded = False

    def normalize(
        self, current: int, proposal: int | None, minimum: int, maximum: int, now: float
    ) -> Normalized:
        """The count to act on now; records the proposal, and the action if the count changes."""
        self._forget(now)
        if not self._seeded:
            # As the HPA does: the window starts out holding the current count, so a service is
            # not scaled down the moment the autoscaler (re)starts.
            self._seeded = True
            self._proposals.append((now, current))
        if proposal is None or not minimum <= current <= maximum:
            # No data, or the count is outside its bounds (labels changed): only bound it.
            desired, bound = clamp(current, minimum, maximum)
            steps: tuple[str, ...] = (f"bound to {bound} {desired}",) if bound else ()
            self._record(current, desired, now)
            return Normalized(desired, current, bound, steps)

        stabilized, steps = self._stabilize(current, proposal, now)
        self._proposals.append((now, proposal))
        desired, bound, more = self._limit(current, stabilized, minimum, maximum, now)
        self._record(current, desired, now)
        return Normalized(desired, stabilized, bound, steps + more)

    def decide(
        self,
        inputs: PolicyInput,
        proposal: int | None,
        reason: str,
        *,
        metrics: Mapping[str, float],
        ignored: Mapping[str, str],
        notes: tuple[str, ...] = (),
    ) -> Decision:
        """Normalize a policy's raw proposal into its Decision, with every step explained."""
        n = self.normalize(inputs.current, proposal, inputs.minimum, inputs.maximum, inputs.now)
        if n.desired != proposal and n.steps:
            reason += "; " + "; ".join(n.steps)
        return Decision(
            current=inputs.current,
            desired=n.desired,
            reason=reason,
            proposal=proposal,
            stabilized=n.stabilized,
            bound=n.bound,
            metrics=metrics,
            ignored=ignored,
            steps=(*notes, *n.steps),
        )

    def _stabilize(self, current: int, proposal: int, now: float) -> tuple[int, tuple[str, ...]]:
        """HPA's current rule: the count moves up only as far as the lowest proposal of the
        scale-up window and down only as far as the highest of the scale-down window."""
        o = self.options
        up = min([proposal, *(p for t, p in self._proposals if now - t < o.up_stabilization)])
        down = max([proposal, *(p for t, p in self._proposals if now - t < o.down_stabilization)])
        stabilized = min(max(current, up), down)
        if stabilized == proposal:
            return stabilized, ()
        if proposal > current:
            return stabilized, (
                f"scale-up stabilization: lowest proposal of the last {o.up_stabilization:g}s "
                f"is {up}",
            )
        return stabilized, (
            f"scale-down stabilization: highest proposal of the last {o.down_stabilization:g}s "
            f"is {down}",
        )

    def _limit(
        self, current: int, stabilized: int, minimum: int, maximum: int, now: float
    ) -> tuple[int, str | None, tuple[str, ...]]:
        o = self.options
        if stabilized > current:
            start = current - self._changed(now, o.up_period, up=True)
            limit = max(
                start + o.up_max_replicas,
                math.ceil(start * (1 + o.up_max_percent / 100)),
                current,
            )
            if maximum <= limit:
                desired, bound = min(stabilized, maximum), "max" if stabilized > maximum else None
            else:
                desired, bound = min(stabilized, limit), "rate" if stabilized > limit else None
            cooldown = o.up_cooldown
        elif stabilized < current:
            start = current + self._changed(now, o.down_period, up=False)
            by_percent = int(start * (1 - o.down_max_percent / 100))
            by_count = start - o.down_max_replicas if o.down_max_replicas is not None else None
            limit = min(current, by_percent if by_count is None else min(by_percent, by_count))
            if minimum >= limit:
                desired, bound = max(stabilized, minimum), "min" if stabilized < minimum else None
            else:
                desired, bound = max(stabilized, limit), "rate" if stabilized < limit else None
            cooldown = o.down_cooldown
        else:
            return stabilized, None, ()

        steps: list[str] = []
        if bound == "rate":
            period = o.up_period if stabilized > current else o.down_period
            steps.append(f"rate limit: at most {desired} within {period:g}s")
        elif bound is not None:
            steps.append(f"bound to {bound} {desired}")
        if self._last_action is not None and desired != current:
            waited = now - self._last_action
            if waited < cooldown:
                steps.append(f"cooldown: {cooldown - waited:.0f}s left of {cooldown:g}s")
                return current, "cooldown", tuple(steps)
        return desired, bound, tuple(steps)

    def _changed(self, now: float, period: float, *, up: bool) -> int:
        """Replicas added (up) or removed (down) by actions within the last `period` seconds."""
        return sum(
            abs(delta) for t, delta in self._actions if now - t < period and (delta > 0) == up
        )

    def _record(self, current: int, desired: int, now: float) -> None:
        if desired != current:
            self._actions.append((now, desired - current))
            self._last_action = now

    def _forget(self, now: float) -> None:
        o = self.options
        keep_proposals = max(o.up_stabilization, o.down_stabilization)
        while self._proposals and now - self._proposals[0][0] >= keep_proposals:
            self._proposals.popleft()
        keep_actions = max(o.up_period, o.down_period)
        while self._actions and now - self._actions[0][0] >= keep_actions:
            self._actions.popleft()
