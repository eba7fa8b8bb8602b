"""From a policy's proposal to the count to act on, as the Kubernetes HPA does it
(`normalizeDesiredReplicasWithBehaviors`), plus cooldowns. The same rules for every policy:

    proposal ─► stabilization window ─► rate limit per period ─► cooldown ─► [min, max] ─► desired

* Stabilization: scaling up follows the lowest proposal of the scale-up window, scaling down the
  highest of the scale-down window, so one low reading cannot shrink the service.
* Rate limits: per period, add at most max(N replicas, P % of the count at the period's start)
  and remove at most the larger of max-replicas and max-percent likewise.
* Cooldowns: no action in a direction until its cooldown has passed since the last action.

While a service is saturated (its replicas are held at their CPU limit, so the proposal is a floor
of what it needs: policies/saturation.py) the scale-up rate is per decision instead:
`scale-up.saturated-max-percent` more each time, without waiting for the period or the cooldown.

Proposals are remembered as they are made (a window is about what was asked for); actions only
when `record` is told one happened, so a decision that was paused, dry-run or failed starts no
cooldown and uses up no rate. It keeps the proposals of the longest window and the actions of
the longest period: bounded. A run of equal proposals is kept as one, at the time of its latest:
a window holds the run's value as long as it holds any of them, and a service whose proposal
does not change (most, most of the time) has a window of one entry to read each round, not one
a round of the window's length. The clock is whatever `now` the caller passes.
"""

from __future__ import annotations

import math
from collections import deque

from policies.base import Decision, PolicyInput, Proposal, clamp
from policies.options import BehaviorOptions


class Behavior:
    def __init__(self, options: BehaviorOptions, previous: Behavior | None = None) -> None:
        """`previous`: the behaviour before the service's labels changed, whose windows and
        recent actions carry over, so that new labels neither reset a rate nor a cooldown."""
        self.options = options
        self._proposals: deque[tuple[float, int]] = deque()
        self._actions: deque[tuple[float, int]] = deque()  # (when, replicas added; < 0 removed)
        self._last_action: float | None = None
        self._seeded = False
        self._stands = -math.inf
        """Until when (`now`'s clock) the last decision stands for the same proposal (`again`)."""
        if previous is not None:
            self._proposals = previous._proposals
            self._actions = previous._actions
            self._last_action = previous._last_action
            self._seeded = previous._seeded

    def decide(self, inputs: PolicyInput, proposal: Proposal) -> Decision:
        """The Decision for a policy's proposal, with every rule that had a say explained."""
        current, now = inputs.current, inputs.now
        self._forget(now)
        if not self._seeded:
            # As the HPA does: the window starts out holding the current count, so a service is
            # not scaled down the moment the autoscaler (re)starts.
            self._seeded = True
            self._propose(now, current)
        raw = proposal.count
        if raw is None or not inputs.minimum <= current <= inputs.maximum:
            # No data, or the count is outside its bounds (labels changed): only bound it.
            desired, bound = clamp(current, inputs.minimum, inputs.maximum)
            steps: tuple[str, ...] = (f"bound to {bound} {desired}",) if bound else ()
            stabilized = current
        else:
            stabilized, steps = self._stabilize(current, raw, now)
            self._propose(now, raw)
            desired, bound, more = self._limit(
                current,
                stabilized,
                inputs.minimum,
                inputs.maximum,
                now,
                saturated=proposal.saturated,
            )
            steps += more
        self._stands = -math.inf
        if raw is not None and desired == current and inputs.minimum <= current <= inputs.maximum:
            self._stands = self._standing(current, stabilized, inputs.minimum, inputs.maximum, now)
        reason = proposal.reason
        if desired != raw and steps:
            reason += "; " + "; ".join(steps)
        return Decision(
            current=current,
            desired=desired,
            reason=reason,
            proposal=raw,
            stabilized=stabilized,
            bound=bound,
            metrics=proposal.metrics,
            ignored=proposal.ignored,
            steps=(*proposal.notes, *steps),
            saturated=proposal.saturated and desired > current,
        )

    def again(self, now: float, proposal: int) -> bool:
        """Whether the last decision, a hold, stands at `now` for the same `proposal` with as
        many replicas and the same bounds (the caller sees to those): it does until a proposal
        of the windows but the latest enters or leaves one, and only where neither a rate nor a
        cooldown had a say. Where it stands, the proposal is remembered as `decide` would (its
        run goes on), so that the windows know it was asked for all along."""
        latest = self._proposals[-1] if self._proposals else None
        if now >= self._stands or latest is None or latest[1] != proposal:
            return False
        self._proposals[-1] = (max(latest[0], now), proposal)
        return True

    def record(self, now: float, before: int, after: int, *, saturated: bool = False) -> None:
        """A scale action happened: `before` replicas became `after`. Growth to the proven floor
        of a saturated service uses up none of the period's ordinary rate."""
        self._stands = -math.inf
        if after != before:
            self._actions.append((now, 0 if saturated else after - before))
            self._last_action = now

    def _standing(
        self, current: int, stabilized: int, minimum: int, maximum: int, now: float
    ) -> float:
        """Until when a hold at `current` stands for the same proposal (`again`). The windows'
        bounds on the proposal move only as an earlier proposal (not its latest run, which goes
        on) enters or leaves one; a count stabilized to `current`, or beyond it at the bound
        `current` is, is held then whatever the rates and cooldowns say. Elsewhere it stands
        for no time: a rate or a cooldown, which change with the time alone, held it."""
        if not (
            stabilized == current
            or (stabilized < current == minimum)
            or (stabilized > current == maximum)
        ):
            return -math.inf
        o = self.options
        moves = [
            t + window
            for t, _ in list(self._proposals)[:-1]
            for window in (o.up_stabilization, o.down_stabilization)
            if t + window > now
        ]
        return min(moves, default=math.inf)

    def _propose(self, now: float, proposal: int) -> None:
        """Remember a proposal; one equal to the last extends its run."""
        if self._proposals and self._proposals[-1][1] == proposal:
            self._proposals[-1] = (max(self._proposals[-1][0], now), proposal)
        else:
            self._proposals.append((now, proposal))

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
        self,
        current: int,
        stabilized: int,
        minimum: int,
        maximum: int,
        now: float,
        *,
        saturated: bool,
    ) -> tuple[int, str | None, tuple[str, ...]]:
        o = self.options
        if stabilized > current:
            if saturated:
                # A floor of the need: every decision may grow as much as a period may.
                limit = max(
                    current + o.up_max_replicas,
                    math.ceil(current * (1 + o.up_saturated_max_percent / 100)),
                )
                cooldown, rate = 0.0, f"saturated rate limit: at most {limit} a decision"
            else:
                start = current - self._changed(now, o.up_period, up=True)
                limit = max(
                    start + o.up_max_replicas,
                    math.ceil(start * (1 + o.up_max_percent / 100)),
                    current,
                )
                cooldown, rate = (
                    o.up_cooldown,
                    f"rate limit: at most {limit} within {o.up_period:g}s",
                )
            if maximum <= limit:
                desired, bound = min(stabilized, maximum), "max" if stabilized > maximum else None
            else:
                desired, bound = min(stabilized, limit), "rate" if stabilized > limit else None
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
            rate = f"rate limit: at least {desired} within {o.down_period:g}s"
        else:
            return stabilized, None, ()

        steps: list[str] = []
        if bound == "rate":
            steps.append(rate)
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

    def _forget(self, now: float) -> None:
        o = self.options
        keep_proposals = max(o.up_stabilization, o.down_stabilization)
        while self._proposals and now - self._proposals[0][0] >= keep_proposals:
            self._proposals.popleft()
        keep_actions = max(o.up_period, o.down_period)
        while self._actions and now - self._actions[0][0] >= keep_actions:
            self._actions.popleft()
