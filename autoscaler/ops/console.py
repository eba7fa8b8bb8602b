"""`autoscaler status` and `autoscaler events` in a terminal: a running autoscaler's services as a
table, a line each (as `kubectl get hpa` shows its autoscalers), and its events a line each.

Pure: documents of the API in (a service's `state` as /status and the event stream carry it, the
events as the journal numbers them), text out; the clock is passed in. client.py fetches.

SERVICE      REPLICAS  MIN/MAX  METRICS                       PHASE    CONTROL  LAST ACTION    AGE
shop/web     1/1       1/6      cpu 3%/60%                    paused   paused   -              -
shop/worker  4/4       1/10     cpu 0%, mqtt shop/jobs 35/10  holding  -        scale_up 1->4  2m10s
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

HEADER = ("SERVICE", "REPLICAS", "MIN/MAX", "METRICS", "PHASE", "CONTROL", "LAST ACTION", "AGE")
NONE = "-"
_GAP = "  "
_METRIC_NAME = 24  # characters of a metric's name shown: a query can be a paragraph


def named(name: str, wanted: str | None) -> bool:
    """Whether `name` (`project/service`) is the service asked for as `project/service` or by
    its name alone, as the API matches it; every service when none is asked for."""
    return wanted is None or name == wanted or name.endswith(f"/{wanted}")


class Board:
    """What a terminal shows of the event stream: every service's latest state. The stream sends
    everything once, then only the services that changed and those gone (stream.py)."""

    def __init__(self) -> None:
        self.states: dict[str, Mapping[str, Any]] = {}

    def apply(self, message: Mapping[str, Any]) -> None:
        if message.get("full"):
            self.states.clear()
        for name in message.get("gone", ()):
            self.states.pop(name, None)
        for name, service in message.get("services", {}).items():
            self.states[name] = service["state"]


def states_of(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Each service's state from a /status document (or the stream's first message)."""
    return {name: service["state"] for name, service in status.get("services", {}).items()}


def table(
    states: Mapping[str, Mapping[str, Any]], *, now: float, project: str | None = None
) -> str:
    """The services (of `project`, or all), a line each, by name; then what is wrong with any
    of them, a line each, since a table cell has no room for an error's words."""
    shown = {
        name: state for name, state in sorted(states.items())
        if project is None or state.get("project") == project
    }  # fmt: skip
    if not shown:
        return "no services" + (f" in project {project}" if project is not None else "")
    rows = [HEADER, *(row(name, state, now=now) for name, state in shown.items())]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = [_GAP.join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]  # fmt: skip
    return "\n".join([*lines, *notes(shown)])


def row(name: str, state: Mapping[str, Any], *, now: float) -> tuple[str, ...]:
    desired = state.get("desired")
    bounds = NONE if state.get("min") is None else f"{state['min']}/{state['max']}"
    phase = str(state.get("phase", "?")) + (" (dry run)" if state.get("dry_run") else "")
    at = state.get("last_action_at")
    return (
        name,
        f"{state.get('replicas', '?')}/{NONE if desired is None else desired}",
        bounds,
        metrics(state),
        phase,
        control(state.get("control"), now=now),
        last_action(state.get("last_action")),
        NONE if at is None else age(now - at),
    )


def metrics(state: Mapping[str, Any]) -> str:
    """Each measure the service is scaled on, its value against its target: `cpu 62%/60%`,
    `mqtt jobs 120/10`; `-` for a value not read yet. CPU is shown without a target too (every
    service has one); memory only when its target is set."""
    targets: Mapping[str, float] = state.get("targets") or {}
    shown = []
    for measure in ("cpu", "memory"):
        if measure == "cpu" or measure in targets:
            value, target = state.get(measure), targets.get(measure)
            text = f"{measure} {_percent(value)}"
            shown.append(text if target is None else f"{text}/{_percent(target)}")
    if state.get("metric"):
        text = f"{_shortened(state['metric'])} {_number(state.get('metric_value'))}"
        target = targets.get("metric")
        shown.append(text if target is None else f"{text}/{_number(target)}")
    return ", ".join(shown)


def control(given: Mapping[str, Any] | None, *, now: float) -> str:
    """An operator's control in force: `paused`, `held 4`, and how long it has left."""
    if not given or given.get("action") == "resume":
        return NONE
    what = f"held {given.get('replicas')}" if given.get("action") == "hold" else "paused"
    until = given.get("until")
    if until is None:
        return what
    left = until - now
    return f"{what} ({age(left)} left)" if left > 0 else f"{what} (ended)"


def last_action(words: str | None) -> str:
    """`scale_up 2 → 3` (the state's words) as a cell: `scale_up 2->3`."""
    return NONE if not words else words.replace(" → ", "->")


def age(seconds: float) -> str:
    """A span as `kubectl` writes ages: `45s`, `2m10s`, `3h4m`, `2d5h`."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m{secs}s" if secs else f"{minutes}m"
    return f"{secs}s"


def notes(states: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """What is wrong with the services, a line each: errors, then findings."""
    return [
        f"{name}: {kind}: {state[kind]}"
        for kind in ("error", "finding")
        for name, state in states.items()
        if state.get(kind)
    ]


def event_line(event: Mapping[str, Any]) -> str:
    """An event as the page's list says it: when, whose, what, and why."""
    when = time.strftime("%H:%M:%S", time.localtime(event.get("timeNano", 0) / 1e9))
    actor = event.get("Actor", {}).get("ID", "?")
    what = str(event.get("Action", "?"))
    if event.get("from") is not None and event.get("to") is not None:
        what += f" {event['from']}->{event['to']}"
    why = event.get("reason") or event.get("message")
    return f"{when}  {actor}  {what}" + (f": {why}" if why else "")


def events_of(events: Iterable[Mapping[str, Any]], service: str | None) -> list[Mapping[str, Any]]:
    """The events of `service` (named as `named` matches), or all of them."""
    if service is None:
        return list(events)
    return [e for e in events if named(str(e.get("Actor", {}).get("ID", "")), service)]


def duration(text: str) -> str:
    """A control's `--for`, checked as the API will read it (the labels' durations: `30m`,
    `2h`, `90s`): the text itself, or ValueError saying what is wrong."""
    # Imported here: policies/ reads its entry points as it loads, which `status` never needs.
    from policies.options import seconds

    if not seconds(text) > 0:
        raise ValueError("expected a duration above zero, such as 30m or 2h")
    return text


def answered(answer: Mapping[str, Any]) -> str:
    """The API's answer to a command, in words: the service and the control now in force."""
    given = answer.get("control")
    if not given or given.get("action") == "resume":
        return f"{answer.get('service')}: resumed; the autoscaler decides again"
    what = f"held at {given.get('replicas')}" if given.get("action") == "hold" else "paused"
    why = f" ({given['why']})" if given.get("why") else ""
    until, since = given.get("until"), given.get("since")
    end = "until resumed"
    if until is not None:
        end = f"until {time.strftime('%H:%M:%S', time.localtime(until))}"
        if since is not None:
            end += f" (for {age(until - since)})"
    return f"{answer.get('service')}: {what} by {given.get('who')}{why}, {end}"


def _percent(value: float | None) -> str:
    return NONE if value is None else f"{value:.0f}%"


def _number(value: float | None) -> str:
    """A metric in its own unit: whole above 100, three figures below."""
    if value is None:
        return NONE
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _shortened(name: str) -> str:
    return name if len(name) <= _METRIC_NAME else name[: _METRIC_NAME - 1] + "…"
