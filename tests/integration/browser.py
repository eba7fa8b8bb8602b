"""Debian's chromium, headless, driven over its DevTools protocol with aiohttp's websocket client:
enough to open a page, read it, collect console errors, count the bytes it loaded and take a
screenshot. Started once per test session (conftest's `browser` fixture)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-port=0",
]  # fmt: skip


class Browser:
    def __init__(self, process: asyncio.subprocess.Process, endpoint: str) -> None:
        self.process = process
        self.endpoint = endpoint  # http://127.0.0.1:PORT

    @contextlib.asynccontextmanager
    async def page(self, width: int = 1280, height: int = 800) -> AsyncIterator[Page]:
        async with aiohttp.ClientSession() as http:
            async with http.put(f"{self.endpoint}/json/new?about:blank") as response:
                target = await response.json()
            try:
                async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                    page = Page(ws)
                    reader = asyncio.create_task(page.read())
                    try:
                        for domain in ("Page", "Runtime", "Network", "Log"):
                            await page.send(f"{domain}.enable")
                        await page.send("Emulation.setDeviceMetricsOverride", width=width,
                                        height=height, deviceScaleFactor=1, mobile=width < 600)  # fmt: skip
                        yield page
                    finally:
                        reader.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await reader
            finally:
                async with http.get(f"{self.endpoint}/json/close/{target['id']}"):
                    pass


class Page:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.errors: list[str] = []
        """Console errors and uncaught exceptions, as the page reported them."""
        self.received_bytes = 0
        """Bytes the page's requests transferred (encoded), the event stream included."""
        self._loaded = asyncio.Event()

    async def read(self) -> None:
        async for message in self._ws:
            data = json.loads(message.data)
            if "id" in data:
                future = self._replies.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
                continue
            self._on_event(data["method"], data.get("params", {}))

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            thrown = details.get("exception", {}).get("description", "")
            self.errors.append(f"{details.get('text', 'exception')} {thrown}".strip())
        elif method == "Runtime.consoleAPICalled" and params["type"] == "error":
            self.errors.append(" ".join(str(a.get("value", "")) for a in params["args"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(params["entry"]["text"])
        elif method == "Network.loadingFinished":
            self.received_bytes += int(params.get("encodedDataLength", 0))
        elif method == "Network.dataReceived":
            # A stream that never finishes (the event stream) reports its bytes as they come.
            self.received_bytes += int(params.get("encodedDataLength", 0))
        elif method == "Page.loadEventFired":
            self._loaded.set()

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[number] = future
        await self._ws.send_json({"id": number, "method": method, "params": params})
        reply = await asyncio.wait_for(future, 30)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def open(self, url: str) -> None:
        self._loaded.clear()
        await self.send("Page.navigate", url=url)
        await asyncio.wait_for(self._loaded.wait(), 30)

    async def evaluate(self, expression: str) -> Any:
        reply = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    async def wait_for(self, expression: str, within: float = 30.0) -> Any:
        """Until `expression` is truthy in the page; what it last gave."""
        async with asyncio.timeout(within):
            while not (value := await self.evaluate(expression)):  # noqa: ASYNC110
                await asyncio.sleep(0.1)  # the page has no event to offer a test
        return value

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    # Chromium may still write into its profile as it exits: tidy up what can be tidied.
    with tempfile.TemporaryDirectory(
        prefix="autoscaler-chromium-", ignore_cleanup_errors=True
    ) as profile:
        process = await asyncio.create_subprocess_exec(
            "chromium", *FLAGS, f"--user-data-dir={profile}",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            async with asyncio.timeout(30):
                while not port_file.exists() or not port_file.read_text().strip():  # noqa: ASYNC110
                    await asyncio.sleep(0.05)  # chromium writes it once it listens
            port = port_file.read_text().split()[0]
            yield Browser(process, f"http://127.0.0.1:{port}")
        finally:
            process.terminate()
            await process.wait()
