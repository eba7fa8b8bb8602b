"""An operator's runtime control as one service's controller sees it (controls.py says what a
control is): the spec it bends each round, and each change told once."""

from __future__ import annotations

import logging
from collections.abc import Callable

from autoscaler.control.controls import Control
from autoscaler.control.report import Report
from autoscaler.control.spec import ServiceSpec

logger = logging.getLogger(__name__)


class ControlWatch:
    """One service's runtime control as its controller sees it each round: the spec bent by
    the control in force, and each change told once, as an event with who and why (a pause, a
    hold, a resume, or a control that ran out). What was in force when this instance began is
    taken as it is, not told again: the instance that set it told it."""

    def __init__(self, read: Callable[[], Control | None], report: Report) -> None:
        self._read = read
        self._report = report
        self.current: Control | None = None
        """The control in force now, or None."""
        self._seen = False

    def applied(self, spec: ServiceSpec, wall: float) -> ServiceSpec:
        latest = self._read()
        now = latest if latest is not None and latest.in_force(wall) else None
        if self._seen and now != self.current:
            self._tell(now, latest, wall)
        self._seen, self.current = True, now
        return now.applied(spec) if now is not None else spec

    def _tell(self, now: Control | None, latest: Control | None, wall: float) -> None:
        if now is not None:
            told = now
        elif latest is not None and latest.action == "resume":
            told = latest
        else:
            # Ran out: the control that ended is named, and that its time did it.
            ended = self.current
            assert ended is not None
            told = Control("resume", since=wall, who=ended.who, why=f"{ended.describe()}: ran out")
        message = told.describe()
        logger.info("%s: %s", self._report.key, message)
        attributes = {"who": told.who, "why": told.why}
        if told.replicas is not None:
            attributes["replicas"] = str(told.replicas)
        if told.until is not None:
            attributes["until"] = f"{told.until:.0f}"
        self._report.event(told.action, attributes, message=message, control=told.to_dict())
