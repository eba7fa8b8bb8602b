"""The service: start-up, the control loop, and a bounded shutdown.

    startup ──► every interval: sample ─► evaluate ─► scale_to (per service, concurrent) ─► publish
                     ▲                                                                        │
                     └──────────────────────────── until stop is set ◄────────────────────────┘
    shutdown: finish in-flight scale actions (bounded), flush MQTT, publish offline, cancel the rest

One TaskGroup owns every long-lived task: the inventory's event follower, the MQTT notifier and
each in-flight scale action. A service has at most one action in flight; the loop skips it until
the action is done, so a slow graceful stop never delays other services.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from autoscaler import engine
from autoscaler.actuator import Actuator, ScaleResult, counted
from autoscaler.api import Api, Metrics
from autoscaler.collector import Collector, Sample
from autoscaler.errors import AutoscalerError
from autoscaler.evaluator import Evaluation, Evaluator
from autoscaler.inventory import Inventory, Replica
from autoscaler.labels import ServiceKey, ServiceSpec
from autoscaler.lease import Lease
from autoscaler.notifier import Notifier
from autoscaler.repairs import Repairs, broken
from autoscaler.settings import Settings
from policies.base import Direction

logger = logging.getLogger(__name__)


class App:
    def __init__(self, settings: Settings, *, now: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._now = now
        self.docker = engine.client(settings.docker_host)
        self.inventory = Inventory(self.docker, on_event=self._engine_event)
        self.repairs = Repairs()
        self.lease = (
            Lease(self.docker, settings.lease.name, settings.lease.ttl)
            if settings.lease.enabled
            else None
        )
        self.collector = Collector(self.docker)
        self.evaluator = Evaluator()
        self.actuator = Actuator(self.docker, concurrency=settings.clone_concurrency)
        self.notifier = Notifier(settings.mqtt)
        self.metrics = Metrics()
        self.api = Api(
            settings.api.host,
            settings.api.port,
            metrics=self.metrics,
            ready=self.inventory.ready.is_set,
            status=self.status,
        )
        self._states: dict[ServiceKey, dict[str, Any]] = {}
        # Failed actions in a row per service, and when the last failed: the next attempt
        # waits 2 s, 4 s, ... up to a minute, so a refusing engine is not hammered.
        self._failures: dict[ServiceKey, tuple[int, float]] = {}
        self._inflight: dict[ServiceKey, asyncio.Task[None]] = {}

    async def serve(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then shut down within the configured bound."""
        await self._startup()
        try:
            async with asyncio.TaskGroup() as tg:
                follower = tg.create_task(self.inventory.run(), name="inventory")
                notifier = tg.create_task(self.notifier.run(), name="notifier")
                api = (
                    tg.create_task(self.api.serve(), name="api")
                    if self.settings.api.enabled
                    else None
                )
                lease = tg.create_task(self.lease.run(), name="lease") if self.lease else None
                await self._main_loop(tg, stop)
                await self._shutdown(follower, notifier)
                for task in (api, lease):
                    if task is not None:
                        task.cancel("shutdown")
        finally:
            self.collector.close()
            await self.docker.close()

    async def _startup(self) -> None:
        try:
            version = await engine.ping(self.docker)
        except AutoscalerError as exc:
            # Not fatal: the inventory keeps retrying, and nothing acts until it is back.
            logger.error("%s; will keep retrying", exc)
        else:
            logger.info(
                "engine %s (API %s) at %s",
                version.get("Version"), version.get("ApiVersion"), self.docker.docker_host,
            )  # fmt: skip
        logger.info(
            "interval %.1fs, dry run %s, MQTT %s",
            self.settings.interval,
            self.settings.dry_run,
            f"{self.settings.mqtt.host}:{self.settings.mqtt.port}"
            if self.settings.mqtt.enabled
            else "off",
        )

    async def _main_loop(self, tg: asyncio.TaskGroup, stop: asyncio.Event) -> None:
        next_tick = time.monotonic()
        while not stop.is_set():
            if not self.inventory.ready.is_set():
                logger.debug("engine view not ready; not acting")
            elif self.lease is not None and not self.lease.leading:
                logger.debug("another instance holds lease %s; standing by", self.lease.name)
            else:
                await self.tick(tg)
            next_tick = max(next_tick + self.settings.interval, time.monotonic())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(next_tick - time.monotonic()):
                    await stop.wait()

    async def tick(self, tg: asyncio.TaskGroup) -> None:
        """One round: sample every opted-in container, evaluate each service, start actions."""
        services = self.inventory.services()
        if self.settings.projects:
            services = {k: v for k, v in services.items() if k.project in self.settings.projects}
        for gone in set(self._states) - set(services):
            del self._states[gone]
            self._failures.pop(gone, None)
            self.metrics.forget(gone)
        self.evaluator.forget(set(services))
        self.repairs.forget(set(services))
        started = time.perf_counter()
        samples = await self.collector.sample(r for rs in services.values() for r in rs)
        self.metrics.sampling.observe(time.perf_counter() - started)
        for key, replicas in sorted(services.items()):
            if key in self._inflight or self._backing_off(key):
                continue
            try:
                self._evaluate(tg, key, replicas, samples)
            except AutoscalerError as exc:
                if self.evaluator.report(key, exc):
                    logger.error("%s; skipping this service until it is fixed", exc)
                    self._error(key, exc)
                self._publish_state(key, self._state(key, replicas, None, None, str(exc)))
            except Exception:
                # A bug for one service must not stop the others.
                logger.exception("%s: unexpected error while evaluating", key)

    def _evaluate(
        self,
        tg: asyncio.TaskGroup,
        key: ServiceKey,
        replicas: Sequence[Replica],
        samples: dict[str, Sample],
    ) -> None:
        spec = self.evaluator.spec(key, replicas)
        if self.evaluator.error(key) is not None:
            logger.info("%s: labels are valid again", key)
        self.evaluator.report(key, None)
        if not any(r.running for r in replicas if not r.is_clone):
            # Stopped by its owner (`docker compose stop`, or still being created): cloning it
            # back to life would fight them.
            state = self._state(key, replicas, spec, None, None)
            state["reason"] = "no container of the service's own is running: not scaling"
            self._publish_state(key, state)
            return
        if not self.settings.dry_run and self._repair(tg, spec, replicas):
            return
        evaluation = self.evaluator.evaluate(spec, replicas, samples, self._now())
        self.metrics.evaluated(key, evaluation)
        decision = evaluation.decision
        act = decision.direction is not Direction.NONE and not spec.paused
        level = logging.INFO if act else logging.DEBUG
        logger.log(
            level, "%s: %d -> %d: %s", key, decision.current, decision.desired, decision.reason
        )
        self._publish_state(key, self._state(key, replicas, spec, evaluation, None))
        if not act:
            return
        if self.settings.dry_run:
            self._announce(spec, evaluation, None)
            return
        self._inflight[key] = tg.create_task(
            self._act(spec, replicas, evaluation), name=f"scale {key}"
        )

    def _repair(
        self, tg: asyncio.TaskGroup, spec: ServiceSpec, replicas: Sequence[Replica]
    ) -> bool:
        """Mend broken clones when the crash-loop backoff allows. True while any are broken: the
        service's size is not decided then, or a scale-up would sidestep the backoff."""
        if not any(broken(r) for r in replicas):
            return False
        repair = self.repairs.plan(spec.key, replicas, time.monotonic())
        if repair is None:
            state = self._state(spec.key, replicas, spec, None, None)
            state["reason"] = "broken clones: waiting out the crash-loop backoff to replace them"
            self._publish_state(spec.key, state)
            return True
        logger.warning("%s: repairing: %s", spec.key, "; ".join(repair.reasons))

        async def mend() -> None:
            try:
                result = await self.actuator.repair(
                    spec.key, replicas, repair.remove, repair.replace
                )
                await self._settle(spec.key, result)
                names = {r.id: r.name for r in repair.remove}
                self.notifier.event(
                    spec.key,
                    "repair",
                    {"removed": len(result.removed), "created": len(result.created)},
                    removed=[names.get(i, i[:12]) for i in result.removed],
                    created=len(result.created),
                    reason="; ".join(repair.reasons),
                )
            finally:
                del self._inflight[spec.key]

        self._inflight[spec.key] = tg.create_task(mend(), name=f"repair {spec.key}")
        return True

    def _engine_event(self, action: str, replica: Replica) -> None:
        """Engine events worth telling: an OOM kill, as it happens."""
        if action == "oom":
            logger.warning("%s: %s was killed for lack of memory", replica.key, replica.name)
            self.notifier.event(
                replica.key, "oom", {"container": replica.name}, container=replica.id
            )

    async def _act(
        self, spec: ServiceSpec, replicas: Sequence[Replica], evaluation: Evaluation
    ) -> None:
        try:
            result = await self.actuator.scale_to(spec.key, replicas, evaluation.decision.desired)
            await self._settle(spec.key, result)
            self._announce(spec, evaluation, result)
            logger.info(
                "%s: scaled %d -> %d in %.2fs",
                spec.key,
                result.before,
                result.after,
                result.seconds,
            )
        except AutoscalerError as exc:
            logger.error("%s", exc)
            self._error(spec.key, exc)
            self._outcome(spec.key, [exc])
        except Exception:
            logger.exception("%s: unexpected error while scaling", spec.key)
        finally:
            del self._inflight[spec.key]

    def _announce(
        self, spec: ServiceSpec, evaluation: Evaluation, result: ScaleResult | None
    ) -> None:
        decision = evaluation.decision
        after = decision.desired if result is None else result.after
        action = "scale_up" if decision.direction is Direction.UP else "scale_down"
        attributes: dict[str, Any] = {
            "policy": spec.policy_name,
            "from": decision.current,
            "to": after,
        }
        if result is None:
            attributes["dry_run"] = "true"
        if after != decision.current:
            self.metrics.acted(spec.key, action)
            self.notifier.event(
                spec.key,
                action,
                attributes,
                **{"from": decision.current, "to": after, "desired": decision.desired},
                reason=decision.reason,
                dry_run=result is None,
            )
        replicas = self.inventory.services().get(spec.key, [])
        self._publish_state(spec.key, self._state(spec.key, replicas, spec, evaluation, None))

    async def _settle(self, key: ServiceKey, result: ScaleResult) -> None:
        """After an action: bring the view up to date, report its errors, count its outcome."""
        for container_id in result.created + result.removed:
            await self.inventory.refresh(container_id)
        for exc in result.errors:
            logger.error("%s", exc)
            self._error(key, exc)
        self._outcome(key, result.errors)

    def _backing_off(self, key: ServiceKey) -> bool:
        count, last = self._failures.get(key, (0, 0.0))
        return count > 0 and time.monotonic() - last < _failure_wait(count)

    def _outcome(self, key: ServiceKey, errors: Sequence[AutoscalerError]) -> None:
        """Count a failed action towards the service's backoff; a clean one clears it."""
        if errors:
            count = self._failures.get(key, (0, 0.0))[0] + 1
            self._failures[key] = (count, time.monotonic())
            logger.warning("%s: action failed; next try in %.0fs", key, _failure_wait(count))
        else:
            self._failures.pop(key, None)

    def _error(self, key: ServiceKey, exc: AutoscalerError) -> None:
        self.metrics.failed(key, exc)
        self.notifier.error(key, exc)

    def _publish_state(self, key: ServiceKey, state: dict[str, Any]) -> None:
        self._states[key] = state
        self.notifier.state(key, state)

    def status(self) -> dict[str, Any]:
        """Every service's state and recent decisions, newest last: what /status serves."""
        history = self.evaluator.history
        return {
            "ready": self.inventory.ready.is_set(),
            "engine_events": self.inventory.events_seen,
            "leading": self.lease.leading if self.lease else True,
            "dry_run": self.settings.dry_run,
            "mqtt": {
                "connected": self.notifier.connected,
                "pending": self.notifier.pending,
                "dropped": self.notifier.dropped,
            },
            "services": {
                str(key): {
                    "state": state,
                    "decisions": [e.to_dict() for e in history.get(key, ())],
                }
                for key, state in sorted(self._states.items())
            },
        }

    def _state(
        self,
        key: ServiceKey,
        replicas: Sequence[Replica],
        spec: ServiceSpec | None,
        evaluation: Evaluation | None,
        error: str | None,
    ) -> dict[str, Any]:
        live = counted(replicas)
        state: dict[str, Any] = {
            "project": key.project,
            "service": key.service,
            "replicas": len(live),
            "containers": sorted(r.name for r in live),
            "error": error,
            "time": self._now(),
            "instance": self.lease.holder if self.lease else None,
        }
        if spec is not None:
            state |= {
                "min": spec.minimum,
                "max": spec.maximum,
                "policy": spec.policy_name,
                "paused": spec.paused,
                "dry_run": self.settings.dry_run,
            }
        if evaluation is not None:
            reason = evaluation.decision.reason
            state |= {
                "desired": evaluation.decision.desired,
                "reason": f"paused; would: {reason}" if spec and spec.paused else reason,
                "cpu": evaluation.cpu,
                "memory": evaluation.memory,
            }
        return state

    async def _shutdown(self, follower: asyncio.Task[None], notifier: asyncio.Task[None]) -> None:
        if self._inflight:
            logger.info("waiting for %d scale actions to finish", len(self._inflight))
            _, pending = await asyncio.wait(
                list(self._inflight.values()), timeout=self.settings.shutdown_timeout
            )
            for task in pending:
                task.cancel(f"shutdown: not finished within {self.settings.shutdown_timeout}s")
        follower.cancel("shutdown")
        self.notifier.close()
        _, pending_mqtt = await asyncio.wait([notifier], timeout=5.0)
        for task in pending_mqtt:
            task.cancel("shutdown: MQTT did not flush within 5s")


def _failure_wait(failures: int) -> float:
    """Seconds a service waits after `failures` failed actions in a row: 2, 4, ... up to 60."""
    return min(2.0**failures, 60.0)
