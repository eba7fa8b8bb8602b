"""Debian's chromium, headless, driven by Playwright (its `executable_path`: Playwright's own
browser download is never used): enough to open a page, read it, collect console errors, count
the bytes it loaded and take a screenshot. Started once per test session (conftest's `browser`
fixture)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from playwright.async_api import Browser as Chromium
from playwright.async_api import CDPSession, ConsoleMessage, Error, async_playwright
from playwright.async_api import Page as Tab
from playwright.async_api import TimeoutError as PlaywrightTimeout

# As a closed network wants it: nothing phones home, nothing waits on a lookup that cannot work.
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


class Browser:
    def __init__(self, chromium: Chromium) -> None:
        self._chromium = chromium

    @contextlib.asynccontextmanager
    async def page(self, width: int = 1280, height: int = 800) -> AsyncIterator[Page]:
        context = await self._chromium.new_context(
            viewport={"width": width, "height": height}, is_mobile=width < 600
        )
        try:
            tab = await context.new_page()
            page = Page(tab, await context.new_cdp_session(tab))
            await page.watch()
            yield page
        finally:
            await context.close()


class Page:
    def __init__(self, tab: Tab, cdp: CDPSession) -> None:
        self._tab = tab
        self._cdp = cdp
        self.errors: list[str] = []
        """Console errors and uncaught exceptions, as the page reported them."""
        self._received: dict[str, int] = {}  # request id -> bytes it transferred so far
        self._done: set[str] = set()  # the requests that finished

    async def watch(self) -> None:
        self._tab.on("pageerror", lambda error: self.errors.append(str(error)))
        self._tab.on("console", self._console)
        # Playwright reports a response's size once it is complete; the event stream never is,
        # so its bytes are counted as the protocol reports them arriving.
        await self._cdp.send("Network.enable")
        self._cdp.on("Network.dataReceived", self._chunk)
        self._cdp.on("Network.loadingFinished", self._finished)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _chunk(self, params: dict[str, Any]) -> None:
        request = str(params["requestId"])
        self._received[request] = self._received.get(request, 0) + int(
            params.get("encodedDataLength", 0)
        )

    def _finished(self, params: dict[str, Any]) -> None:
        # The request's whole size, headers included: it replaces the chunks counted so far.
        request = str(params["requestId"])
        self._done.add(request)
        self._received[request] = max(
            self._received.get(request, 0), int(params.get("encodedDataLength", 0))
        )

    @property
    def received_bytes(self) -> int:
        """Bytes the page's requests transferred (encoded, headers included), the event stream
        included as its chunks arrive."""
        return sum(self._received.values())

    @property
    def loaded_bytes(self) -> int:
        """Bytes of the requests that finished (the page's files, not an open stream)."""
        return sum(n for request, n in self._received.items() if request in self._done)

    async def open(self, url: str) -> None:
        await self._tab.goto(url, wait_until="load")

    async def evaluate(self, expression: str) -> Any:
        try:
            return await self._tab.evaluate(expression)
        except Error as exc:
            raise RuntimeError(f"{expression}: {exc.message}") from exc

    async def wait_for(self, expression: str, within: float = 30.0) -> Any:
        """Until `expression` is truthy in the page; what it last gave."""
        try:
            handle = await self._tab.wait_for_function(expression, timeout=within * 1000)
        except PlaywrightTimeout as exc:
            raise TimeoutError(f"not within {within:g}s: {expression}") from exc
        return await handle.json_value()

    async def hover(self, x: float, y: float) -> None:
        """The pointer moved to (x, y), in the page's CSS pixels."""
        await self._tab.mouse.move(x, y)

    async def click(self, selector: str) -> None:
        await self._tab.click(selector)

    async def type(self, selector: str, text: str) -> None:
        await self._tab.fill(selector, text)

    async def screenshot(self, path: Path, *, full_page: bool = True) -> None:
        """The whole page, or only what the window shows."""
        await self._tab.screenshot(path=str(path), full_page=full_page)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        raise RuntimeError("chromium is not installed: scripts/test.sh installs Debian's")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=FLAGS)
        try:
            yield Browser(launched)
        finally:
            with contextlib.suppress(Error):
                await launched.close()
