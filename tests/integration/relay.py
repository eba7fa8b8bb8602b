"""A relay in front of a real server (the engine's unix socket, Prometheus's port), for tests
that need the path to it to fail the ways real paths do: cut (nothing answers), a request held
or delayed (a hung engine call), a stream gone silent (an event stream through a NAT that
dropped it). Everything else passes through untouched, to the real server behind it."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Hold:
    """Requests whose first line matches `pattern` wait `seconds` before they are sent on (for
    ever when None, until the relay closes)."""

    pattern: re.Pattern[str]
    seconds: float | None
    seen: int = 0


@dataclass
class Relay:
    target: str
    """`unix:///path` or `host:port` of the real server."""
    url: str = ""
    """Where clients reach the relay: `unix:///path` or `http://127.0.0.1:port`."""
    holds: list[Hold] = field(default_factory=list)
    silenced: re.Pattern[str] | None = None
    """Responses to requests matching this are swallowed: the stream stays open and says
    nothing more."""
    _server: asyncio.AbstractServer | None = None
    _links: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _cut: bool = False

    def hold(self, pattern: str, seconds: float | None = None) -> Hold:
        held = Hold(re.compile(pattern), seconds)
        self.holds.append(held)
        return held

    def release(self) -> None:
        self.holds.clear()

    def silence(self, pattern: str) -> None:
        self.silenced = re.compile(pattern)

    def cut(self) -> None:
        """Every connection is dropped, and new ones are refused until `resume`."""
        self._cut = True
        for writer in list(self._links):
            writer.close()

    def resume(self) -> None:
        self._cut = False

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.target.startswith("unix://"):
            return await asyncio.open_unix_connection(self.target.removeprefix("unix://"))
        host, _, port = self.target.rpartition(":")
        return await asyncio.open_connection(host, int(port))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        try:
            if task is not None:
                self._tasks.add(task)  # type: ignore[arg-type]
            if self._cut:
                return
            try:
                up_reader, up_writer = await self._open()
            except OSError:
                return
            self._links |= {writer, up_writer}
            mute = asyncio.Event()
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._requests(reader, up_writer, mute))
                    tg.create_task(self._responses(up_reader, writer, mute))
            except* (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                self._links.discard(up_writer)
                up_writer.close()
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            self._links.discard(writer)
            writer.close()

    async def _requests(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, mute: asyncio.Event
    ) -> None:
        while chunk := await reader.read(65536):
            line = chunk.split(b"\r\n", 1)[0].decode("latin-1")
            for held in list(self.holds):
                if held.pattern.search(line):
                    held.seen += 1
                    if held.seconds is None:
                        await asyncio.Event().wait()
                    await asyncio.sleep(held.seconds)
            if self.silenced is not None and self.silenced.search(line):
                mute.set()
            writer.write(chunk)
            await writer.drain()
        writer.close()

    async def _responses(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, mute: asyncio.Event
    ) -> None:
        while chunk := await reader.read(65536):
            if mute.is_set():
                continue  # swallowed: the client hears nothing, and no close either
            writer.write(chunk)
            await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def relay(
    target: str, where: Path | None = None, *, sock: socket.socket | None = None
) -> AsyncIterator[Relay]:
    """A relay to `target`, listening on the unix socket `where`, on `sock` (a listening TCP
    socket made elsewhere: in another network namespace), or on a free loopback port."""
    made = Relay(target)
    if sock is not None:
        made._server = await asyncio.start_server(made._serve, sock=sock)
        host, port = sock.getsockname()[:2]
        made.url = f"http://{host}:{port}"
    elif where is not None:
        made._server = await asyncio.start_unix_server(made._serve, path=str(where))
        made.url = f"unix://{where}"
    else:
        made._server = await asyncio.start_server(made._serve, "127.0.0.1", 0)
        port = made._server.sockets[0].getsockname()[1]
        made.url = f"http://127.0.0.1:{port}"
    try:
        yield made
    finally:
        made.cut()
        made._server.close()
        for task in list(made._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(made._server.wait_closed(), 5)
