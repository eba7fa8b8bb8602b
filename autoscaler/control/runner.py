"""The one way a controller's side effect runs: at most one action of a service in flight, its
result recorded, the view refreshed, and any error, expected or not, an error event and a
backoff. Nothing escapes into the TaskGroup, whichever kind of action it was.

    run ─► action ─► its containers refreshed, the sampling restarted ─► (look) ─► acted
              │                                                                     │
              └── AutoscalerError, or any other (a bug: InternalError) ─────────────┤
                                                                                    ▼
                 errors: told, backoff 2, 4, ... 60 s ─► settled(failure, error)
                 only the owner's (its template leaving): ─► settled(None, error), no backoff
                 none:   backoff reset ────────────────────► settled(None, None)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from autoscaler.control.context import Context
from autoscaler.control.replicas import ScaleResult
from autoscaler.control.report import Report
from autoscaler.control.startup import Startup
from autoscaler.errors import AutoscalerError, Backoff, InternalError, TemplateLeaving
from autoscaler.labels import ServiceKey

logger = logging.getLogger(__name__)

Settled = Callable[[str, str | None, AutoscalerError | None], None]
"""What the controller shows once an action ended: what it was doing, the failure in words and
its first error; None and the owner's error where only its owner held it (its template leaving);
None and None when it succeeded."""


class Runner:
    def __init__(
        self,
        key: ServiceKey,
        context: Context,
        report: Report,
        startup: Startup,
        settled: Settled,
    ) -> None:
        self.key = key
        self._ctx = context
        self._report = report
        self._startup = startup
        self._settled = settled
        self.inflight: asyncio.Task[None] | None = None
        self._failures = Backoff(start=2.0, cap=60.0)

    @property
    def busy(self) -> bool:
        return self.inflight is not None

    def failing(self) -> str | None:
        """While the last action's backoff lasts, how long is left, in words."""
        monotonic = self._ctx.clock.monotonic()
        if self._failures.ready(monotonic):
            return None
        return f"the last action failed; next try in {self._failures.left(monotonic):.0f}s"

    def run(
        self,
        tg: asyncio.TaskGroup,
        doing: str,
        action: Coroutine[Any, Any, ScaleResult],
        *,
        look: bool = False,
    ) -> None:
        """Run `action` as the service's one action in flight, in `tg`. `look`: the next step is
        decided as soon as the new replicas' windows measure, not at the next round."""
        began = self._ctx.clock.monotonic()
        self.inflight = tg.create_task(
            self._guarded(doing, action, began, look), name=f"{doing} {self.key}"
        )

    async def _guarded(
        self, doing: str, action: Coroutine[Any, Any, ScaleResult], began: float, look: bool
    ) -> None:
        errors: list[AutoscalerError] = []
        try:
            result = await action
            errors += result.errors
            self._startup.created(result.created, began)
            # A clone found gone is refreshed as a removed one is: the view may still hold it.
            for container_id in (*result.created, *result.removed, *result.gone, *result.stopped,
                                 *result.started):  # fmt: skip
                await self._ctx.refresh(container_id)
            # The next decision looks at the load spread over the count there is now.
            await self._ctx.restart(self._ctx.view(self.key))
            if look:
                # A saturated service grows on what its windows prove, a step at a time: the
                # next step is decided as soon as they measure, not at the next round. (Not
                # after other actions: a metric that lags, a request rate, would be read while
                # it still rises, and the count followed in more, smaller steps.)
                self._ctx.look(self.key, result.created)
        except AutoscalerError as exc:
            errors.append(exc)
        except Exception as exc:
            logger.exception("%s: unexpected error while %s", self.key, doing)
            errors.append(InternalError(str(self.key), doing, exc))
        finally:
            self.inflight = None
            self._ctx.acted(self.key)
        held = [e for e in errors if isinstance(e, TemplateLeaving)]
        errors = [e for e in errors if not isinstance(e, TemplateLeaving)]
        for error in errors:
            logger.error("%s", error)
            self._report.fault(error)
        if held and not errors:
            # The owner is replacing or removing the template (Compose v1 stops the old one
            # before it makes the new): the engine's next event of the service, the new one
            # started, tries again, where a backoff would wait past it to the next round.
            logger.info("%s: %s; holding until its owner is done", self.key, held[0])
            self._settled(doing, None, held[0])
        elif errors:
            self._failures.failed(self._ctx.clock.monotonic())
            reason = f"{doing} failed; next try in {self._failures.wait:.0f}s: {errors[0]}"
            logger.warning("%s: %s", self.key, reason)
            self._settled(doing, reason, errors[0])
        else:
            self._failures.succeeded()
            self._settled(doing, None, None)
