"""`make chaos`: faults while it scales, one after another, with the invariants of watch.py checked
all along from the engine's events and the broker (issue 35).

The stack (stack.py): a Compose project of a worker on a queue depth published over MQTT, a
service at zero woken by its own depth, and a web service behind Caddy on its CPU under
open-loop load; two autoscaler processes, as users run them (`python -m autoscaler run`), one
leading and one standing by (lease ttl 6 s, 1 s interval). Each fault (faults.py) is injected
while a scale is under way, and the time until the service it hit runs the count its demand
asks for is its recovery. The web's requests sent from one fault until the next are counted,
failed and sent. After the last fault the user takes the stack down while it is scaled, and
nothing of it may remain or come back.

Then, on the three-node swarm (swarm.py), one node's link cut while its service scales up.

Full: `make chaos` (the table in bench/results/chaos.txt). Short (make test's
tests/integration/test_chaos.py): the faults that need no shared part stopped, no swarm.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

from bench.chaos.faults import FULL, SHORT, Fault, Injected
from bench.chaos.stack import INTERVAL, MAXIMUM, TTL, Run, stack
from bench.chaos.swarm import swarm_link_cut
from bench.chaos.watch import INVARIANTS, Watch, watching

__all__ = ["FULL", "SHORT", "Result", "chaos", "main", "table"]

RECOVERY = 60.0  # seconds a fault's recovery is waited for at most


@dataclass
class Result:
    fault: str
    recovery: float | None = None
    """Seconds from the fault until the service it hit ran the count its demand asks for."""
    stuck: str = ""
    """Where it did not recover: the service's count against its demand's."""
    violations: dict[str, int] = field(default_factory=dict)
    requests: tuple[int, int] = (0, 0)
    """The web's requests sent from this fault until the next: (failed, sent)."""
    failures: str = ""
    """How they failed, the most frequent first."""
    note: str = ""


async def _recovered(run: Run, watch: Watch, service: str, since: float) -> float | None:
    """Seconds from `since` until `service` ran the count its demand asks for (0 where it ran it
    already), from the engine's events: during the fault, or waited for after it."""
    accepted = run.accepted(service)
    await watch.until(lambda: watch.reached(service, accepted, since) is not None, RECOVERY)
    reached = watch.reached(service, accepted, since)
    return None if reached is None else reached - since


def _wrong(watch: Watch, result: Result, injected: Injected, count: int, how: str) -> None:
    """`count` jobs stranded (a worker took them and never finished) or done twice during
    `result`'s fault: the autoscaler's stops' doing, unless the fault stopped every container
    itself (the engine's restart: the worker's and the queue's own at-least-once)."""
    if injected.stops_all:
        result.note += f"{count} jobs {how} where the fault itself stopped every container. "
        return
    watch.violated("lost jobs", f"{count} jobs {how} during {result.fault}")
    result.violations["lost jobs"] = result.violations.get("lost jobs", 0) + count


def _since(watch: Watch, before: dict[str, int]) -> dict[str, int]:
    return {k: len(v) - before.get(k, 0) for k, v in watch.violations.items()}


async def chaos(faults: dict[str, Fault], broker: tuple[str, int]) -> tuple[list[Result], Watch]:
    async with stack(broker) as run:
        watch = Watch(run.project, MAXIMUM, f"chaos-lease-{run.project}")
        async with watching(run.platform.docker_host, broker, run.prefix, watch), \
                asyncio.TaskGroup() as tg:  # fmt: skip
            helpers = [tg.create_task(run.publish()), tg.create_task(run.statuses())]
            await run.compose("up", "-d")
            helpers.append(
                tg.create_task(run.jobs.produce(run.platform.docker_host, run.redis(), run.demand))
            )
            helpers.append(tg.create_task(run.send_load()))
            await run.spawn()
            await run.spawn()
            await watch.until(lambda: run.leader() is not None, 30)
            await watch.until(lambda: watch.count("worker") in run.accepted(), 30)
            results: list[Result] = []
            injections: list[Injected] = []
            for name, fault in faults.items():
                before = {k: len(v) for k, v in watch.violations.items()}
                begun = time.monotonic()
                injected = await fault(run, watch)
                injections.append(injected)
                result = Result(name, await _recovered(run, watch, injected.service, injected.at))
                if result.recovery is None:
                    result.stuck = (
                        f"{injected.service}: {watch.count(injected.service)} of "
                        f"{run.expected(injected.service)} running; "
                        f"{watch.state.get('phase')}: {watch.state.get('reason')}"
                    )
                await watch.until(lambda: run.leader() is not None, 30)
                run.demand["sleeper"] = 0  # back to sleep, where a fault woke it
                result.violations = _since(watch, before)
                result.requests = run.load.failures(begun, time.monotonic())
                result.failures = run.load.reasons(begun, time.monotonic())
                results.append(result)
                # A job found stranded now was held at the check after the fault before: its
                # worker stopped without finishing it during that fault.
                # A job done twice was finished again right away, during this fault.
                stranded, twice = await run.jobs.check(run.platform.docker_host, run.redis())
                if stranded and len(results) > 1:
                    _wrong(watch, results[-2], injections[-2], stranded, "stranded")
                if twice:
                    _wrong(watch, results[-1], injections[-1], twice, "done twice")
            # Every job pushed accounted for, once the queue drained: none may be lost.
            jobs = Result("the jobs, at the end")
            account = await run.jobs.settle(run.platform.docker_host, run.redis(), RECOVERY)
            watch.jobs = account
            if results and (left := account["held"] - account["stranded"]):
                _wrong(watch, results[-1], injections[-1], left, "stranded")
            if wrong := account["lost"] + account["done twice"] - run.jobs.twice:
                watch.violated("lost jobs", ", ".join(f"{v} {k}" for k, v in account.items()))
            jobs.violations = {"lost jobs": wrong}
            results.append(jobs)
            # The user takes it down while scaled: nothing may remain or come back.
            run.demand["worker"] = 75
            await watch.until(lambda: watch.count("worker") in run.accepted(), RECOVERY)
            before = {k: len(v) for k, v in watch.violations.items()}
            helpers.pop().cancel()  # the load: its proxy goes with the stack
            watch.users_own, watch.down_at = True, time.monotonic()
            await run.compose("down", "-t", "1")
            await asyncio.sleep(10)  # what might come back after it is given the time to
            left = sum(watch.count(s) for s in (*MAXIMUM, "proxy", "redis"))
            if left:
                watch.violated("left behind", f"{left} containers run 10 s after the down")
            down = Result("compose down while scaled")
            down.violations = _since(watch, before)
            results.append(down)
            for task in helpers:
                task.cancel()
    return results, watch


def table(results: list[Result]) -> str:
    head = (f"{'fault':<40} {'recovery s':>10}  {'failed/sent':>12}  "
            + "  ".join(f"{i:>14}" for i in INVARIANTS))  # fmt: skip
    lines = [head, "-" * len(head)]
    for r in results:
        recovery = "-" if r.recovery is None else f"{r.recovery:.1f}"
        requests = f"{r.requests[0]}/{r.requests[1]}" if r.requests[1] else "-"
        counts = "  ".join(f"{r.violations.get(i, 0):>14}" for i in INVARIANTS)
        lines.append(f"{r.fault:<40} {recovery:>10}  {requests:>12}  {counts}")
    return "\n".join(lines)


def main() -> None:
    broker = (os.environ.get("AUTOSCALER_MQTT__HOST", "127.0.0.1"),
              int(os.environ.get("AUTOSCALER_MQTT__PORT", "1883")))  # fmt: skip
    full = os.environ.get("CHAOS_SHORT") != "1"
    results, watch = asyncio.run(chaos(FULL if full else SHORT, broker))
    swarm: dict[str, list[str]] = {}
    if full and (nodes := os.environ.get("AUTOSCALER_TEST_SWARM_NODES")):
        cut, swarm = asyncio.run(swarm_link_cut(nodes.split(","), broker))
        results.append(cut)
    print(f"\nChaos: {'every fault' if full else 'the short run'}, one after another, each while "
          f"a scale is under way; two instances, lease ttl {TTL:g} s, {INTERVAL:g} s interval; "
          "invariants from the engine's events and the broker (0 is the goal); the web's "
          "requests failed of those sent from each fault until the next")  # fmt: skip
    print(table(results))
    for r in results:
        if r.stuck:
            print(f"  {r.fault}: not recovered within {RECOVERY:.0f} s: {r.stuck}")
        if r.failures:
            print(f"  {r.fault}: the web's requests failed: {r.failures}")
        if r.note:
            print(f"  {r.fault}: {r.note}")
    if run_jobs := watch.jobs:
        print("  jobs: " + ", ".join(f"{v} {k}" for k, v in run_jobs.items()))
    for invariant, seen in watch.violations.items():
        for line in seen[:5]:
            print(f"  {invariant}: {line}")
    for key, lines in swarm.items():
        for line in lines[:5]:
            print(f"  swarm, {key}: {line}")
