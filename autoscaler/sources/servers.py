"""What every queue source does the same way: one client a server for all the services that name
it, read once a round (and every `metric.poll` between rounds, a changed value told at once)
within half an interval, dropped when it fails and made again after a backoff, closed when no
service names it any more and at shutdown.

A queue source is a `Driver` (how to reach its server, ask it, and say why it failed) and its
Options; `Servers(driver)` is its reader (base.Reader):

    NONE ──want──► CONNECTED ──unreachable, refused──► BROKEN (backoff) ──ready──► NONE
      ▲                                                                           │
      └─────────────────────── no service names it: closed ◄──────────────────────┘

A server that cannot be reached, or refuses the password, is missing for each of its services in
that service's words (`Driver.failed`: the label to look at); the next try makes a new client and
reads the secret again, so that a rotated secret is taken without a restart. An error of one
source (a queue that does not exist) is that source's alone (`Driver.ask` answers it as its
value's error).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from autoscaler.errors import Backoff, Faults
from autoscaler.settings import SECRETS_DIR
from autoscaler.sources.base import Member, Needs
from autoscaler.sources.credentials import MissingSecret, password
from policies.options import Seconds

TIMEOUT = 5.0
"""Seconds a server's read may take, and never more than half an interval: a round must not
wait."""
BACKOFF_START, BACKOFF_CAP = 1.0, 30.0

Answer = tuple[float | None, str | None]
"""A source's value, or None and why not (naming the label to look at)."""

MAX_COUNT = 1 << 63
"""Beyond any queue's length: a larger number is no count a server keeps."""

Opt = TypeVar("Opt", bound=Hashable)  # a source's options
Client = TypeVar("Client")  # a client of its server


class Secrets:
    """The secrets a source's label may name (credentials.py), read when a client is made."""

    def __init__(self, directory: Path = SECRETS_DIR,
                 settings: Mapping[str, SecretStr] | None = None) -> None:  # fmt: skip
        self._directory, self._settings = directory, settings or {}

    def __call__(self, name: str | None) -> SecretStr | None:
        """The secret `name` names; None for none; MissingSecret where it is in neither place."""
        return None if name is None else password(name, self._directory, self._settings)


class Driver(Protocol[Opt, Client]):
    """One kind of queue server: how a client is made, asked and closed, and why it failed."""

    kind: str
    """The source's name, as `metric.source` gives it: in a bug's fault."""

    @property
    def expected(self) -> tuple[type[BaseException], ...]:
        """The errors of a server that fails (unreachable, refused): missing values, no bug.
        Asked only once something failed, so that a driver can import its client library
        when a service first names its kind, not at start."""
        ...

    def server(self, options: Opt) -> Hashable:
        """What a client is made for: sources that give the same share one."""
        ...

    async def connect(self, options: Opt, secrets: Secrets, seconds: float) -> Client:
        """A client of the server `options` names (any source of that server will do), whose
        own socket timeouts are `seconds` (the read as a whole is timed here)."""
        ...

    async def ask(self, client: Client, named: list[Opt]) -> list[Answer]:
        """Each source's answer, in order; raises one of `expected` where the server failed."""
        ...

    async def close(self, client: Client) -> None:
        """Close it, quietly: a broken client is closed all the same."""
        ...

    def failed(self, exc: BaseException, options: Opt) -> str:
        """Why the server gave nothing, in the words of this source (which label to look at)."""
        ...

    def member(self, options: Opt) -> str:
        """The name of the source's one member (its queue, its key)."""
        ...


def count(value: Any) -> int | None:
    """A count as a server gives it: an int from 0 to below MAX_COUNT, never a bool; None for
    anything else (the source says what it was)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_COUNT:
        return value
    return None


@dataclass(frozen=True, slots=True)
class Server:
    """What a client is made for: the sources that name the same share one."""

    url: str
    user: str | None
    credentials: str | None
    ca: Path | None = None


class Polled(BaseModel):
    """The label every queue source has: how often to read it between rounds."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    poll: Seconds | None = Field(default=None, alias="metric.poll", ge=0.1)
    """Read the source this often between rounds too, and decide at once on a changed value
    (as on a value pushed over MQTT); by default once a round."""


@dataclass(slots=True)
class _Connection(Generic[Client]):
    client: Client | None = None
    reading: asyncio.Lock = field(default_factory=asyncio.Lock)
    """One read of a server at a time: a round's and a poll's would share its client."""
    backoff: Backoff = field(default_factory=lambda: Backoff(BACKOFF_START, BACKOFF_CAP))
    why: Callable[[Any], str] | None = None
    """Why it failed last, in the words of each source that names it."""


class Servers(Generic[Opt, Client]):
    """A queue source's reader: its servers' clients, and what each source read last."""

    def __init__(
        self,
        driver: Driver[Opt, Client],
        *,
        interval: float,
        now: Callable[[], float] = time.monotonic,
        faults: Faults | None = None,
        secrets: Secrets | None = None,
        arrived: Callable[[Opt], None] = lambda _: None,
    ) -> None:
        self.driver = driver
        self._arrived = arrived
        self._named: list[Opt] = []
        self._replan = asyncio.Event()  # a round read the sources: polls to plan again
        self._last: dict[Opt, float] = {}  # source -> when it was last read (time.monotonic)
        self._seconds = min(TIMEOUT, interval / 2)
        self._now = now
        self._faults = faults or Faults()
        self._secrets = secrets or Secrets()
        self._servers: dict[Hashable, _Connection[Client]] = {}
        self._read: dict[Opt, Member] = {}

    def _failures(self) -> tuple[type[BaseException], ...]:
        """What a server that fails raises: a missing value, not a bug."""
        return (MissingSecret, TimeoutError, OSError, *self.driver.expected)

    @classmethod
    def made(cls, driver: Driver[Opt, Client], needs: Needs) -> Servers[Opt, Client]:
        return cls(driver, interval=needs.interval, now=needs.now, faults=needs.faults,
                   secrets=Secrets(needs.secrets_dir, needs.secrets),
                   arrived=needs.arrived)  # fmt: skip

    async def want(self, wanted: Sequence[Opt]) -> None:
        """Read every named source, all servers at once; close the clients of servers nobody
        names any more and forget their readings."""
        named = self._named = list(dict.fromkeys(wanted))
        by_server = self._by_server(named)
        for gone in set(self._servers) - set(by_server):
            await self._close(self._servers.pop(gone))
        for options in set(self._read) - set(named):
            del self._read[options]
        for options in set(self._last) - set(named):
            del self._last[options]
        await self._read_all(by_server)
        self._replan.set()  # what the round read is polled from now on

    def members(self, options: Opt) -> list[Member]:
        read = self._read.get(options)
        return [] if read is None else [read]

    async def run(self) -> None:
        """Read the sources with `metric.poll` between rounds, each when its period since it
        was last read is over; close every client at shutdown."""
        try:
            while True:
                self._replan.clear()  # before planning: a round while polling plans again
                # A source is polled once a round has read it (its first value is the round's).
                polled = {o: self._last[o] + p for o in self._named
                          if (p := _period(o)) is not None and o in self._last}  # fmt: skip
                due = [o for o, at in polled.items() if time.monotonic() >= at]
                if due:
                    await self._poll(due)
                    continue
                nearest = min(polled.values(), default=None)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(_loop_time(nearest)):
                        await self._replan.wait()
        finally:
            servers, self._servers = list(self._servers.values()), {}
            for connection in servers:
                await self._close(connection)

    async def _poll(self, due: list[Opt]) -> None:
        """Read these sources now; tell each whose value or reason changed (`arrived`)."""
        before = {o: self._read.get(o) for o in due}
        await self._read_all(self._by_server(due))
        for options, was in before.items():
            now = self._read.get(options)
            if (
                now is not None
                and was is not None
                and (now.value, now.error) != (was.value, was.error)
            ):
                self._arrived(options)

    def _by_server(self, named: list[Opt]) -> dict[Hashable, list[Opt]]:
        by_server: dict[Hashable, list[Opt]] = {}
        for options in named:
            by_server.setdefault(self.driver.server(options), []).append(options)
        return by_server

    async def _read_all(self, by_server: dict[Hashable, list[Opt]]) -> None:
        async with asyncio.TaskGroup() as tg:
            for server, sources in by_server.items():
                tg.create_task(self._read_server(server, sources))

    async def _read_server(self, server: Hashable, named: list[Opt]) -> None:
        connection = self._servers.setdefault(server, _Connection())
        async with connection.reading:
            await self._read_locked(server, connection, named)
        read = time.monotonic()
        for options in named:
            self._last[options] = read

    async def _read_locked(
        self, server: Hashable, connection: _Connection[Client], named: list[Opt]
    ) -> None:
        asked = self._now()
        if connection.client is None and not connection.backoff.ready(asked):
            why = connection.why or (lambda _: "waiting to reconnect")
            for options in named:  # still broken: the reason stands, as of this round
                self._read[options] = Member(self.driver.member(options), None, asked, why(options))
            return
        try:
            async with asyncio.timeout(self._seconds):
                if connection.client is None:
                    connection.client = await self.driver.connect(
                        named[0], self._secrets, self._seconds
                    )
                answers = await self.driver.ask(connection.client, named)
        except self._failures() as failure:  # evaluated only once something was raised
            await self._broken(connection, named, asked, partial(self._failed, failure))
        except Exception as exc:
            # A bug of ours reading the answers: this server's sources are missing, no others.
            self._faults.failed(f"{self.driver.kind} {server}", exc)
            bug = f"unexpected {type(exc).__name__} reading the server"
            await self._broken(connection, named, asked, lambda _: bug)
        else:
            connection.backoff.succeeded()
            connection.why = None
            for options, (value, error) in zip(named, answers, strict=True):
                self._read[options] = Member(self.driver.member(options), value, asked, error)

    def _failed(self, exc: BaseException, options: Opt) -> str:
        if isinstance(exc, MissingSecret):
            return str(exc)
        return self.driver.failed(exc, options)

    async def _broken(
        self,
        connection: _Connection[Client],
        named: list[Opt],
        at: float,
        why: Callable[[Opt], str],
    ) -> None:
        """The server failed: drop its client, wait before the next try, say why for each."""
        await self._close(connection)
        connection.backoff.failed(at)
        connection.why = why
        for options in named:
            self._read[options] = Member(self.driver.member(options), None, at, why(options))

    async def _close(self, connection: _Connection[Client]) -> None:
        client, connection.client = connection.client, None
        if client is not None:
            await self.driver.close(client)


def _period(options: Any) -> float | None:
    """How often a source is read between rounds (`metric.poll`), or None: once a round."""
    poll = getattr(options, "poll", None)
    return float(poll) if poll is not None else None


def _loop_time(monotonic: float | None) -> float | None:
    """A time.monotonic() instant on the event loop's clock (what asyncio.timeout_at takes)."""
    if monotonic is None:
        return None
    return asyncio.get_running_loop().time() + (monotonic - time.monotonic())
