"""One service's metric source, as its controller watches it: the value each round, a failure
told once while it lasts, and the fallback count once the value has been missing long enough
(policies/fallback.py: the rule; here, the clock and the telling)."""

from __future__ import annotations

import logging

from autoscaler.control.context import Context
from autoscaler.control.report import Report
from autoscaler.control.spec import ServiceSpec
from autoscaler.errors import MetricError
from autoscaler.labels import ServiceKey
from policies import fallback
from policies.base import Proposal, Signal
from policies.fallback import Fallback

logger = logging.getLogger(__name__)


class MetricWatch:
    def __init__(self, key: ServiceKey, context: Context, report: Report) -> None:
        self.key = key
        self._ctx = context
        self._report = report
        self.error: str | None = None
        """The source's failure, while it lasts: shown in the state."""
        self.last: Signal | None = None
        """What the source gave when last read (None: the service has no metric)."""
        self._missing_since: float | None = None  # monotonic: when the value went missing
        self._falling_back = False  # the fallback count is in force (told once)

    def read(self, spec: ServiceSpec) -> Signal | None:
        """The service's metric, if it has one; a failing source is reported once, and shown in
        the state while it fails."""
        if spec.metric is None or self._ctx.signal is None:
            self.error = self.last = None
            return None
        signal = self.last = self._ctx.signal(spec.metric)
        if signal.error is None:
            if self.error is not None:
                logger.info("%s: metric %s reads again", self.key, signal.name)
            self.error = None
            return signal
        exc = MetricError(str(self.key), signal.name, signal.error)
        if str(exc) != self.error:
            logger.error("%s", exc)
            self._report.fault(exc)
        self.error = str(exc)
        return signal

    def fallback(
        self, spec: ServiceSpec, signal: Signal | None, proposal: Proposal, now: float
    ) -> Proposal:
        """The metric's fallback count while its value has been missing long enough (`now`,
        the monotonic clock); told once as it begins and once as the metric reads again."""
        missing = signal is not None and signal.value is None and signal.error is not None
        if not missing:
            self._missing_since = None
        elif self._missing_since is None:
            self._missing_since = now
        missing_for = None if self._missing_since is None else now - self._missing_since
        metric, rule = spec.metric, None
        if metric is not None and metric.fallback is not None:
            after = metric.fallback_after
            rule = Fallback(metric.fallback, after if after is not None else 3 * self._ctx.interval)
        due = fallback.due(signal, missing_for, rule)
        if due != self._falling_back and signal is not None and rule is not None:
            self._falling_back = due
            if due:
                message = (f"metric {signal.name} missing for {missing_for or 0:.0f}s: "
                           f"running {rule.replicas}")  # fmt: skip
                self._report.event("fallback", {"replicas": rule.replicas}, message=message)
            else:
                message = f"metric {signal.name} reads again: fallback over"
                self._report.event("fallback_end", {}, message=message)
            logger.warning("%s: %s", self.key, message)
        return fallback.apply(proposal, signal, missing_for, rule)
