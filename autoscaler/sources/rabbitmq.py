"""A metric source: a RabbitMQ queue's backlog, read from the server directly, once a round.

    metric.url          amqp(s)://host:port/vhost (a passive queue.declare), or the management
                        API's http(s)://host:15672; never a user or password in it
    metric.vhost        (HTTP) the vhost, `/` by default; over AMQP the URL's path is
    metric.queue        the queue's name
    metric.count        `ready` (the default: messages waiting), `ready+unacked` (and those a
                        consumer holds unacknowledged: jobs in flight) or `publish-rate`
                        (messages a second); the two last over HTTP: a declare tells neither
    metric.user         the user, with metric.credentials: its password's secret's name
    metric.ca           a CA file to verify an amqps:// or https:// server with

The management API's counts are statistics, emitted every `collect_statistics_interval` (5 s
by default): they lag that much behind the queue, where a declare's are the queue's own.

One client serves every service that names one server (URL, user, secret, CA): one AMQP
connection with a channel, or one HTTP session. A passive declare of a queue that does not
exist makes the server close the channel (AMQP 0-9-1): that service is missing, and the next
queue is declared on a new channel, so that one bad queue touches no other. A server that
cannot be reached, or refuses the password or the vhost, is missing for each of its services,
naming the label to look at (servers.py's states).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from base64 import b64encode
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol
from urllib.parse import SplitResult, quote, unquote

import aiohttp
from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from autoscaler.sources import credentials
from autoscaler.sources.base import Needs
from autoscaler.sources.bounds import MAX_SCRAPE, TooLarge, body, parsed
from autoscaler.sources.servers import MAX_COUNT, Answer, Polled, Secrets, Server, Servers, count
from autoscaler.sources.urls import Url, given, label_error, required_with, secret_with_user

if TYPE_CHECKING:
    from aio_pika.abc import AbstractChannel, AbstractConnection
    from aiormq import exceptions as amqp

# The AMQP client (2.3 MB resident) is imported where it is used, once a service names a
# RabbitMQ source: an instance without one never loads it (bench/scale.py measures the start).

log = logging.getLogger(__name__)

Count = Literal["ready", "ready+unacked", "publish-rate"]
_ONE = "page=1&page_size=1&columns=name"  # a vhost's first queue: 404 where it has none
_REQUESTS = 4  # queues of a server asked at once over HTTP: the management API is no fast path


def _vhost(parts: SplitResult) -> str | None:
    if parts.scheme.startswith("amqp") and "/" in parts.path[1:]:
        return "the path is the vhost, one segment: %2F for /"
    return None  # the management API's: a prefix it is served under


URL = Url({"amqp": 5672, "amqps": 5671, "http": 80, "https": 443}, tls=("amqps", "https"),
          holds="a host, a port and a path (AMQP's vhost, the management API's prefix)",
          path=_vhost)  # fmt: skip


class Options(Polled):
    """A RabbitMQ source's own labels."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    url: Annotated[str, AfterValidator(URL.checked)] = Field(
        alias="metric.url", pattern=URL.pattern
    )
    vhost: str | None = Field(default=None, alias="metric.vhost", min_length=1)
    queue: str = Field(alias="metric.queue", min_length=1)
    count: Count | None = Field(None, alias="metric.count")
    user: str | None = Field(default=None, alias="metric.user", pattern=r"^[^\s:]+$")
    credentials: str | None = Field(None, alias="metric.credentials", pattern=credentials.NAME)
    ca: Annotated[Path | None, AfterValidator(URL.tls_ca)] = Field(None, alias="metric.ca")

    @field_validator("queue")
    @classmethod
    def _short(cls, queue: str) -> str:
        if len(queue.encode()) > 255:  # AMQP's short string: the server's own limit
            raise PydanticCustomError("queue", "a queue's name is at most 255 bytes")
        return queue

    @model_validator(mode="before")
    @classmethod
    def _together(cls, data: Any) -> Any:
        """A user with its secret; a vhost label and the counts a passive declare cannot
        tell, over HTTP only."""
        if not isinstance(data, Mapping):
            return data
        labels = given(cls, data)
        required_with(cls, data, "metric.user", "metric.credentials")  # PLAIN sends a user
        secret_with_user(cls, data)
        url = data.get("metric.url", data.get("url"))
        if not (isinstance(url, str) and url.startswith("amqp")):
            return data
        if "metric.vhost" in labels:
            raise label_error(
                cls, "metric.vhost", "only with an http(s):// url: over AMQP the vhost is the "
                "URL's path (amqp://host:5672/vhost, %2F for /)", data,
            )  # fmt: skip
        count = data.get("metric.count", data.get("count"))
        if count in ("ready+unacked", "publish-rate"):
            raise label_error(
                cls, "metric.count", f"{count} only over the management API: over AMQP a "
                "passive declare tells the ready messages alone; give its URL "
                "(http://host:15672) as metric.url", data,
            )  # fmt: skip
        return data

    @property
    def counted(self) -> Count:
        return self.count or "ready"

    @property
    def over_amqp(self) -> bool:
        return self.url.startswith("amqp")

    @property
    def virtual_host(self) -> str:
        """The queue's vhost: the AMQP URL's path, or metric.vhost."""
        if self.over_amqp:
            return vhost_of(URL.address(self.url))
        return self.vhost or "/"

    @property
    def name(self) -> str:
        shown = "" if self.counted == "ready" else f" {self.counted}"
        return f"rabbitmq {self.queue}{shown}"

    @property
    def server(self) -> Server:
        return Server(self.url, self.user, self.credentials, self.ca)


def vhost_of(parts: SplitResult) -> str:
    """An AMQP URL's vhost: its path, unquoted; `/` when it has none."""
    return unquote(parts.path[1:]) or "/"


class Refused(Exception):
    """The management API refused the user: its password, or its lack of a management tag."""


class Client(Protocol):
    async def ask(self, named: list[Options]) -> list[Answer]: ...

    async def close(self) -> None: ...


class RabbitDriver:
    """The RabbitMQ queue source's driver (servers.py): a passive declare over AMQP, or the
    management API's queue."""

    kind = "rabbitmq"

    def __init__(self, limit: int = MAX_SCRAPE, name: str = "compose-autoscaler") -> None:
        self._limit = limit  # bytes of a queue's answer read at most (its consumers are in it)
        self._name = name  # the connections' name, in the server's list of them

    @property
    def expected(self) -> tuple[type[BaseException], ...]:
        from aiormq import exceptions as amqp

        return amqp.AMQPError, amqp.ChannelInvalidStateError, aiohttp.ClientError, Refused

    def server(self, options: Options) -> Server:
        return options.server

    async def connect(self, options: Options, secrets: Secrets, seconds: float) -> Client:
        """A client of the server, with its secret read now; MissingSecret where there is none.
        Over AMQP it is connected here (the password and the vhost are checked), over HTTP on
        its first request."""
        secret = secrets(options.credentials)
        password = secret.get_secret_value() if secret is not None else None
        parts = URL.address(options.url)
        tls = parts.scheme in URL.tls
        context = None
        if tls:  # the system's CAs, or metric.ca's, read off the event loop
            context = await asyncio.to_thread(ssl.create_default_context, cafile=options.ca)
        if not options.over_amqp:
            headers = {}
            if options.user is not None:  # with its secret (the labels' rule); no `:` in it
                basic = b64encode(f"{options.user}:{password}".encode()).decode()
                headers["Authorization"] = f"Basic {basic}"
            session = aiohttp.ClientSession(
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=seconds),
                connector=aiohttp.TCPConnector(ssl=context or True, limit=_REQUESTS),
            )
            return Management(session, options.url.rstrip("/"), self._limit)
        import aio_pika

        # Without metric.credentials, AMQP's PLAIN still sends a user and password: the
        # client's default, guest, which RabbitMQ lets in from its own host only.
        connection = await aio_pika.connect(
            host=parts.hostname or "",
            port=URL.port(parts),
            login=options.user or "guest",
            password=password or "guest",
            virtualhost=vhost_of(parts),
            ssl=tls,
            ssl_context=context,
            timeout=seconds,
            client_properties={"connection_name": self._name},
        )
        return Amqp(connection, seconds)

    async def ask(self, client: Client, named: list[Options]) -> list[Answer]:
        return await client.ask(named)

    async def close(self, client: Client) -> None:
        await client.close()

    def failed(self, exc: BaseException, options: Options) -> str:
        """Why a server gave nothing, naming the label to look at."""
        from aiormq import exceptions as amqp

        told = _told(exc)
        refused = isinstance(exc, amqp.ProbableAuthenticationError | amqp.AuthenticationError)
        if refused or (isinstance(exc, Refused) and "management user" not in told):
            return credentials.refused(options.credentials, options.user, told)
        if isinstance(exc, Refused):
            return (
                f"metric.user={options.user!r}: the management API refused it ({told}): give "
                "it the `monitoring` tag, or `management` and permissions on the vhost"
            )
        if isinstance(exc, amqp.InvalidFrameError) and "Connection.OpenOk" in told:
            # The server closes the connection where it would open the vhost: aiormq keeps
            # no reason, but no other step comes between the password and the vhost.
            return (
                f"metric.url={options.url!r}: the server refused the vhost "
                f"{options.virtual_host!r}: it does not exist, or metric.user="
                f"{options.user or 'guest'!r} has no permissions on it"
            )
        return f"metric.url={options.url!r}: no answer: {told}"

    def member(self, options: Options) -> str:
        return options.queue


class Amqp:
    """One connection, and a channel for its queues while the server keeps it open."""

    def __init__(self, connection: AbstractConnection, seconds: float) -> None:
        self._connection, self._seconds = connection, seconds
        self._channel: AbstractChannel | None = None

    async def ask(self, named: list[Options]) -> list[Answer]:
        if self._connection.is_closed:  # since the last round: say so, not a channel's error
            raise ConnectionError("the server closed the connection")
        return [await self._declared(options) for options in named]

    async def _declared(self, options: Options) -> Answer:
        from aiormq import exceptions as amqp

        if self._channel is None or self._channel.is_closed:
            self._channel = await self._connection.channel(publisher_confirms=False)
        try:
            queue = await self._channel.declare_queue(
                options.queue, passive=True, timeout=self._seconds
            )
        except amqp.ChannelClosed as exc:
            if self._connection.is_closed:
                raise  # the connection went, not the queue: the server's failure
            log.debug("channel closed declaring %r: %s", options.queue, _told(exc))
            return None, refused_queue(options, exc)
        return ready(options, queue.declaration_result.message_count)

    async def close(self) -> None:
        from aiormq import exceptions as amqp

        # Bounded: a server that hangs must not hold the shutdown; a broken one is closed all
        # the same.
        with contextlib.suppress(amqp.AMQPError, OSError, RuntimeError, TimeoutError):
            async with asyncio.timeout(self._seconds):
                await self._connection.close()


class Management:
    """One HTTP session, asking for each queue's statistics, a few at once."""

    def __init__(self, session: aiohttp.ClientSession, base: str, limit: int) -> None:
        self._session, self._base, self._limit = session, base, limit

    async def ask(self, named: list[Options]) -> list[Answer]:
        try:
            async with asyncio.TaskGroup() as tg:
                asked = [tg.create_task(self._queue(options)) for options in named]
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from None  # one server's failure: the first says why
        return [task.result() for task in asked]

    async def _queue(self, options: Options) -> Answer:
        vhost = quote(options.virtual_host, safe="")
        url = f"{self._base}/api/queues/{vhost}/{quote(options.queue, safe='')}"
        status, reply = await self._get(url)
        if status == 200:
            return backlog(options, reply)
        reason = str(reply.get("reason", "")) if isinstance(reply, dict) else ""
        if status == 401 and "virtual host" in reason:
            return None, (
                f"metric.vhost={options.virtual_host!r}: metric.user={options.user!r} has no "
                f"permissions on it ({reason})"
            )
        if status == 401:
            raise Refused(reason or "401 Unauthorized")
        if status == 404:
            # The API says 404 for a queue or a vhost that does not exist: ask which.
            found, _ = await self._get(f"{self._base}/api/queues/{vhost}?{_ONE}")
            if found == 404:
                return None, f"metric.vhost={options.virtual_host!r}: no such vhost"
            return None, missing_queue(options)
        answered = f"{status} {reason}".rstrip()
        return None, f"metric.url={options.url!r}: the management API answered {answered}"

    async def _get(self, url: str) -> tuple[int, Any]:
        """The status and the parsed JSON (None when it is none) of a GET."""
        async with self._session.get(url, allow_redirects=False) as response:
            try:
                raw = await body(response, self._limit)
            except TooLarge as exc:
                return response.status, {"reason": str(exc)}
        try:
            return response.status, await parsed(raw, json.loads)
        except (ValueError, RecursionError):
            return response.status, None

    async def close(self) -> None:
        await self._session.close()


Backlogs = Servers[Options, Client]
"""The RabbitMQ source's reader."""


def reader(needs: Needs) -> Backlogs:
    return Servers.made(RabbitDriver(needs.max_scrape), needs)


def ready(options: Options, message_count: Any) -> Answer:
    """A passive declare's message_count: the ready messages."""
    ready = count(message_count)
    if ready is None:
        return None, f"metric.queue={options.queue!r}: a message count of {message_count!r:.40}"
    return float(ready), None


def refused_queue(options: Options, exc: amqp.ChannelClosed) -> str:
    """Why a passive declare closed the channel, naming the label to look at."""
    from aiormq import exceptions as amqp

    if isinstance(exc, amqp.ChannelNotFoundEntity):
        return missing_queue(options)
    return f"metric.queue={options.queue!r}: the server refused to declare it: {_told(exc)}"


def backlog(options: Options, reply: Any) -> Answer:
    """A source's value from the management API's queue: (count, None) or (None, why not)."""
    queue = f"metric.queue={options.queue!r}"
    if not isinstance(reply, dict):
        return None, f"{queue}: an answer of another shape: {reply!r:.60}"
    if options.counted == "publish-rate":
        return _publish_rate(queue, reply)
    fields = ["messages_ready"]
    if options.counted == "ready+unacked":
        fields.append("messages_unacknowledged")
    total = 0
    for name in fields:
        if name not in reply:
            # A queue's first statistics come with the next emission, seconds after it is made.
            return None, f"{queue}: the management API has no {name} for it yet"
        messages = count(reply[name])
        if messages is None:
            return None, f"{queue}: {name} is {reply[name]!r:.40}, not a count"
        total += messages
    return float(total), None


def _publish_rate(queue: str, reply: dict[Any, Any]) -> Answer:
    stats = reply.get("message_stats", {})
    if isinstance(stats, dict) and not {"publish", "publish_details"} & set(stats):
        return 0.0, None  # nothing published since the statistics began
    details = stats.get("publish_details") if isinstance(stats, dict) else None
    if not isinstance(details, dict):
        return None, (
            f"{queue}: no publish rate in its statistics (management.rates_mode = none?): "
            "metric.count=ready counts without it"
        )
    rate = details.get("rate")
    if isinstance(rate, int | float) and not isinstance(rate, bool) and 0 <= rate < MAX_COUNT:
        return float(rate), None
    return None, f"{queue}: a publish rate of {rate!r:.40}"


def missing_queue(options: Options) -> str:
    return f"metric.queue={options.queue!r}: no such queue in vhost {options.virtual_host!r}"


def _told(exc: BaseException) -> str:
    """What an error says: aiormq's keep the server's reply text in their arguments."""
    args = [a for a in exc.args if isinstance(a, str) and a]
    return "; ".join(args) or str(exc) or type(exc).__name__
