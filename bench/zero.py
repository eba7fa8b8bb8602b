"""Scale to zero and back behind a real proxy: deploy/web with the proxy's request metric
(compose.scrape.yaml or compose.haproxy.scrape.yaml) and compose.zero.yaml, the containerised
autoscaler from the deploy overlay at a 1 s interval, open-loop HTTP load from inside the
engine's network namespace.

Each row is one stack. After a few requests it is left without any for `to-zero-after` (5 s
here) and goes to zero; 3 s later, 2 requests a second for 6 s arrive; that is done three times.
Rows: the service asleep each time (the wake), the same service with a to-zero-after of an hour
(always running: the baseline, in the same run), and each proxy without the setting that holds
the first request (Caddy's lb_try_duration, HAProxy's wake.lua) or Caddy without the proxy's
`dns_opt` of compose.zero.yaml: what each is for.

Columns: requests sent and failed over the three wakes; the first request's time to its answer
(median and worst of three), the worst of every request. Goal: every first request answered
within 3 s at a 1 s interval, none failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiodocker

from bench.common import ROOT
from bench.web import IMAGE, OUT, Case, _change, each_case, prepare
from tests.integration.platforms import platform_named
from tests.integration.socket_proxy import overlay_env
from tests.integration.web import WEB, send_load, web_stack, write_stack

WAKES = 3
WAKE = (("wake", 2.0, 6.0),)
TO_ZERO_AFTER = "5s"


@dataclass(frozen=True)
class ZeroCase:
    name: str
    proxy: str
    to_zero_after: str = TO_ZERO_AFTER
    change: tuple[tuple[str, str], ...] = ()
    dns_opt: bool = True
    """compose.zero.yaml's `dns_opt` on the proxy; False leaves it out."""


CASES = (
    ZeroCase("caddy, asleep", "caddy"),
    ZeroCase("caddy, running (baseline)", "caddy", to_zero_after="1h"),
    ZeroCase("caddy without lb_try_duration", "caddy",
             change=(("lb_try_duration", ""), ("lb_try_interval", ""))),
    ZeroCase("caddy without dns_opt", "caddy", dns_opt=False),
    ZeroCase("haproxy, asleep", "haproxy"),
    ZeroCase("haproxy, running (baseline)", "haproxy", to_zero_after="1h"),
    ZeroCase("haproxy without wake.lua", "haproxy",
             change=(("http-request lua.wait-for-server", ""),)),
)  # fmt: skip


@dataclass
class Row:
    case: ZeroCase
    sent: int = 0
    failed: int = 0
    first: list[float] = field(default_factory=list)
    worst: float = 0.0
    asleep: int = 0
    """Of the wakes, how many found the service at zero (0 for the baseline)."""


async def _running(docker: aiodocker.Docker, project: str) -> int:
    label = json.dumps({"label": [f"com.docker.compose.project={project}",
                                  "com.docker.compose.service=web"]})  # fmt: skip
    return len(await docker.containers.list(filters=label))


async def _quiet(docker: aiodocker.Docker, project: str, case: ZeroCase) -> bool:
    """Leave the stack without requests until it is at zero (or, for the baseline, as long as
    that takes the others): True if it went to zero."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    # The engine has no event for "none runs": its listing is asked four times a second.
    while loop.time() < deadline:
        if not await _running(docker, project):
            await asyncio.sleep(3)  # at zero for a while, as a user finds it
            return True
        if case.to_zero_after != TO_ZERO_AFTER and loop.time() > deadline - 20:
            return False  # the baseline: as long a pause, but it never sleeps
        await asyncio.sleep(0.25)
    return False


async def _case(docker: aiodocker.Docker, docker_host: str, case: ZeroCase) -> Row:
    project = f"benchzero{uuid.uuid4().hex[:6]}"
    folder = Path(tempfile.mkdtemp(prefix="bench-zero-"))
    write_stack(folder)
    _change(folder, Case(case.name, proxy=case.proxy, change=case.change))
    if not case.dns_opt:
        zero = folder / "compose.zero.yaml"
        zero.write_text(zero.read_text().split("  proxy:")[0])
    env = {"AUTOSCALER_IMAGE": IMAGE, "DOCKER_SOCKET": docker_host.removeprefix("unix://"),
           "AUTOSCALER_INTERVAL": "1", "COMPOSE_PROJECT_NAME": project,
           "TO_ZERO_AFTER": case.to_zero_after,
           **overlay_env(docker_host, folder / "secrets")}  # fmt: skip
    scrape = "compose.scrape.yaml" if case.proxy == "caddy" else "compose.haproxy.scrape.yaml"
    extra = (WEB / scrape, WEB / "compose.zero.yaml", ROOT / "deploy" / "compose.autoscaler.yaml")
    row = Row(case)
    outcomes = []
    current = platform_named("current")
    async with web_stack(project, case.proxy, current, folder, env=env, extra=extra,
                         rewrite=False) as stack:  # fmt: skip
        url = f"http://{await stack.address(docker)}/"
        await send_load(url, (("warm", 4.0, 3.0),))  # the proxy's counters exist once it served
        for _ in range(WAKES):
            row.asleep += await _quiet(docker, project, case)
            wake = await send_load(url, WAKE)
            outcomes.append(wake)
            row.sent += len(wake)
            row.failed += sum(1 for o in wake if o["status"] != 200)
            row.first.append(wake[0]["latency"] if wake[0]["status"] == 200 else float("inf"))
            row.worst = max([row.worst, *(o["latency"] for o in wake)])
    with contextlib.suppress(aiodocker.DockerError):
        await (await docker.containers.get(f"autoscaler-lease-{project}")).delete(force=True)
    OUT.mkdir(parents=True, exist_ok=True)
    slug = "".join(c if c.isalnum() else "-" for c in case.name)
    (OUT / f"zero-{slug}.json").write_text(json.dumps({"wakes": outcomes}))
    return row


def _s(value: float) -> str:
    return "failed" if value == float("inf") else f"{value:.2f}"


def table(rows: list[Row]) -> str:
    head = (f"{'case':<32} {'at zero':>7} {'sent':>5} {'failed':>6} {'first: median s':>15} "
            f"{'worst s':>8} {'any request worst s':>19}")  # fmt: skip
    lines = [head, "-" * len(head)]
    for r in rows:
        median = _s(statistics.median(r.first) if r.first else float("nan"))
        worst = _s(max(r.first, default=0))
        lines.append(f"{r.case.name:<32} {r.asleep:>4}/{WAKES:<2} {r.sent:>5} {r.failed:>6} "
                     f"{median:>15} {worst:>8} {r.worst:>19.2f}")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    docker_host = prepare()
    rows = asyncio.run(each_case(docker_host, CASES, _case, table))
    print(
        f"\nScale to zero: deploy/web (two networks) with compose.zero.yaml, to zero after "
        f"{TO_ZERO_AFTER} without a request, then 2 requests/s for 6 s, {WAKES} times a row; "
        "1 s interval; the first request's time to its answer includes the container's "
        "start; goal: within 3 s, none failed\n"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
