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
from policies.base import Signal
from policies.fallback import Fallback
from policies.pipeline import Outcome

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

    def rule(self, spec: ServiceSpec) -> Fallback | None:
        """The metric's fallback, where its labels set one: the count, and the wait (three
        intervals unless said)."""
        metric = spec.metric
        if metric is None or metric.fallback is None:
            return None
        after = metric.fallback_after
        return Fallback(metric.fallback, after if after is not None else 3 * self._ctx.interval)

    def tell(self, signal: Signal | None, outcome: Outcome, rule: Fallback | None) -> None:
        """The fallback count coming into force, told once as it begins, and once as the
        metric reads again."""
        due = outcome.falling_back
        if due == self._falling_back or signal is None or rule is None:
            return
        self._falling_back = due
        if due:
            message = (f"metric {signal.name} missing for {outcome.missing_for or 0:.0f}s: "
                       f"running {rule.replicas}")  # fmt: skip
            self._report.event("fallback", {"replicas": rule.replicas}, message=message)
        else:
            message = f"metric {signal.name} reads again: fallback over"
            self._report.event("fallback_end", {}, message=message)
        logger.warning("%s: %s", self.key, message)
