"""Operations endpoints (aiohttp), on loopback by default:

GET /          the live page: an overview of every service, a service's card with its history,
               the events (static/, no build step, nothing remote)
GET /events    server-sent events: every service's state at first, then after every round only
               the services whose state changed, and the new events (stream.py)
GET /healthz   200 while the service runs
GET /history   one service's last hour, a row a round, by column, and its events
               (?service=project/name, &since=<wall time> for the rows after it)
GET /readyz    200 while the engine view is complete and current, 503 with the reason otherwise
               (the view is stale, or the engine lease cannot be taken: what to grant)
GET /metrics   Prometheus text: replicas, desired, CPU, memory per service; decisions,
               actions, errors; sampling latency
GET /status    JSON: every service's state and its recent decisions (?service=project/name;
               ?decisions=N for the last N of each, 0 for none: `autoscaler status`)
POST /controls an operator's command: pause, hold N or resume a service, for a while or until
               resumed (control/controls.py); JSON in (Content-Type: application/json, which
               no page of another site can send here without asking first), JSON out

With a token set (AUTOSCALER_API__TOKEN), everything but /healthz, /readyz and the page's
static files asks for it: `Authorization: Bearer <token>`, or `?token=<token>` (how a browser
opens the page and how the page asks for its data, since an EventSource sends no headers).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from autoscaler.control.controls import ControlError
from autoscaler.control.history import History
from autoscaler.control.report import ACTIONS
from autoscaler.errors import AutoscalerError
from autoscaler.mqtt.journal import Journal
from autoscaler.ops.metrics import Metrics
from autoscaler.ops.stream import Follower, Snapshot
from autoscaler.settings import LOOPBACK

logger = logging.getLogger(__name__)

_STATIC = Path(__file__).parent / "static"
_OPEN = frozenset({"/healthz", "/readyz"})
_KEEPALIVE = 15.0  # seconds: a comment on a quiet stream, so proxies keep it open
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Api:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        metrics: Metrics,
        unready: Callable[[], str | None],
        status: Callable[[int | None], Mapping[str, Any]],
        snapshot: Callable[[], Snapshot],
        history: Callable[[str], tuple[str, History] | None],
        journal: Journal,
        band: float = 0.0,
        token: str | None = None,
        streams: int = 16,
        command: Callable[[object, str], Awaitable[Mapping[str, Any]]] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self._metrics, self._unready, self._status = metrics, unready, status
        self._snapshot, self._history, self._journal = snapshot, history, journal
        self._band = band
        self._token = token
        self._streams = streams
        self._command = command
        self.streaming = 0
        """Event streams open now."""
        self._round = asyncio.Event()
        self.bound: asyncio.Event = asyncio.Event()
        self.app = web.Application(middlewares=[self._guard])
        self.app.add_routes(
            [
                web.get("/", self._page),
                web.get("/events", self._events),
                web.get("/healthz", self._healthz),
                web.get("/history", self._history_page),
                web.get("/readyz", self._readyz),
                web.get("/metrics", self._metrics_page),
                web.get("/status", self._status_page),
                web.post("/controls", self._controls),
                web.static("/static", _STATIC, append_version=False),
            ]
        )

    def round_done(self) -> None:
        """A round of the loop is over: the event stream sends the status again."""
        self._round.set()
        self._round = asyncio.Event()

    @web.middleware
    async def _guard(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        if request.path in _OPEN or request.path.startswith("/static/"):
            return await handler(request)
        if self._token is None:
            if self.host in LOOPBACK and not _loopback_host(request.headers.get("Host")):
                # A page of any web site can name its own domain to 127.0.0.1 (DNS rebinding)
                # and read a tokenless loopback API as its own origin: only this machine's
                # names and addresses are answered.
                return web.json_response(
                    {"error": f"Host {request.headers.get('Host', '')!r} is not this machine: "
                              "open the page as 127.0.0.1 or localhost, or set "
                              "AUTOSCALER_API__TOKEN_FILE to be reached by other names"},
                    status=421,
                )  # fmt: skip
            return await handler(request)
        given = request.query.get("token", "")
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header.removeprefix("Bearer ")
        if hmac.compare_digest(_utf8(given), self._token.encode()):
            return await handler(request)
        return web.json_response(
            {"error": "a token is needed: Authorization: Bearer <token>, or ?token=<token>"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="compose-autoscaler"'},
        )

    async def _page(self, _: web.Request) -> web.FileResponse:
        return web.FileResponse(_STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        # Each open stream costs a status document a round: a bound keeps a crowd of open
        # pages (or someone opening streams on purpose) from slowing the rounds.
        if self.streaming >= self._streams:
            return web.json_response(
                {"error": f"{self._streams} event streams are open already; "
                          "AUTOSCALER_API__STREAMS allows more"},
                status=503, headers={"Retry-After": "10"},
            )  # fmt: skip
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        self.streaming += 1
        follower = Follower(self._journal, self._band)
        try:
            await response.prepare(request)
            await response.write(_event(follower.message(self._snapshot())))
            while True:
                round_done = self._round
                try:
                    async with asyncio.timeout(_KEEPALIVE):
                        await round_done.wait()
                except TimeoutError:
                    await response.write(b": still here\n\n")
                else:
                    await response.write(_event(follower.message(self._snapshot())))
        except ConnectionResetError:
            # The page was closed: the stream ends with it, which is no error.
            return response
        finally:
            self.streaming -= 1

    async def serve(self) -> None:
        """Serve until cancelled; the listening socket is closed on the way out."""
        # Open event streams are cut at shutdown, not waited for.
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            try:
                await site.start()
            except OSError as exc:
                # Not fatal: scaling goes on without the endpoints.
                logger.error("cannot listen on %s:%d: %s; no API", self.host, self.port, exc)
                await asyncio.Event().wait()
            # With port 0 the OS picked one: tell it.
            self.port = int(runner.addresses[0][1])
            self.bound.set()
            logger.info("API on http://%s:%d", self.host, self.port)
            if self._token is None and self.host not in LOOPBACK:
                logger.warning(
                    "API on %s without a token: whoever reaches it reads every service's "
                    "containers and decisions; set AUTOSCALER_API__TOKEN_FILE", self.host,
                )  # fmt: skip
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, _: web.Request) -> web.Response:
        reason = self._unready()
        if reason is None:
            return web.Response(text="ready\n")
        return web.Response(status=503, text=f"{reason}\n")

    async def _metrics_page(self, _: web.Request) -> web.Response:
        body = generate_latest(self._metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _history_page(self, request: web.Request) -> web.Response:
        wanted = request.query.get("service")
        if not wanted:
            return web.json_response({"error": "which service? ?service=project/name"}, status=400)
        try:
            after = float(request.query["since"]) if "since" in request.query else None
        except ValueError:
            return web.json_response(
                {"error": f"since={request.query['since']!r}: a wall time in seconds"}, status=400
            )
        found = self._history(wanted)
        if found is None:
            return web.json_response({"error": f"no service {wanted!r}"}, status=404)
        name, history = found
        rows = history.since(after)
        # The events of the rows' span (from a round before the first, which led to it), or with
        # `since` only those after it: what the chart has not marked yet.
        since = after if after is not None else (rows["time"] or [0.0])[0] - history.interval
        events = [e for e in self._journal.of(name, since) if _marked(e)]
        body = {"service": name, "interval": history.interval, "span": history.span,
                "rows": rows, "events": events}  # fmt: skip
        return web.json_response(body, dumps=_compact)

    async def _status_page(self, request: web.Request) -> web.Response:
        try:
            kept = int(request.query["decisions"]) if "decisions" in request.query else None
        except ValueError:
            return web.json_response(
                {"error": f"decisions={request.query['decisions']!r}: a count"}, status=400
            )
        status = dict(self._status(kept))
        wanted = request.query.get("service")
        if wanted is not None:
            services = status.get("services", {})
            matches = {k: v for k, v in services.items() if k == wanted or k.endswith(f"/{wanted}")}
            if not matches:
                return web.json_response(
                    {"error": f"no service {wanted!r}", "services": sorted(services)}, status=404
                )
            status["services"] = matches
        return web.json_response(status, dumps=lambda o: json.dumps(o, sort_keys=True))

    async def _controls(self, request: web.Request) -> web.Response:
        if self._command is None:
            return web.json_response({"error": "this instance takes no commands"}, status=404)
        if request.content_type != "application/json":
            # A form or text/plain POST is what a page of any site may send without asking:
            # a command comes as JSON, which a browser sends cross-site only after asking.
            return web.json_response(
                {"error": "a command is sent as Content-Type: application/json"}, status=415
            )
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "the body is not JSON"}, status=400)
        try:
            answer = await self._command(body, "api")
        except ControlError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        except AutoscalerError as exc:
            # The engine refused or did not answer: the command was not recorded.
            return web.json_response({"error": str(exc)}, status=503)
        return web.json_response(answer, dumps=lambda o: json.dumps(o, sort_keys=True))


def _utf8(given: str) -> bytes:
    """A token as given, as bytes; one of characters UTF-8 cannot hold (bytes that were no
    UTF-8 arrive as surrogates) is no token, and empty: refused, never a 500."""
    try:
        return given.encode()
    except UnicodeEncodeError:
        return b""


def _loopback_host(host: str | None) -> bool:
    """Whether a Host header names this machine: `localhost` (or a name under it), or an IP
    address (a page that names one has no domain to rebind). None: no header (HTTP/1.0)."""
    if host is None:
        return True
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _event(message: Mapping[str, Any]) -> bytes:
    return f"data: {_compact(message)}\n\n".encode()


def _compact(document: Any) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def _marked(event: Mapping[str, Any]) -> bool:
    """Whether the chart marks the event: what changed the containers, and errors."""
    return event.get("Action") == "error" or event.get("Action") in ACTIONS
