"""A web service behind a real proxy, deployed as a user deploys it: deploy/web's stack (the
service on two networks, `back` and `front`, the proxy on `front`), Compose v2.26, the
containerised autoscaler from the deploy overlay at a 2 s interval, and open-loop HTTP load from
inside the engine's network namespace: 8 requests a second, then 40 (what 10 replicas carry at
the 50 % target), then 8 again. Each request costs the webapp 10 ms of CPU on 0.1 of a core.

Rows: the default policy on CPU; `hpa` with identical labels (the baseline); the default on the
proxy's request rate (`metric.source: scrape`, compose.scrape.yaml); and, for docs/proxies.md,
the default on CPU behind a proxy with one of its settings left out or changed, to show what each
is for.

Columns: requests failed in the first 10 s of the step, after them, and in the scale-down; how
long after the step every request is served within 1 s again; the actions; the most replicas.
Goal: none failed after the step's first 10 s or in the scale-down; served within 1 s again 8 s
after the step on CPU, 4 s on the request rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiodocker

from bench.common import ROOT, engine
from tests.integration.platforms import platform_named
from tests.integration.socket_proxy import overlay_env
from tests.integration.web import (
    WEB,
    build_images,
    explained,
    phase_starts,
    send_load,
    watching,
    web_stack,
    write_stack,
)

PHASES = (("low", 8.0, 15.0), ("high", 40.0, 40.0), ("low again", 8.0, 40.0))
IMAGE = "compose-autoscaler:bench"
C = TypeVar("C")
R = TypeVar("R")
OUT = ROOT / "bench" / "out"


@dataclass(frozen=True)
class Case:
    name: str
    proxy: str = "caddy"
    policy: str = "target-tracking"
    scrape: bool = False
    change: tuple[tuple[str, str], ...] = ()
    """(start of a line, what replaces it; "" leaves it out) in the proxy's config: docs/
    proxies.md's "what fails without it"."""


CASES: tuple[Case, ...] = (
    Case("target-tracking, cpu"),
    Case("hpa, cpu", policy="hpa"),
    Case("target-tracking, request rate", scrape=True),
    Case("hpa, request rate", policy="hpa", scrape=True),
    Case("haproxy: target-tracking, cpu", proxy="haproxy"),
    Case("haproxy: target-tracking, request rate", proxy="haproxy", scrape=True),
    Case("caddy without lb_try_duration",
         change=(("lb_try_duration", ""), ("lb_try_interval", ""))),
    Case("caddy without refresh 1s", change=(("refresh 1s", ""),)),
    Case("caddy with its 3 s dial timeout", change=(("dial_timeout", ""),)),
    Case("caddy choosing at random", change=(("lb_policy", ""),)),
    Case("caddy without fail_duration", change=(("fail_duration", ""),)),
    Case("haproxy without retries", proxy="haproxy",
         change=(("retries", ""), ("option redispatch", ""), ("retry-on", ""))),
    Case("haproxy with 3 retries", proxy="haproxy", change=(("retries", "retries 3"),)),
    Case("haproxy with round robin", proxy="haproxy",
         change=(("balance", "balance roundrobin"),)),
)  # fmt: skip


@dataclass
class Row:
    case: Case
    sent: int = 0
    failed_step: int = 0
    failed_after: int = 0
    failed_down: int = 0
    recovered_s: float | None = None
    actions: int = 0
    most: int = 0


def recovery(outcomes: list[dict[str, Any]], start: float, end: float) -> float | None:
    """Seconds after `start` from which every request sent before `end` was served in 1 s."""
    late = [o["t"] for o in outcomes
            if start <= o["t"] < end and (o["status"] != 200 or o["latency"] > 1.0)]  # fmt: skip
    if not late:
        return 0.0
    last = max(late)
    return None if last >= end - 1.0 else round(last - start, 1)


def _overrides(folder: Path, case: Case) -> tuple[Path, ...]:
    files: list[Path] = []
    if case.scrape:
        name = "compose.scrape.yaml" if case.proxy == "caddy" else "compose.haproxy.scrape.yaml"
        files.append(WEB / name)
    if case.policy != "target-tracking":
        policy = folder / "compose.policy.yaml"
        policy.write_text(f'version: "2.4"\nservices:\n  web:\n    labels:\n'
                          f'      autoscaler.policy: {case.policy}\n')  # fmt: skip
        files.append(policy)
    files.append(ROOT / "deploy" / "compose.autoscaler.yaml")
    return tuple(files)


def _change(folder: Path, case: Case) -> None:
    config = folder / ("Caddyfile" if case.proxy == "caddy" else "haproxy.cfg")
    lines = []
    for line in config.read_text().splitlines():
        new = next((n for start, n in case.change if line.strip().startswith(start)), None)
        if new is None:
            lines.append(line)
        elif new:
            lines.append(line[: len(line) - len(line.lstrip())] + new)
    config.write_text("\n".join(lines) + "\n")


async def _case(docker: aiodocker.Docker, docker_host: str, case: Case) -> Row:
    project = f"benchweb{uuid.uuid4().hex[:6]}"
    folder = Path(tempfile.mkdtemp(prefix="bench-web-"))
    write_stack(folder)
    _change(folder, case)
    env = {"AUTOSCALER_IMAGE": IMAGE, "DOCKER_SOCKET": docker_host.removeprefix("unix://"),
           "AUTOSCALER_INTERVAL": "2", "COMPOSE_PROJECT_NAME": project,
           "SCALE_DOWN_WINDOW": "15s", **overlay_env(docker_host, folder / "secrets")}  # fmt: skip
    row = Row(case)
    async with web_stack(project, case.proxy, platform_named("current"), folder, env=env,
                         extra=_overrides(folder, case), rewrite=False) as stack:  # fmt: skip
        url = f"http://{await stack.address(docker)}/"
        await asyncio.sleep(10)  # the autoscaler's start-up and first rounds, idle
        async with watching(docker, project) as replicas:
            outcomes = await send_load(url, PHASES)
        status = await explained(
            docker, platform_named("current").container(project, "autoscaler"), f"{project}/web"
        )
    # The lease outlives its holder by design; the bench's project is gone for good.
    with contextlib.suppress(aiodocker.DockerError):
        await (await docker.containers.get(f"autoscaler-lease-{project}")).delete(force=True)
    # Every request and decision, for whoever wants to look closer (not committed).
    OUT.mkdir(parents=True, exist_ok=True)
    slug = "".join(c if c.isalnum() else "-" for c in case.name)
    (OUT / f"web-{slug}.json").write_text(json.dumps({"outcomes": outcomes, "status": status}))
    starts = phase_starts(PHASES)
    step, down, end = starts["high"], starts["low again"], starts["end"]
    failed = [o for o in outcomes if o["status"] != 200]
    row.sent = len(outcomes)
    row.failed_step = sum(1 for o in failed if step <= o["t"] < step + 10)
    row.failed_after = sum(1 for o in failed if step + 10 <= o["t"] < down)
    row.failed_down = sum(1 for o in failed if down <= o["t"] < end)
    row.recovered_s = recovery(outcomes, step, down)
    decisions = status["services"][f"{project}/web"]["decisions"]
    row.actions = sum(1 for d in decisions if d["to"] != d["from"])
    times = {t for first_last in replicas.seen.values() for t in first_last}
    row.most = max((sum(1 for a, b in replicas.seen.values() if a <= t <= b) for t in times),
                   default=0)  # fmt: skip
    return row


def table(rows: list[Row]) -> str:
    head = (f"{'case':<38} {'sent':>6} {'failed: step 10 s':>17} {'after':>6} {'scale-down':>10} "
            f"{'within 1 s again s':>18} {'actions':>7} {'most':>5}")  # fmt: skip
    lines = [head, "-" * len(head)]
    for r in rows:
        back = "never" if r.recovered_s is None else f"{r.recovered_s:g}"
        lines.append(f"{r.case.name:<38} {r.sent:>6} {r.failed_step:>17} {r.failed_after:>6} "
                     f"{r.failed_down:>10} {back:>18} {r.actions:>7} {r.most:>5}")  # fmt: skip
    return "\n".join(lines)


async def each_case(
    docker_host: str,
    cases: Sequence[C],
    one: Callable[[aiodocker.Docker, str, C], Awaitable[R]],
    table: Callable[[list[R]], str],
) -> list[R]:
    """Every case in turn, on one engine client; each row told on stderr as it is measured."""
    rows: list[R] = []
    async with engine() as docker:
        for case in cases:
            rows.append(await one(docker, docker_host, case))
            # Progress, not the table: stderr stays out of bench/results.
            print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    return rows


def prepare() -> str:
    """The engine DOCKER_HOST names, with the web stack's images and the autoscaler's built."""
    docker_host = os.environ["DOCKER_HOST"]
    build_images(docker_host)
    subprocess.run(["bash", str(ROOT / "scripts" / "image.sh"), IMAGE], check=True)
    return docker_host


def main() -> None:
    docker_host = prepare()
    rows = asyncio.run(each_case(docker_host, CASES, _case, table))
    phases = ", ".join(f"{rate:g}/s for {seconds:g} s" for _, rate, seconds in PHASES)
    print(f"\nWeb: deploy/web (two networks), {phases}; 10 ms of CPU a request on 0.1 of a core, "
          "target 50 % (10 replicas at 40/s), 2 s interval; goal: nothing failed after the "
          "step's first 10 s nor in the scale-down; within 1 s again 8 s after the step (cpu), "
          "4 s (request rate)")  # fmt: skip
    print(table(rows))


if __name__ == "__main__":
    main()
