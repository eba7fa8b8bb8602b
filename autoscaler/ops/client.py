"""`autoscaler status`, `events`, `pause`, `resume` and `hold`: a running autoscaler's API asked
over HTTP, as an operator's terminal does (console.py writes what it answers).

The standard library's client, not aiohttp: a command answers in a blink, and a one-shot
request needs no event loop. `--watch` and `--follow` read the API's event stream (/events), the
one the page follows: the autoscaler says when something changed; nothing here polls.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Generator, Mapping
from http.client import HTTPResponse
from typing import Any, TextIO

from autoscaler.errors import AutoscalerError
from autoscaler.ops import console
from autoscaler.settings import ApiSettings

COMMANDS = ("status", "events", "pause", "resume", "hold")
QUIET = 60.0
"""Seconds of silence after which the event stream is taken for dead: the API writes at least
a keep-alive comment every 15."""
_CLEAR = "\x1b[H\x1b[2J"  # the cursor home, the screen cleared: a terminal redrawn


def url(api: ApiSettings, path: str) -> str:
    host = "127.0.0.1" if api.host in ("0.0.0.0", "") else api.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{api.port}{path}"


def operator() -> str:
    """Who gives a command, unless told: `$USER@hostname`."""
    try:
        user = os.environ.get("USER") or getpass.getuser()
    except OSError:  # no user name this process can find (a container's bare uid)
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def _open(api: ApiSettings, path: str, *, body: Any = None, timeout: float) -> HTTPResponse:
    """The API's answer to a GET (or, with a body, a JSON POST), open; AutoscalerError with the
    API's own words when it refuses."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url(api, path), data=data)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if api.token is not None:
        request.add_header("Authorization", f"Bearer {api.token.get_secret_value()}")
    try:
        response: HTTPResponse = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise AutoscalerError(
                f"the autoscaler at {request.full_url} asks for its token: set "
                "AUTOSCALER_API__TOKEN (or AUTOSCALER_API__TOKEN_FILE) to the one it was given"
            ) from exc
        try:
            detail = json.load(exc)
            said = detail.get("error")
        except (ValueError, AttributeError):
            detail, said = {}, None
        if said and "services" in detail:  # a service it does not know: those it does
            said += f"; services: {', '.join(detail['services']) or 'none'}"
        raise AutoscalerError(said or f"HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise AutoscalerError(
            f"no autoscaler answers at {request.full_url} ({exc}); set AUTOSCALER_API__HOST/PORT"
        ) from exc
    return response


def fetch(
    api: ApiSettings, service: str | None = None, decisions: int | None = None
) -> dict[str, Any]:
    """A running autoscaler's /status, of one service or (None) of all; with the last
    `decisions` of each service's decisions (None: all it keeps)."""
    query = {k: v for k, v in (("service", service), ("decisions", decisions)) if v is not None}
    path = f"/status?{urllib.parse.urlencode(query)}" if query else "/status"
    with _open(api, path, timeout=5) as response:
        body: dict[str, Any] = json.load(response)
    return body


def messages(api: ApiSettings) -> Generator[dict[str, Any], None, None]:
    """The event stream's messages as they come (server-sent events: `data: <json>` and a blank
    line; a line opening with `:` is a keep-alive). Ends with AutoscalerError when the
    autoscaler closes it or goes quiet."""
    with _open(api, "/events", timeout=QUIET) as response:
        data: list[str] = []
        try:
            for raw in response:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("data:"):
                    data.append(line.removeprefix("data:").removeprefix(" "))
                elif not line and data:
                    yield json.loads("\n".join(data))
                    data = []
        except OSError as exc:
            raise AutoscalerError(f"the event stream broke off: {exc}") from exc
    raise AutoscalerError("the autoscaler closed its event stream (it stopped?)")


def status(
    api: ApiSettings, out: TextIO, *, project: str | None, watch: bool,
    now: Callable[[], float] = time.time,
) -> None:  # fmt: skip
    """The services as a table; with `watch`, again after each round that changed one (on a
    terminal, redrawn every round, so that the ages move)."""
    if not watch:
        # Decisions left out: a hundred services' fifty each are megabytes the table never shows.
        states = console.states_of(fetch(api, decisions=0))
        print(console.table(states, now=now(), project=project), file=out, flush=True)
        return
    board, redraw = console.Board(), out.isatty()
    for message in messages(api):
        board.apply(message)
        if redraw:
            out.write(_CLEAR)
        elif not (message.get("full") or message.get("services") or message.get("gone")):
            continue  # nothing changed: a log reads better without a copy a round
        else:
            print(time.strftime("# %H:%M:%S", time.localtime(now())), file=out)
        print(console.table(board.states, now=now(), project=project), file=out, flush=True)


def events(api: ApiSettings, out: TextIO, *, service: str | None, last: int, follow: bool) -> None:
    """The newest `last` events (of `service`, or all); with `follow`, then each as it comes."""
    for message in messages(api):
        chosen = console.events_of(message.get("events", ()), service)
        if message.get("full"):
            chosen = chosen[-last:] if last > 0 else []
        for event in chosen:
            print(console.event_line(event), file=out, flush=True)
        if not follow:
            return


def command(api: ApiSettings, body: Mapping[str, Any]) -> dict[str, Any]:
    """POST /controls: the service's control as the API now has it."""
    with _open(api, "/controls", body=body, timeout=10) as response:
        answer: dict[str, Any] = json.load(response)
    return answer


def body_of(args: argparse.Namespace) -> dict[str, Any]:
    """The command `autoscaler pause|resume|hold` sends (control/controls.py reads it)."""
    body: dict[str, Any] = {"service": args.service, "action": args.command,
                            "who": args.who or operator(), "why": args.why}  # fmt: skip
    if args.command != "resume":
        body["for"] = args.lasting
    if args.command == "hold":
        body["replicas"] = args.replicas
    return body


def main(args: argparse.Namespace, api: ApiSettings, out: TextIO = sys.stdout) -> int:
    """One of COMMANDS; 1 with `autoscaler <command>: <why>` when the API refuses or is away,
    0 on Ctrl-C (how a watch ends)."""
    try:
        if args.command == "status":
            status(api, out, project=args.project, watch=args.watch)
        elif args.command == "events":
            events(api, out, service=args.service, last=args.last, follow=args.follow)
        else:
            print(console.answered(command(api, body_of(args))), file=out)
    except AutoscalerError as exc:
        print(f"autoscaler {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        # Read by a pipe that closed (`| head`): what was wanted was read.
        # Python's advice: stdout pointed at nothing, so that its flush at exit raises nothing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0
