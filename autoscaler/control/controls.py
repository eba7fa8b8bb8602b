"""An operator's control over one service at run time: `pause` or `hold N`, for a while or until
`resume`, without touching the service's labels (a label can only change by recreating the
container, the very thing an operator does not want in the middle of an incident).

    pause           the count stays where it is; the service says what it would do (as the
                    `autoscaler.paused` label does)
    hold N          the count stays N, within the labels' min and max, whatever the policy says
    resume          the control ends (so does one whose `until` has passed)

A control is a record with who set it and why, when, and until when. The backend keeps it
where every instance reads it (on the engine, so that a restart or a leader change keeps it);
this module only says what one means: its wire form, its record form (string labels) and how it
bends a service's spec. A command is parsed here too, from the API's or MQTT's JSON, so that
both paths refuse the same bad input with the same words.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from autoscaler.control.spec import ServiceSpec
from autoscaler.errors import AutoscalerError
from policies.options import YEAR, seconds
from policies.schedule import Schedule

Action = Literal["pause", "hold", "resume"]
ACTIONS: tuple[Action, ...] = ("pause", "hold", "resume")

# The record's labels (on the engine): which service, and the control as JSON.
SERVICE = "autoscaler.control.service"
RECORD = "autoscaler.control.record"

_TEXT = 200  # characters of `who` and `why` kept: a reason, not a document


class ControlError(AutoscalerError):
    """A command that cannot be carried out: bad input (`status` 400), no such service (404),
    a name several services answer to (409)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Control:
    action: Action
    since: float
    """When it was set (Unix time)."""
    until: float | None = None
    """When it ends on its own (Unix time); None: at `resume`."""
    replicas: int | None = None
    """The count a `hold` keeps."""
    # A `resume` is a control too: kept as the service's latest command, so that who ended the
    # last one and why is told, and a repeat of its MQTT command is known as one.
    who: str = "api"
    why: str = ""
    id: str = ""
    """The command's id where it had one (MQTT): a command delivered twice is set once."""

    def in_force(self, wall: float) -> bool:
        """It bends the service now: a pause or hold whose `until` has not passed."""
        return self.action != "resume" and (self.until is None or wall < self.until)

    def applied(self, spec: ServiceSpec) -> ServiceSpec:
        """The spec as the control bends it: paused, or min and max both the held count (within
        the spec's own bounds) and no schedule."""
        if self.action == "resume":
            return spec
        if self.action == "pause":
            return replace(spec, paused=True)
        held = min(max(self.replicas or 0, spec.minimum), spec.maximum)
        # The operator's count wins over a schedule's windows, the policy, and the label's pause.
        return replace(spec, minimum=held, maximum=held, schedule=Schedule(), paused=False)

    def describe(self) -> str:
        """`held at 8 for 2h by alice (launch)`, for reasons and the log."""
        what = {"pause": "paused", "resume": "resumed"}.get(self.action, f"held at {self.replicas}")
        until = "" if self.until is None else f" for {_left(self.until - self.since)}"
        why = f" ({self.why})" if self.why else ""
        return f"{what}{until} by {self.who}{why}"

    def to_dict(self) -> dict[str, Any]:
        """The wire form: /status, the retained state, events."""
        return {"action": self.action, "replicas": self.replicas, "since": self.since,
                "until": self.until, "who": self.who, "why": self.why}  # fmt: skip

    def record(self, key: str) -> dict[str, str]:
        """The labels of its record on the engine."""
        return {SERVICE: key, RECORD: json.dumps(self.to_dict() | {"id": self.id})}

    @classmethod
    def from_record(cls, labels: Mapping[str, str]) -> Control | None:
        """The control a record's labels hold; None for one that cannot be read (written by
        another release, or by hand): it is not obeyed, and the next command replaces it."""
        try:
            found = json.loads(labels[RECORD])
            action = found["action"]
            if action not in ACTIONS:
                return None
            replicas = found.get("replicas")
            until = found.get("until")
            return cls(
                action=action,
                since=float(found["since"]),
                until=None if until is None else float(until),
                replicas=None if replicas is None else int(replicas),
                who=str(found.get("who", "")),
                why=str(found.get("why", "")),
                id=str(found.get("id", "")),
            )
        except (KeyError, TypeError, ValueError):
            return None


def command(body: object, *, wall: float, who: str = "api") -> tuple[str, Control]:
    """The API's or MQTT's JSON body as the service it names (`project/service` or `service`)
    and the control it sets; ControlError naming the field otherwise."""
    if not isinstance(body, dict):
        raise ControlError("a command is a JSON object: service, action, and replicas or for")
    service = body.get("service")
    if not isinstance(service, str) or not service.strip():
        raise ControlError("service: expected project/service or a service's name")
    action = body.get("action")
    if action not in ACTIONS:
        raise ControlError(f"action: expected one of {', '.join(ACTIONS)}, got {action!r}")
    given_who, why, ident = body.get("who", who), body.get("why", ""), body.get("id", "")
    if not all(isinstance(v, str) for v in (given_who, why, ident)):
        raise ControlError("who, why and id: expected text")
    until = None
    if action != "resume" and (lasting := body.get("for")) is not None:
        try:
            duration = seconds(lasting) if isinstance(lasting, str) else float(lasting)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ControlError(f"for: {exc}") from exc
        if not (math.isfinite(duration) and 0 < duration <= YEAR):
            raise ControlError(
                "for: expected a duration above zero and at most a year, such as 30m or 2h"
            )
        until = wall + duration
    replicas = None
    if action == "hold":
        count = body.get("replicas")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ControlError("replicas: a hold needs a whole number of replicas, 0 or more")
        replicas = count
    control = Control(action=action, since=wall, until=until, replicas=replicas,
                      who=given_who.strip()[:_TEXT] or who, why=why.strip()[:_TEXT],
                      id=ident[:_TEXT])  # fmt: skip
    return service.strip(), control


def check(control: Control, spec: ServiceSpec | None, key: str) -> None:
    """A hold outside the labels' min and max is refused, not quietly clamped: the operator
    asked for a count the service's own bounds forbid."""
    if control.action != "hold" or spec is None:
        return
    assert control.replicas is not None
    if not spec.minimum <= control.replicas <= spec.maximum:
        raise ControlError(
            f"service {key}: hold {control.replicas} is outside its min and max "
            f"({spec.minimum}..{spec.maximum}, autoscaler.min and autoscaler.max)"
        )


def _left(span: float) -> str:
    span = max(0, round(span))
    hours, rest = divmod(span, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if v) or "0s"
