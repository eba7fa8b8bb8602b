"""The live page, in a real browser (Debian's chromium, headless): it follows a service the
autoscaler scales on the real engine, without a reload and without console errors, at a desktop
and a phone width; a hundred services stay readable and the stream light; and a token, when
set, guards it."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from autoscaler.settings import ApiSettings
from tests.integration.browser import Browser
from tests.integration.conftest import Mqtt, states
from tests.integration.test_scaling import WEB

PAGE_BUDGET = 128 * 1024
"""Bytes the page itself may weigh (HTML, CSS, JS, the chart library): it is read on phones."""


def row(service: str, selector: str = "") -> str:
    """A JavaScript expression: `service`'s row of the overview (or an element in it), or null."""
    css = f"#overview tr[data-service={json.dumps(service)}] {selector}".strip()
    return f"document.querySelector({json.dumps(css)})"


TOP = "document.querySelector('#overview tbody tr:not([hidden])')?.dataset.service"
"""A JavaScript expression: the service at the top of the overview."""


async def test_the_page_follows_a_service_as_it_scales_without_a_reload(
    browser: Browser, artifacts: Path, make_container: Any, make_load: Any, run_autoscaler: Any,
    mqtt: Mqtt, project: str,
) -> None:  # fmt: skip
    load = make_load("web")
    await make_container("web", WEB, load=load)
    await make_container("worker", WEB | {"autoscaler.cpu.target": "fast"})  # a wrong label
    app = await run_autoscaler()
    service = f"{project}/web"
    async with browser.page(1280, 800) as page:
        await page.open(f"http://127.0.0.1:{app.api.port}/")
        await page.wait_for(f"{row(service)} !== null && {row(f'{project}/worker')} !== null")
        weight = page.received_bytes
        assert await page.evaluate(f"{row(service)}.dataset.replicas") == "1"
        # The service in trouble heads the overview, its error beside its name.
        assert await page.evaluate(TOP) == f"{project}/worker"
        error = await page.evaluate(f"{row(f'{project}/worker', '.note')}.textContent")
        assert "autoscaler.cpu.target='fast'" in error

        await page.click(f"#overview tr[data-service={json.dumps(service)}] .open")
        await page.wait_for("!document.getElementById('card').hidden")
        await page.wait_for("document.querySelector('[data-chart=replicas] canvas') !== null")
        load.set(200)  # ceil(200 / 125) = 2: the page must show it without being reloaded
        await page.wait_for(f"{row(service)}?.dataset.replicas === '2'", within=60)
        assert await page.evaluate("document.querySelector('#card .replicas').textContent") == "2"
        assert await page.evaluate("document.querySelector('#card .timeline li')") is not None
        # The scale-up is marked on the chart, its reason shown when the pointer is on it.
        mark = await page.wait_for(
            "window.charts.positions().find(p => p.action === 'scale_up')", within=10
        )
        await page.hover(mark["x"], mark["y"])
        told = await page.wait_for("document.querySelector('#card .mark').textContent")
        assert "scale up 1 → 2" in told and "cpu" in told.lower(), told
        events = await page.evaluate("document.getElementById('events').textContent")
        assert f"{service} scale up 1 → 2" in events, events
        header = await page.evaluate("document.querySelector('.health').textContent")
        assert "engine ready" in header and "MQTT connected" in header and "acting" in header
        await page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        await page.screenshot(artifacts / "page-1280x800.png")
        (artifacts / "page-weight.txt").write_text(f"{weight} bytes at first load\n")
        assert page.errors == []
        assert 0 < weight < PAGE_BUDGET, weight

    async with browser.page(390, 844) as phone:
        await phone.open(f"http://127.0.0.1:{app.api.port}/#{service}")
        await phone.wait_for("document.querySelector('#card canvas') !== null")
        await phone.wait_for(f"{row(service)}?.dataset.replicas === '2'")
        # Readable at a phone's width: nothing wider than the screen.
        wide = await phone.evaluate("document.documentElement.scrollWidth")
        assert wide <= 390, wide
        await phone.screenshot(artifacts / "page-390x844.png")
        assert phone.errors == []


async def test_a_token_guards_the_page_its_data_and_its_stream_but_not_health(
    browser: Browser, make_container: Any, run_autoscaler: Any, project: str,
) -> None:  # fmt: skip
    await make_container("web", WEB)
    app = await run_autoscaler(api=ApiSettings(port=0, token=SecretStr("s3cret")))
    base = f"http://127.0.0.1:{app.api.port}"
    async with aiohttp.ClientSession() as http:
        for path in ("/", "/status", "/events", "/metrics"):
            async with http.get(base + path) as response:
                assert response.status == 401, path
            async with http.get(base + path, headers={"Authorization": "Bearer wrong"}) as response:
                assert response.status == 401, path
        for path in ("/healthz", "/readyz", "/static/page.js"):
            async with http.get(base + path) as response:
                assert response.status == 200, path
        async with http.get(f"{base}/status", headers={"Authorization": "Bearer s3cret"}) as r:
            assert r.status == 200
    async with browser.page() as page:
        await page.open(f"{base}/?token=s3cret")
        await page.wait_for(f"{row(f'{project}/web')} !== null")
        assert page.errors == []


ROUND_BUDGET = 50 * 1024
"""Bytes the page may receive a round with a hundred services holding."""
FIRST_LOAD_BUDGET = 300 * 1024
"""Bytes the page may load before it shows a hundred services, its files included."""


async def test_a_hundred_services_stay_readable_and_the_stream_stays_light(
    browser: Browser, artifacts: Path, make_container: Any, make_load: Any, run_autoscaler: Any,
    mqtt: Mqtt, project: str,
) -> None:  # fmt: skip
    quiet = [f"svc-{i:03d}" for i in range(98)]
    # Named to sort after the others: only their trouble puts them first.
    load = make_load("web")
    slots = asyncio.Semaphore(16)

    async def make(service: str, labels: dict[str, str], **options: Any) -> None:
        async with slots:
            await make_container(service, labels, **options)

    await asyncio.gather(
        *(make(name, WEB) for name in quiet),
        make("web", WEB | {"autoscaler.max": "1"}, load=load),
        make("worker", WEB | {"autoscaler.max": "many"}),  # a wrong label
    )
    interval = 2.0
    app = await run_autoscaler(interval=interval)
    rows = "document.querySelectorAll('#overview tbody tr:not([hidden])').length"
    async with browser.page(1280, 800) as page:
        await page.open(f"http://127.0.0.1:{app.api.port}/")
        await page.wait_for(f"{rows} === 100", within=30)
        # The stream's bytes as the page counts them: the browser's own count of a stream that
        # never ends lags by seconds. The page's files are complete responses, counted at load.
        streamed = "Number(document.body.dataset.streamed)"
        first = page.loaded_bytes + int(await page.evaluate(streamed))
        assert await page.evaluate(TOP) == f"{project}/worker"

        # While they hold, a round sends what changed: next to nothing.
        messages = "Number(document.body.dataset.messages)"
        await page.wait_for(f"{messages} >= 3", within=30)
        start, before = int(await page.evaluate(messages)), int(await page.evaluate(streamed))
        await page.wait_for(f"{messages} >= {start + 3}", within=30)
        rounds = int(await page.evaluate(messages)) - start
        per_round = (int(await page.evaluate(streamed)) - before) / rounds
        status = len(json.dumps(app.status()))
        (artifacts / "page-100-services.txt").write_text(
            f"100 services, {interval:g} s interval\n"
            f"first load: {first} bytes (the page's files, then every service's state)\n"
            f"a round while they hold: {per_round:.0f} bytes (mean of {rounds} rounds)\n"
            f"/status, for comparison: {status} bytes\n"
        )
        assert first < FIRST_LOAD_BUDGET, first
        assert 0 < per_round < ROUND_BUDGET, per_round

        # A filter by name; the service with an error is never hidden.
        await page.type("#filter", "svc-00")
        await page.wait_for(f"{rows} === 11")
        assert await page.evaluate(TOP) == f"{project}/worker"
        await page.type("#filter", "")
        await page.wait_for(f"{rows} === 100")

        # A service saturated at its max moves up, under the error, within a round.
        since = time.time()
        load.set(300)
        await mqtt.wait_for(
            lambda m: [
                s for s in states(m, project, "web") if s["time"] > since and s["bound"] == "max"
            ],
            within=30,
        )
        second = "document.querySelectorAll('#overview tbody tr')[1].dataset.service"
        assert await page.wait_for(f"{second} === {json.dumps(f'{project}/web')}", within=interval)
        await page.screenshot(artifacts / "page-100-services-1280.png", full_page=False)
        assert page.errors == []

    async with browser.page(390, 844) as phone:
        await phone.open(f"http://127.0.0.1:{app.api.port}/")
        await phone.wait_for(f"{rows} === 100")
        wide = await phone.evaluate("document.documentElement.scrollWidth")
        assert wide <= 390, wide
        await phone.screenshot(artifacts / "page-100-services-390.png", full_page=False)
        assert phone.errors == []
