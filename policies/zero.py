"""Scale to zero and back: when a service with `autoscaler.min: "0"` goes to sleep, and when it
wakes.

    awake ──(its metric below activation for scale-down.to-zero-after)──► asleep (0 running)
      ▲                                                                       │
      └─────────────────(its metric reaches activation)───────────────────────┘

Only a metric can wake a service: a CPU reading needs a replica running, so `min: "0"` needs a
metric source (spec.py says so as a label error). The metric is active at `metric.activation`
or above, and above 0 where no activation is set (KEDA's rule): a proxy's requests in flight, a
queue's depth. A missing value is never quiet (no sleep on missing data), and wakes a service
only through its `metric.fallback` (pipeline.py asks fallback.py).

Pure: values and the clock (any that only moves forward) in, answers out; the controller acts.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.options import BehaviorOptions


@dataclass(frozen=True, slots=True)
class ZeroRule:
    after: float
    """Seconds the metric must stay below activation before the last replica goes."""
    activation: float | None = None
    """The value from which the service is wanted; above 0 when None."""

    @classmethod
    def of(cls, behavior: BehaviorOptions, options: object) -> ZeroRule:
        """The rule a service's labels set: `scale-down.to-zero-after` and, where its policy
        reads one, `metric.activation`."""
        return cls(behavior.to_zero_after, getattr(options, "metric_activation", None))

    def active(self, value: float | None) -> bool:
        """Whether `value` asks for the service to run."""
        if value is None:
            return False
        return value >= self.activation if self.activation is not None else value > 0

    def describe(self, value: float | None) -> str:
        threshold = f"activation {self.activation:g}" if self.activation is not None else "0"
        if value is None:
            return "no value"
        relation = "reaches" if self.active(value) else "below"
        if self.activation is None:
            relation = "above" if self.active(value) else "at"
        return f"{value:g} {relation} {threshold}"


class Quiet:
    """How long a running service's metric has been below activation, without a break."""

    def __init__(self, rule: ZeroRule) -> None:
        self.rule = rule
        self._since: float | None = None

    def observe(self, value: float | None, now: float) -> None:
        """One round's value; active or missing starts the quiet afresh."""
        if value is None or self.rule.active(value):
            self._since = None
        elif self._since is None:
            self._since = now

    def lasted(self, now: float) -> float:
        """Seconds of quiet so far (0 while it is not quiet)."""
        return 0.0 if self._since is None else now - self._since

    def due(self, now: float) -> bool:
        """Whether the quiet has lasted long enough for the service to go to zero."""
        return self._since is not None and now - self._since >= self.rule.after
