"""The page with a hundred services on the real engine: what one open page receives, at its first
load and a round while the services hold, and what the autoscaler keeps for it.

100 Compose services of 2 replicas each (200 busybox containers, `sleep`), the autoscaler in this
process at a 2 s interval, the page open in headless Chromium (Debian's, driven by Playwright).
The stream's bytes are the page's own count of what arrived (its messages are ASCII JSON); the
page's files are the browser's count of their responses.

Baseline, the same run: the whole `/status` document once a round, what the page's stream sent
before it sent only what changed (and what a dashboard polling `/status` receives).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import time
import uuid
from typing import Any

import aiohttp

from autoscaler.app import App
from autoscaler.settings import ApiSettings, LeaseSettings, MqttSettings, Settings
from bench.common import busybox, containers, engine
from tests.integration.browser import chromium

SERVICES = 100
REPLICAS = 2
INTERVAL = 2.0
ROUNDS = 10
LABELS = {
    "autoscaler.enable": "true", "autoscaler.min": str(REPLICAS), "autoscaler.max": "4",
    "autoscaler.cpu.target": "50",
}  # fmt: skip


def _configs(project: str) -> list[dict[str, Any]]:
    out = []
    for i in range(SERVICES):
        for number in range(1, REPLICAS + 1):
            labels = {
                **LABELS, "com.docker.compose.project": project,
                "com.docker.compose.service": f"svc-{i:03d}",
                "com.docker.compose.container-number": str(number),
                "com.docker.compose.oneoff": "False",
            }  # fmt: skip
            out.append(busybox(["sleep", "86400"], cpus=0.1, Labels=labels))
    return out


async def _messages(page: Any) -> int:
    return int(await page.evaluate("Number(document.body.dataset.messages || 0)"))


async def _streamed(page: Any) -> int:
    return int(await page.evaluate("Number(document.body.dataset.streamed || 0)"))


async def run() -> dict[str, float]:
    project = f"page{uuid.uuid4().hex[:8]}"
    settings = Settings(
        docker_host=os.environ.get("DOCKER_HOST"), interval=INTERVAL,
        projects=frozenset({project}), mqtt=MqttSettings(enabled=False),
        api=ApiSettings(port=0), lease=LeaseSettings(enabled=False),
    )  # fmt: skip
    out: dict[str, float] = {}
    async with engine() as docker, containers(docker, _configs(project)):
        app, stop = App(settings), asyncio.Event()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        serving = asyncio.create_task(app.serve(stop))
        try:
            await asyncio.wait_for(app.api.bound.wait(), 30)
            base = f"http://127.0.0.1:{app.api.port}"
            async with chromium() as browser, browser.page(1280, 800) as page:
                await page.open(f"{base}/")
                rows = "document.querySelectorAll('#overview tbody tr').length"
                await page.wait_for(f"{rows} === {SERVICES}", within=60)
                out["first"] = page.loaded_bytes + await _streamed(page)
                out["files"] = page.loaded_bytes
                out["status_first"] = len(json.dumps(app.status()))
                # Past the first rounds, in which every service's first samples arrive.
                start = await _messages(page)
                await page.wait_for(f"Number(document.body.dataset.messages) >= {start + 3}", 30)
                start, before = await _messages(page), await _streamed(page)
                sizes = []
                async with aiohttp.ClientSession() as http:
                    while await _messages(page) < start + ROUNDS:
                        async with http.get(f"{base}/status") as response:
                            sizes.append(len(await response.read()))
                        await asyncio.sleep(INTERVAL)  # the baseline: a poll a round
                rounds = await _messages(page) - start
                out["round"] = (await _streamed(page) - before) / rounds
                out["rounds"] = rounds
                out["status"] = sum(sizes) / len(sizes)
        finally:
            stop.set()
            await serving
        rings = [c.timeline for c in app.compose.fleet.values()]
        out["ring"] = sum(r.bytes for r in rings) / len(rings)
        out["rss"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    return out


def main() -> None:
    started = time.monotonic()
    r = asyncio.run(run())
    print(
        f"\nThe page with {SERVICES} services of {REPLICAS} replicas ({SERVICES * REPLICAS} "
        f"containers), {INTERVAL:g} s interval, one page open in Chromium (goal: a round under "
        "50 kB while they hold, the first load under 300 kB)"
    )
    head = f"{'':<44} {'this page':>12} {'/status a round':>16}"
    print(head)
    print("-" * len(head))
    print(f"{'first load, bytes (files, then every state)':<44} {r['first']:>12.0f} "
          f"{r['status_first']:>16.0f}")  # fmt: skip
    print(f"{'  of which the page files':<44} {r['files']:>12.0f} {'':>16}")
    print("  (/status: the document at that moment, no files)")
    print(f"{'a round while they hold, bytes':<44} {r['round']:>12.0f} {r['status']:>16.0f}")
    print(f"\n{r['rounds']:.0f} rounds measured; history kept a service: {r['ring'] / 1000:.1f} kB "
          f"(an hour at {INTERVAL:g} s); the process's peak RSS grew {r['rss']:.0f} MB with "
          f"{SERVICES} services; {time.monotonic() - started:.0f} s in all")  # fmt: skip


if __name__ == "__main__":
    main()
