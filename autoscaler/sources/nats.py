"""A metric source: a NATS JetStream consumer's backlog, read from the server directly, once a
round.

    metric.url          nats://host:port, or tls://host:port; never a user, token or password
    metric.stream       the JetStream stream
    metric.consumer     its durable consumer, whose backlog is read ($JS.API.CONSUMER.INFO)
    metric.count        `pending` (the default: messages not yet delivered to the consumer) or
                        `pending+unacked` (and those delivered, not yet acknowledged: in flight)
    metric.user         the user name; with it, the secret is the user's password
    metric.credentials  the name of the secret (credentials.py): the password of metric.user,
                        or, without a user, the server's token
    metric.ca           a CA file to verify a tls:// server with; the system's CAs otherwise

The value is a count of messages, so that `metric.target` is the messages one replica should
carry. The consumer's info is asked with the JetStream API's own request, and its JSON read here
(`backlog`), so that every answer, an error's code included, is mapped in one pure function.

One connection serves every service that names one server (URL, user, secret, CA). nats-py's
own reconnection is off: servers.py drops a failed client and makes a new one after its
backoff, reading the secret again. A tls:// URL is TLS or nothing: nats-py upgrades only when
the server's INFO asks for it, so a server (or something in between) that does not ask is
refused before the secret is sent.

A server that cannot be reached, or refuses the secret, is missing for each of its services,
naming the label to look at. A stream or consumer that does not exist is that service's error
alone, as is a server without JetStream (nothing answers its API).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from autoscaler.sources import credentials
from autoscaler.sources.base import Needs
from autoscaler.sources.servers import Answer, Polled, Secrets, Server, Servers, count
from autoscaler.sources.urls import Url, secret_with_user

if TYPE_CHECKING:
    from nats.aio.client import Client as Nats

# The client library is imported where it is used, once a service names a NATS source: an
# instance without one never loads it (bench/scale.py measures the start).

log = logging.getLogger(__name__)

CLIENT_NAME = "compose-autoscaler"
"""The name our connections show on the server's monitoring port (/connz)."""
CLOSE_SECONDS = 2.0
"""A close flushes what is buffered: bounded, so that a dead peer never holds a shutdown."""
JS_NAME = r"^[^\s\x00-\x1f\x7f.*>/\\]+$"
"""A stream's or consumer's name: a token of a subject, never a wildcard or a separator."""

STREAM_NOT_FOUND, CONSUMER_NOT_FOUND = 10059, 10014
JETSTREAM_NOT_ENABLED = {10076, 10039}  # on the server, for the account

URL = Url({"nats": 4222, "tls": 4222}, tls=("tls",), holds="a host and a port", token=True)
"""No user in it: NATS reads a lone user in a URL as a token."""


class Options(Polled):
    """A NATS JetStream source's own labels."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    url: Annotated[str, AfterValidator(URL.checked)] = Field(
        alias="metric.url", pattern=URL.pattern
    )
    stream: str = Field(alias="metric.stream", pattern=JS_NAME)
    consumer: str = Field(alias="metric.consumer", pattern=JS_NAME)
    count: Literal["pending", "pending+unacked"] = Field("pending", alias="metric.count")
    user: str | None = Field(default=None, alias="metric.user", pattern=r"^\S+$")
    credentials: str | None = Field(None, alias="metric.credentials", pattern=credentials.NAME)
    ca: Annotated[Path | None, AfterValidator(URL.tls_ca)] = Field(None, alias="metric.ca")

    @model_validator(mode="before")
    @classmethod
    def _user_with_secret(cls, data: Any) -> Any:
        """A user is nothing without its password: NATS sends the two together or neither."""
        if isinstance(data, Mapping):
            secret_with_user(cls, data)
        return data

    @property
    def name(self) -> str:
        return f"nats {self.stream} {self.consumer}"

    @property
    def server(self) -> Server:
        return Server(self.url, self.user, self.credentials, self.ca)


@dataclass(slots=True)
class Connection:
    """A connection to one server, and the time its requests may take."""

    client: Nats
    seconds: float
    reported: Exception | None = None
    """What nats-py told its error callback last: why a connect failed, beyond NoServersError."""
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    """Closed under us (the server went away): nats-py leaves its requests waiting for their
    timeout, and the round must not."""


class UnreadableCA(OSError):
    """metric.ca names a file that is not a CA that can be read."""


class TlsRefused(Exception):
    """A tls:// server that did not ask for TLS: the secret was not sent."""


class NatsDriver:
    """The NATS JetStream source's driver (servers.py): a consumer's info, every source's at
    once."""

    kind = "nats"

    def __init__(self, client_name: str = CLIENT_NAME) -> None:
        self.client_name = client_name

    @property
    def expected(self) -> tuple[type[BaseException], ...]:
        import nats.errors

        return (nats.errors.Error, TlsRefused)

    def server(self, options: Options) -> Server:
        return options.server

    async def connect(self, options: Options, secrets: Secrets, seconds: float) -> Connection:
        """A connection to the server, its secret (and CA) read now; MissingSecret where there
        is none. nats-py's own connect loop tries the server twice, without a wait between; it
        never reconnects."""
        import nats.errors
        from nats.aio.client import Client as Nats

        secret = secrets(options.credentials)
        tls = URL.is_tls(options.url)
        context = _tls(options.ca) if tls else None  # before the client: nothing to close yet
        client = Nats()
        connection = Connection(client, seconds)

        async def reported(exc: Exception) -> None:
            # A server that fails is told as its services' missing values, not logged here.
            connection.reported = exc
            log.debug("nats %s: %s", options.url, exc)

        async def closed() -> None:
            connection.lost.set()

        def sent() -> str:
            """The secret, at CONNECT: only over TLS where the URL says tls://."""
            _secured(client, tls, "the secret was not sent")
            return secret.get_secret_value() if secret is not None else ""

        auth: dict[str, Any] = {}
        if secret is not None:
            auth = {"user": options.user, "password": sent} if options.user else {"token": sent}
        try:
            await client.connect(
                servers=[options.url],
                name=self.client_name,
                error_cb=reported,
                closed_cb=closed,
                allow_reconnect=False,  # ours is the backoff, between rounds
                max_reconnect_attempts=1,  # 0 is "for ever" to its connect loop
                reconnect_time_wait=0,
                connect_timeout=seconds,  # type: ignore[arg-type]  # a float works
                tls=context,
                **auth,
            )
            _secured(client, tls, "nothing was asked")
        except nats.errors.NoServersError as exc:
            await self.close(connection)
            raise (connection.reported or exc) from exc  # the reason, not "no servers"
        except BaseException:
            await self.close(connection)
            raise
        return connection

    async def ask(self, connection: Connection, named: list[Options]) -> list[Answer]:
        """Each source's (value, None) or (None, why not), its consumer's info asked of the
        server all at once; raises where the server failed."""
        try:
            async with asyncio.TaskGroup() as tg:
                lost = tg.create_task(self._lost(connection))
                asked = [tg.create_task(self._info(connection, o)) for o in named]
                if asked:
                    await asyncio.wait(asked)
                lost.cancel()
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from None  # the server failed: one reason is enough
        return [backlog(o, a.result()) for o, a in zip(named, asked, strict=True)]

    async def _lost(self, connection: Connection) -> None:
        """Raises when the connection closes under the requests: they fail at once."""
        import nats.errors

        await connection.lost.wait()
        raise nats.errors.ConnectionClosedError from connection.reported

    async def _info(self, connection: Connection, options: Options) -> Any:
        """The consumer's info, as JSON; NoRespondersError where JetStream does not answer."""
        import nats.errors

        subject = f"$JS.API.CONSUMER.INFO.{options.stream}.{options.consumer}"
        try:
            reply = await connection.client.request(subject, b"", timeout=connection.seconds)
        except nats.errors.NoRespondersError as exc:
            return exc
        try:
            return json.loads(reply.data)
        except ValueError:
            return reply.data

    async def close(self, connection: Connection) -> None:
        """Closed, quietly and within CLOSE_SECONDS: nats-py's close cancels its own tasks."""
        import nats.errors

        with contextlib.suppress(nats.errors.Error, OSError, TimeoutError):
            async with asyncio.timeout(CLOSE_SECONDS):
                await connection.client.close()

    def failed(self, exc: BaseException, options: Options) -> str:
        """Why a server gave nothing, naming the label to look at: its secret, CA or URL."""
        import nats.errors

        text = str(exc) or type(exc).__name__
        if isinstance(exc, nats.errors.AuthorizationError) or "Authorization Violation" in text:
            wanted = "a user and password, or a token"
            return credentials.refused(
                options.credentials, options.user, text, wanted=wanted, lone=" as a token"
            )
        if isinstance(exc, UnreadableCA):
            return f"metric.ca={str(options.ca)!r}: {text}"
        if isinstance(exc, TlsRefused):
            return f"metric.url={options.url!r}: {text}"
        return f"metric.url={options.url!r}: no answer: {text}"

    def member(self, options: Options) -> str:
        return f"{options.stream} {options.consumer}"


def _secured(client: Nats, tls: bool, so: str) -> None:
    """TlsRefused where the URL says tls:// and the server did not ask for TLS (nats-py then
    stays in plain text)."""
    if tls and not client._server_info.get("tls_required"):
        raise TlsRefused(f"the server did not ask for TLS: {so}")


def _tls(ca: Path | None) -> ssl.SSLContext:
    """The system's CAs, or the file named, read now (a CA replaced is taken at the next try)."""
    try:
        return ssl.create_default_context(cafile=None if ca is None else str(ca))
    except (OSError, ssl.SSLError) as exc:
        raise UnreadableCA(f"not a CA file that can be read: {exc}") from exc


Backlogs = Servers[Options, Connection]
"""The NATS JetStream source's reader."""


def reader(needs: Needs) -> Backlogs:
    return Servers.made(NatsDriver(), needs)


def backlog(options: Options, reply: Any) -> Answer:
    """A source's value from the server's answer to CONSUMER.INFO (its JSON, or the
    NoRespondersError of a server without JetStream): (count, None) or (None, why not), naming
    the label to look at."""
    import nats.errors

    consumer = options.consumer
    if isinstance(reply, nats.errors.NoRespondersError):
        return (
            None,
            f"metric.url={options.url!r}: JetStream is not enabled (nothing answers its API)",
        )
    if not isinstance(reply, dict):
        return None, f"metric.consumer={consumer!r}: an answer of another shape: {reply!r:.60}"
    error = reply.get("error")
    if error is not None:
        return _refused(options, error)
    total = 0
    for key in (
        ("num_pending", "num_ack_pending")
        if options.count == "pending+unacked"
        else ("num_pending",)
    ):
        messages = count(reply.get(key))
        if messages is None:
            return None, f"metric.consumer={consumer!r}: no {key} in the answer: {reply!r:.60}"
        total += messages
    return float(total), None


def _refused(options: Options, error: Any) -> Answer:
    stream, consumer = options.stream, options.consumer
    if not isinstance(error, dict):
        return None, f"metric.consumer={consumer!r}: an error of another shape: {error!r:.60}"
    code, err_code, description = error.get("code"), error.get("err_code"), error.get("description")
    if err_code == STREAM_NOT_FOUND:
        return None, f"metric.stream={stream!r}: no such stream"
    if err_code == CONSUMER_NOT_FOUND:
        return None, f"metric.consumer={consumer!r}: stream {stream!r} has no such consumer"
    if isinstance(err_code, int) and err_code in JETSTREAM_NOT_ENABLED:
        return (
            None,
            f"metric.url={options.url!r}: {description or 'JetStream is not enabled'!s:.80}",
        )
    return None, (
        f"metric.consumer={consumer!r}: JetStream refused to read it: {description!s:.80} "
        f"(code {code}, err_code {err_code})"
    )
