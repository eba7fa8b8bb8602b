"""A fence on every action: the lease term it was decided under, checked right before each
request of it reaches the engine.

An instance that is frozen (SIGSTOP, a paused VM, a blocked disk) past its lease's ttl comes
back in the middle of what it was doing; by then another instance leads, and acts on the same
services. Without a fence the creates and removals the frozen one decided still reach the
engine: clones past max, or the new leader's clones removed. So each lease carries a term that
grows with every takeover, and an action carries the term it was decided under (`TERM`, a
context variable: set by the backend before it steps its services, copied into each action's
task as the task is made). Before each write of an action the actuator asks the fence, which
asks the lease: still held, by the same term, renewed within ttl/3 by the monotonic clock
(which a SIGSTOP advances)? If not, the request is not sent: the action is dropped, with a
`Fenced` error, and every write after it too (the clean-up of a half-made clone included).

What no client-side check closes is a freeze between the check and the request it guards: a
few statements, no await between them but the request's own. A request sent then reaches the
engine late by the freeze. The lease's own margin covers a freeze shorter than 2/3 of the ttl
(the holder acts only while its renewal is younger than ttl/3; another takes over after a whole
ttl); a longer one in exactly that window is not fenced here. The new leader's first round
reads what it finds, and each clone says the term that made it (`autoscaler.term`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from autoscaler.errors import Fenced

TERM: ContextVar[int | None] = ContextVar("autoscaler_lease_term", default=None)
"""The lease term the running action was decided under; None outside an action, or where there
is no lease (one instance alone): nothing to fence."""

TERM_LABEL = "autoscaler.term"
"""On each clone: the lease term of the action that made it."""


class Fence:
    def __init__(self, held: Callable[[], int | None]) -> None:
        """`held`: the term this instance holds now and acts under (leading by its monotonic
        clock), or None."""
        self._held = held
        self.dropped = 0
        """Requests not sent: decided under a term this instance no longer held."""

    def check(self, doing: str, service: str | None) -> None:
        """Raise Fenced where the running action's term is not the one held now."""
        decided = TERM.get()
        if decided is None:
            return
        held = self._held()
        if held != decided:
            self.dropped += 1
            raise Fenced(service, doing, decided, held)
