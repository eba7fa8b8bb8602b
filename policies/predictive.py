"""Predictive: the default policy's calculation, plus the demand expected one horizon ahead.

A replica asked for now serves only once it has started, so a policy that provisions for the
demand it measures is always one start-up behind a rising load. This one proposes the larger of
the default's count (what the demand needs now: it never proposes less) and:

* **the trend**: the demand (replicas' worth at the target: the ready replicas' CPU over the
  target, or the metric over a replica's share) on a robust line through the last
  `predict.window` (Theil-Sen: the median slope of every pair of readings), carried one horizon
  ahead from where the newest readings are: the service's measured start-up time (from the
  action that created a replica to its first counted sample) plus an interval, or
  `predict.horizon`. Only a rise is led, and only a real one: both halves of the window rise on
  their own (one jump is a step, which the default already follows at once), the rise stands
  out of the readings' scatter about the line, its slope stands five standard errors above
  zero in the window or in two windows (readings that repeat each other count once), the
  window is full and holds no reading of a replica held at its CPU limit (which says only "at
  least"), and the newest readings have not fallen below it (where a rise stops;
  policies/forecast.py). A falling load is left to the scale-down window, as for every policy;
* **the headroom** its forecasts teach: each is scored against the demand seen when it was
  due, and the 90th percentile of the latest 15 shortfalls is added (few, so that what the
  start of a rise taught is forgotten by its end, where it would overshoot);
* **the daily floor** (`predict.daily`, on by default): once a whole day has been seen, what
  this time of day needed yesterday (the most of its buckets from five minutes before to half an
  hour after), or the same day last week if that was less, plus the headroom its own misses
  teach, as AWS's predictive scaling takes yesterday's curve. On a day that has run quieter
  than yesterday for the last hour, the floor is taken at that pace. It raises the count only
  where yesterday's curve rose; where it was level or fell, it only holds what runs.

A forecast within a tenth of a replica above a count is served by it (SLACK); going up on the
trend, one replica more is taken if the line reaches it within four minutes (BATCH) and its
forecasts have held (TRUSTED), so that a long rise is followed in fewer, larger steps.
Measured in the simulator and on the real engine against the HPA's rules: docs/policies.md,
bench/results/. The reason says which rule asked for the count, with its forecast.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, ClassVar

from pydantic import Field

from policies import saturation
from policies.base import PolicyInput, Proposal
from policies.forecast import Daily, Headroom, Trend
from policies.options import Seconds
from policies.target_tracking import TargetTracking, TargetTrackingOptions

SLACK = 0.1
"""Replicas' worth a forecast may pass a count by and still be served by it: without it, a
forecast of 5.01 asks for a sixth replica."""
BATCH = 240.0
"""Seconds: going up on a forecast, one replica more if the line reaches it this soon, so that
a long rise is followed in fewer steps. Four minutes, not the scale-down window's five: at five,
the day-curve's first step took a replica eight minutes before it was needed (1.11x hpa's
replica-seconds in the policy bench, 1.09x at four, with as many actions)."""
TRUSTED = 0.25
"""Replicas' worth: the most headroom (what the recent forecasts fell short by) with which the
one-more-replica step (BATCH) is still taken. A line whose forecasts one horizon ahead miss by
more is no line to follow four minutes on: on the 20-minute cycle with ±10 % noise two tops of
three took a replica more than they needed that way, held by the scale-down window (1.117x
hpa's replica-seconds in the policy bench at a 5 s interval, 1.094x with the rule, for 42
actions where it took 36 and the HPA 35)."""
STARTUP = 10.0
"""Seconds a replica is taken to need to start, until one has been measured."""
_EPSILON = 1e-9


class PredictiveOptions(TargetTrackingOptions):
    horizon: Seconds | None = Field(default=None, alias="predict.horizon")
    """How far ahead to provision; by default the measured start-up time plus an interval."""
    window: Seconds = Field(default=60.0, alias="predict.window", gt=0)
    """The span of readings the trend's line goes through."""
    daily: bool = Field(default=True, alias="predict.daily")
    """Provision at least what this time of day needed on the days seen (after a whole day)."""


class Predictive(TargetTracking):
    name: ClassVar[str] = "predictive"
    Options: ClassVar[type[PredictiveOptions]] = PredictiveOptions

    def __init__(self, options: PredictiveOptions) -> None:
        super().__init__(options)
        self.options: PredictiveOptions = options
        self._trend: Trend | None = None  # sized once the interval is known
        self._headroom = Headroom(size=15)
        self._daily = Daily()
        # Scored every round and moving slowly: an hour of misses at a 5 s interval.
        self._daily_headroom = Headroom(size=720)
        self._last: float | None = None  # when the last reading was taken
        self._first: tuple[float, float, bool] | None = None  # the reading before the trend
        self._interval = 0.0

    def propose(self, inputs: PolicyInput) -> Proposal:
        base = super().propose(inputs)
        demand = self._demand(inputs, base)
        if base.count is None or demand is None:
            return base
        now, wall = inputs.now, inputs.wall if inputs.wall is not None else inputs.now
        if self._last is not None and now > self._last:
            self._interval = now - self._last
        self._last = now
        if self._trend is None and self._interval > 0:
            self._trend = Trend(max(3, math.ceil(self.options.window / self._interval)))
        horizon = self._horizon(inputs)
        self._headroom.seen(now, demand)
        self._daily_headroom.seen(now, demand)
        if self.options.daily:
            self._daily.add(wall, demand)
        metrics = {**base.metrics, "demand": round(demand, 3)}
        candidates = [
            c for c in (self._led(inputs, demand, horizon, metrics, capped=_capped(inputs, base)),
                        self._floor(inputs, wall, horizon, metrics)) if c is not None
        ]  # fmt: skip
        count, why = max(candidates, default=(0, ""), key=lambda c: c[0])
        if count <= base.count:
            return replace(base, metrics=metrics)
        reason = f"{why}: propose {count} (the load now asks for {base.count})"
        return replace(base, count=count, reason=reason, metrics=metrics, notes=(*base.notes, why))

    def _led(self, inputs: PolicyInput, demand: float, horizon: float,
             metrics: dict[str, float], *, capped: bool) -> tuple[int, str] | None:  # fmt: skip
        """The count for the demand the trend expects one horizon ahead, while it rises."""
        now = inputs.now
        if self._trend is None:
            # The first reading waits for the second (the interval sizes the window), so that
            # a window is full after as many rounds as it holds.
            self._first = (now, demand, capped)
            return None
        if self._first is not None:
            then, before, was_capped = self._first
            self._trend.add(then, before, capped=was_capped)
            self._first = None
        self._trend.add(now, demand, capped=capped)
        line = self._trend.line(now)
        if line is None or not line.rising:
            return None
        forecast = line.level + line.slope * horizon
        self._headroom.expect(now + horizon, forecast)
        headroom = self._headroom.value
        metrics |= {"forecast": round(forecast, 3), "headroom": round(headroom, 3)}
        # No tolerance band: the band is there for noise, and a line that rises through both
        # halves of its window, clear of its scatter, is no noise.
        count = math.ceil(forecast + headroom - SLACK)
        if count > inputs.current and headroom <= TRUSTED:
            # Going up anyway: one replica more if the line reaches it within BATCH, so that a
            # long rise is followed in fewer, larger steps; only while the forecasts hold.
            ahead = line.level + line.slope * (horizon + BATCH) + headroom
            count = max(count, min(math.ceil(ahead - SLACK), count + 1))
        return count, (f"forecast {forecast:.2f} replicas' worth in {horizon:.0f}s (trend "
                       f"{line.slope * 60:+.2f}/min over {self.options.window:g}s) + headroom "
                       f"{headroom:.2f}")  # fmt: skip

    def _floor(self, inputs: PolicyInput, wall: float, horizon: float,
               metrics: dict[str, float]) -> tuple[int, str] | None:  # fmt: skip
        """The count for what this time of day needed on the days before."""
        floor = self._daily.floor(wall + horizon) if self.options.daily else None
        if floor is None or not self._daily.repeats(wall):
            return None
        needed = f"this time of day needed {floor:.2f} before"
        if (pace := self._daily.pace(wall)) < 1:
            # A quieter day than yesterday (a Saturday after a working week) so far: its floor
            # at its own pace, not at yesterday's.
            floor *= pace
            needed += f", {floor:.2f} at today's pace ({pace:.2f} of yesterday's)"
        # A day's readings scatter about its buckets' means: what the floor missed by is
        # learned as the trend's misses are.
        self._daily_headroom.expect(inputs.now + horizon, floor)
        extra = self._daily_headroom.value
        metrics |= {"daily": round(floor, 3), "daily_headroom": round(extra, 3)}
        count = math.ceil(floor + extra - SLACK)
        if not self._daily.rises(wall + horizon):
            # Where yesterday's curve was level or fell, the floor only holds what runs: asking
            # for more there would undo today's scale-down, which found less needed than
            # yesterday did, and the next would undo that.
            count = min(count, inputs.current)
        return count, f"{needed} + headroom {extra:.2f}"

    def _demand(self, inputs: PolicyInput, base: Proposal) -> float | None:
        """Replicas' worth at the target now: the metric over a replica's share, or the ready
        replicas' CPU over the CPU target (their sum: the count cancels out)."""
        o = self.options
        signal = inputs.signal
        if o.metric_target is not None and signal is not None and signal.value is not None:
            return signal.value / o.metric_target
        if o.cpu_target is None or "cpu" not in base.metrics:
            return None
        ready = [s.cpu for s in inputs.samples if s.ready and s.cpu is not None]
        return sum(ready) / o.cpu_target if ready else None

    def _horizon(self, inputs: PolicyInput) -> float:
        if self.options.horizon is not None:
            return self.options.horizon
        startup = inputs.startup if inputs.startup is not None else STARTUP
        return startup + self._interval

    def export(self) -> dict[str, Any]:
        """What the daily floor knows, to be kept across a restart."""
        return self._daily.export()

    def restore(self, saved: dict[str, Any]) -> None:
        self._daily.restore(saved)


def _capped(inputs: PolicyInput, base: Proposal) -> bool:
    """Whether the demand read now is only a lower bound: a replica held at its CPU limit
    reads 100 % however much more it was asked for."""
    return base.saturated or any(s.ready and saturation.saturated(s) for s in inputs.samples)
