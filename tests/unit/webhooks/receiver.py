"""A webhook receiver on 127.0.0.1 for the tests: it records every request, checks each one's
signature, and answers what the test says (a status, or a stall until released)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from autoscaler.webhooks.body import EVENT_ID
from autoscaler.webhooks.signature import verify

STALL = None
"""What `status` returns for a request that is held unanswered until `release` is set."""


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers[EVENT_ID]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    secret: str | None = None
    status: Callable[[Received], int | None] = lambda _: 200
    """The answer to a request: an HTTP status, or STALL."""
    requests: list[Received] = field(default_factory=list)
    """Every request, answered or not, in the order they came."""
    accepted: list[Received] = field(default_factory=list)
    """The requests answered 2xx."""
    unsigned: list[Received] = field(default_factory=list)
    """Requests whose signature did not verify (answered 401)."""
    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        received = Received(dict(request.headers), await request.read())
        answer = self.status(received)
        if self.secret is not None and not verify(
            self.secret, received.body, received.headers, now=time.time()
        ):
            self.unsigned.append(received)
            answer = 401
        async with self.arrived:
            self.requests.append(received)
            self.arrived.notify_all()
        if answer is STALL:
            await self.release.wait()
            return web.Response(status=503)  # long after the sender gave up on it
        async with self.arrived:
            if 200 <= answer < 300:
                self.accepted.append(received)
            self.arrived.notify_all()
        return web.Response(status=answer)

    async def wait_for(self, predicate: Callable[[Receiver], Any], within: float = 30.0) -> Any:
        async with asyncio.timeout(within), self.arrived:
            while not (result := predicate(self)):
                await self.arrived.wait()
            return result


@asynccontextmanager
async def receiving(secret: str | None = None) -> AsyncIterator[Receiver]:
    receiver = Receiver(secret)
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    receiver.url = f"http://{host}:{port}/hook"
    try:
        yield receiver
    finally:
        receiver.release.set()
        await runner.cleanup()
