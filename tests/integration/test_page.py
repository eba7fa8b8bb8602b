"""The live page, in a real browser (Debian's chromium, headless): it follows a service the
autoscaler scales on the real engine, without a reload and without console errors, at a desktop
and a phone width; and a token, when set, guards it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from autoscaler.settings import ApiSettings
from tests.integration.browser import Browser
from tests.integration.conftest import Mqtt
from tests.integration.test_scaling import WEB

PAGE_BUDGET = 64 * 1024
"""Bytes the page itself may weigh (HTML, CSS, JS): it is read on phones too."""


def card(service: str, selector: str = "") -> str:
    """A JavaScript expression: the element of `service`'s card (or the card), or null."""
    return f"document.querySelector({json.dumps(f'.card[data-service={json.dumps(service)}] {selector}'.strip())})"


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
        await page.wait_for(f"{card(service)} !== null")
        weight = page.received_bytes
        assert await page.evaluate(f"{card(service)}.dataset.replicas") == "1"

        load.set(200)  # ceil(200 / 125) = 2: the page must show it without being reloaded
        await page.wait_for(f"{card(service)}?.dataset.replicas === '2'", within=60)
        assert await page.evaluate(f"{card(service, '.replicas')}.textContent") == "2"
        assert await page.evaluate(f"{card(service, '.timeline li')} !== null")
        assert await page.evaluate(f"{card(service, 'figure[data-metric=cpu] path')} !== null")
        header = await page.evaluate("document.querySelector('.health').textContent")
        assert "engine ready" in header and "MQTT connected" in header and "acting" in header
        error = await page.evaluate(f"{card(f'{project}/worker', '.error')}.textContent")
        assert "autoscaler.cpu.target='fast'" in error
        await page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        await page.screenshot(artifacts / "page-1280x800.png")
        (artifacts / "page-weight.txt").write_text(f"{weight} bytes at first load\n")
        assert page.errors == []
        assert 0 < weight < PAGE_BUDGET, weight

    async with browser.page(390, 844) as phone:
        await phone.open(f"http://127.0.0.1:{app.api.port}/")
        await phone.wait_for(f"{card(service)}?.dataset.replicas === '2'")
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
        await page.wait_for(f"{card(f'{project}/web')} !== null")
        assert page.errors == []
