"""`autoscaler explain SERVICE`: the recent decisions of a running autoscaler, from its /status."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def _head(name: str, state: dict[str, Any]) -> str:
    """A service's first lines: its count, bounds, phase, and what is wrong or in force."""
    head = f"{name}: {state.get('replicas')} replicas"
    if state.get("min") is not None:
        head += f" (min {state['min']}, max {state['max']}), policy {state['policy']}"
    head += f", {state.get('phase', '?')}"
    if state.get("sampler"):
        head += f", sampled by {state['sampler']}"
    for note in ("error", "finding"):
        if state.get(note):
            head += f"\n  {note}: {state[note]}"
    if state.get("schedule"):
        head += f"\n  {state['schedule']}"
    if control := state.get("control"):
        what = "held at {replicas}".format(**control) if control["action"] == "hold" else "paused"
        until = (f"until {datetime.fromtimestamp(control['until']).strftime('%H:%M:%S')}"
                 if control.get("until") else "until resumed")  # fmt: skip
        why = f" ({control['why']})" if control.get("why") else ""
        head += f"\n  control: {what} by {control['who']}{why}, {until}"
    return head


def render(status: dict[str, Any], last: int) -> str:
    lines: list[str] = []
    for name, service in status["services"].items():
        lines.append(_head(name, service["state"]))
        for d in service["decisions"][-last:]:
            when = datetime.fromtimestamp(d["time"]).strftime("%H:%M:%S")
            arrow = f"{d['from']} -> {d['to']}" if d["to"] != d["from"] else f"hold {d['from']}"
            lines.append(f"  {when}  {arrow:<10} {d['reason']}")
            lines.append(
                f"      proposal {d['proposal']}, stabilized {d['stabilized']}, "
                f"bound by {d['bound'] or 'nothing'}"
            )
            for step in d["steps"]:
                lines.append(f"      - {step}")
            samples = []
            for s in d["samples"]:
                cpu = "-" if s["cpu"] is None else f"{s['cpu']:.1f}%"
                text = f"{s['container']} cpu {cpu}"
                if s.get("throttled"):
                    text += f" (throttled {s['throttled']:.0%})"
                if s["memory"] is not None:
                    text += f" mem {s['memory']:.1f}%"
                if not s["counted"]:
                    text += f" (ignored: {s['why_not']})"
                samples.append(text)
            lines.append("      samples: " + "; ".join(samples))
        if (standing := _standing(service["state"], service["decisions"])) is not None:
            lines.append(standing)
    return "\n".join(lines)


def _standing(state: dict[str, Any], decisions: list[dict[str, Any]]) -> str | None:
    """A line for a hold that has stood since its decision: quiet rounds (control/quiet.py)
    keep it without deciding again while the readings stay where it holds, so the newest
    decision can be minutes older than the state."""
    if (
        not decisions
        or state.get("phase") != "holding"
        or decisions[-1]["to"] != decisions[-1]["from"]
    ):
        return None
    decided, now = decisions[-1]["time"], state.get("time")
    if now is None or now - decided < 1.0:
        return None
    cpu = "" if state.get("cpu") is None else f" (cpu {state['cpu']:.1f}%)"
    since, read = (datetime.fromtimestamp(t).strftime("%H:%M:%S") for t in (decided, now))
    held = f"hold {decisions[-1]['to']}"
    return f"  {read}  {held:<10} stands since {since}: its readings{cpu} ask for the same"


def replicas(status: dict[str, Any], project: str | None, *, compose_args: bool) -> str:
    """Each service's running count; with `compose_args`, as `--scale` arguments that make
    `docker compose up` keep them (a plain `up` removes what the file does not list): of the
    Compose services only, and never fewer than the user's own containers, running or not, or
    that `up` would remove some of them (a service its owner stopped runs none)."""
    states = {
        name: service["state"]
        for name, service in status["services"].items()
        if project is None or service["state"].get("project") == project
    }
    if compose_args:
        return " ".join(
            f"--scale {state['service']}={max(state['replicas'], state.get('own') or 0)}"
            for state in states.values()
            if state.get("scope", "local") == "local"
        )
    return "\n".join(f"{name} {state['replicas']}" for name, state in states.items())
