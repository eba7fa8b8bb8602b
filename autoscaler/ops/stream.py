"""What the page's event stream sends after each round: the whole picture once, then only what
changed.

    first message   {"full": true, header..., "services": {name: {"state": ...}}, "events": [...]}
    then, a round   {header..., "services": {changed only}, "gone": [...], "events": [new only]}

A service counts as changed by the rule its retained MQTT state is republished by
(ServiceState.differs): a count, a phase, an error, an action or a setting, or CPU, memory or
its metric moving past the band. What each open page was sent is remembered per page, so a page
that misses a round (a slow reader) is told everything that changed since it last heard, never
less. Decisions and history are not streamed: the page asks for one service's when it opens it
(/status?service=, /history?service=).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autoscaler.control.state import ServiceState
from autoscaler.mqtt.journal import Journal

FIRST_EVENTS = 100
"""Events the first message carries (the newest); the page's list keeps this many."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The instance and its services after a round, as the page shows them."""

    header: Mapping[str, Any]
    """The instance's own state: engine, lease, MQTT, swarm, dry run."""
    states: Mapping[str, ServiceState]


class Follower:
    """One open page: what it was sent, so that the next message says only what is new."""

    def __init__(self, journal: Journal, band: float) -> None:
        self._journal, self._band = journal, band
        self._sent: dict[str, ServiceState] | None = None
        self._seen = 0  # the newest event sent

    def message(self, snapshot: Snapshot) -> dict[str, Any]:
        """The next message for this page, and what it was sent is now `snapshot`."""
        states, sent = snapshot.states, self._sent
        out: dict[str, Any] = dict(snapshot.header)
        if sent is None:
            out["full"] = True
            changed = dict(states)
            events = self._journal.after(0, FIRST_EVENTS)
            self._sent = sent = {}
        else:
            changed = {
                name: state for name, state in states.items()
                if name not in sent or state.differs(sent[name], self._band)
            }  # fmt: skip
            out["gone"] = sorted(name for name in sent if name not in states)
            for name in out["gone"]:
                del sent[name]
            events = self._journal.after(self._seen)
        sent.update(changed)
        self._seen = self._journal.last
        out["services"] = {name: {"state": s.to_dict()} for name, s in sorted(changed.items())}
        out["events"] = events
        return out
