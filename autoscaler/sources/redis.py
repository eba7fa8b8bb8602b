"""A metric source: a Redis queue's backlog, read from the server directly, once a round.

    metric.url          redis://host:port/db, or rediss:// for TLS; never a password in it
    metric.list         a list's length (LLEN): Celery's queues (`celery` by default) and RQ's
                        (`rq:queue:default`) are lists
    metric.stream       a stream, with
    metric.group        its consumer group: the group's backlog, from XINFO GROUPS
    metric.count        (stream) `lag` (entries not yet delivered to the group), `pending`
                        (delivered, not acknowledged) or `lag+pending` (the default)
    metric.user         the user name, where the server has users (ACL)
    metric.credentials  the name of the secret that is the password (credentials.py)
    metric.ca           a CA file to verify a rediss:// server with; the system's CAs otherwise

The value is a count of items, so that `metric.target` is the items one replica should carry.
A list that does not exist is an empty queue, 0 (Celery deletes an emptied list): LLEN says 0,
and only when it fails with WRONGTYPE is the key's TYPE asked, to say what it is instead.

A stream group's lag is what Redis 7 computes from the entries the group has read; it is nil
when Redis cannot (entries were deleted or trimmed inside the part not yet read, or the group
was made at an arbitrary ID). KEDA then estimates it from the stream's length; here it is a
missing value saying so: XLEN counts every entry still kept, read and acknowledged ones too,
so an estimate from it could be any multiple of the real backlog, and a scale-up to `max` on a
guess is worse than holding the count until the group reads past the gap. `metric.count=pending`
does without the lag.

One client (a connection pool) serves every service that names one server (URL, user, secret,
CA); it is made when a service first names it and closed when none does any more, or at
shutdown. All of a server's keys are read in one pipeline, within half an interval. A server
that cannot be reached or refuses the password is missing for each of its services, naming
the label to look at; its client is dropped, and the next try (a new client, the secret read
again) waits out a backoff that doubles with failures in a row:

    NONE ──want──► CONNECTED ──unreachable, refused──► BROKEN (backoff) ──ready──► NONE
      ▲                                                                           │
      └─────────────────────── no service names it: closed ◄──────────────────────┘

An error of one key (WRONGTYPE, no such stream, no such group) is that service's alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import SplitResult

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from autoscaler.sources import credentials
from autoscaler.sources.base import Needs
from autoscaler.sources.servers import Answer, Polled, Secrets, Server, Servers, count
from autoscaler.sources.urls import Url, given, label_error, required_with

if TYPE_CHECKING:
    import redis.asyncio as aredis

# The client library (6.5 MB resident) is imported where it is used, once a service names a
# Redis source: an instance without one never loads it (bench/scale.py measures the start).


def _database(parts: SplitResult) -> str | None:
    db = parts.path.strip("/")
    if db and not (db.isascii() and db.isdigit() and int(db) < 1 << 16):
        return "the path is the database number, e.g. /0"
    return None


URL = Url({"redis": 6379, "rediss": 6379}, tls=("rediss",),
          holds="a host, a port and a database number", path=_database)  # fmt: skip


class Options(Polled):
    """A Redis source's own labels."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    url: Annotated[str, AfterValidator(URL.checked)] = Field(
        alias="metric.url", pattern=URL.pattern
    )
    list_key: str | None = Field(default=None, alias="metric.list", min_length=1)
    stream: str | None = Field(None, alias="metric.stream", min_length=1)
    group: str | None = Field(None, alias="metric.group", min_length=1)
    count: Literal["lag", "pending", "lag+pending"] | None = Field(None, alias="metric.count")
    user: str | None = Field(default=None, alias="metric.user", pattern=r"^\S+$")
    credentials: str | None = Field(None, alias="metric.credentials", pattern=credentials.NAME)
    ca: Annotated[Path | None, AfterValidator(URL.tls_ca)] = Field(None, alias="metric.ca")

    @model_validator(mode="before")
    @classmethod
    def _one_key(cls, data: Any) -> Any:
        """Exactly one of a list and a stream; a group, and a count, with a stream only."""
        if not isinstance(data, Mapping):
            return data
        labels = given(cls, data)
        if ("metric.list" in labels) == ("metric.stream" in labels):
            raise label_error(
                cls,
                "metric.stream",
                "give exactly one of metric.list (a list's length) and metric.stream (with "
                "metric.group: a consumer group's backlog)",
                data,
            )
        required_with(cls, data, "metric.group", "metric.stream")
        for label in ("metric.group", "metric.count"):
            if label in labels and "metric.stream" not in labels:
                raise label_error(cls, label, "only with metric.stream", data)
        return data

    @property
    def counted(self) -> str:
        """What of a stream group's backlog is counted."""
        return self.count or "lag+pending"

    @property
    def name(self) -> str:
        if self.list_key is not None:
            return f"redis {self.list_key}"
        return f"redis {self.stream} {self.group}"

    @property
    def server(self) -> Server:
        return Server(self.url, self.user, self.credentials, self.ca)


class RedisDriver:
    """The Redis queue source's driver (servers.py): LLEN and XINFO GROUPS in one pipeline."""

    kind = "redis"

    @property
    def expected(self) -> tuple[type[BaseException], ...]:
        from redis.exceptions import RedisError

        return (RedisError,)

    def server(self, options: Options) -> Server:
        return options.server

    async def connect(self, options: Options, secrets: Secrets, seconds: float) -> aredis.Redis:
        """A client of the server, with its secret read now; MissingSecret where there is none.
        It connects on its first command."""
        import redis.asyncio as aredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        secret = secrets(options.credentials)
        parts = URL.address(options.url)
        db = parts.path.strip("/")
        tls = parts.scheme in URL.tls
        return aredis.Redis(
            host=parts.hostname or "",
            port=URL.port(parts),
            db=int(db or 0),
            username=options.user,
            password=secret.get_secret_value() if secret is not None else None,
            ssl=tls,
            ssl_ca_certs=str(options.ca) if tls and options.ca is not None else None,
            decode_responses=True,
            socket_timeout=seconds,
            socket_connect_timeout=seconds,
            retry=Retry(NoBackoff(), 0),  # ours is the backoff, between rounds
        )  # no client name: CLIENT SETNAME is one more command a user must be allowed

    async def ask(self, client: aredis.Redis, named: list[Options]) -> list[Answer]:
        """Each source's (value, None) or (None, why not), from one pipeline; a second one asks
        the TYPE of the keys that turned out to be no list or stream."""
        from redis.exceptions import ConnectionError as LostConnection
        from redis.exceptions import ResponseError

        pipe = client.pipeline(transaction=False)
        for options in named:
            if options.list_key is not None:
                pipe.llen(options.list_key)
            else:
                pipe.xinfo_groups(options.stream or "")
        replies = await pipe.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, LostConnection):  # NOAUTH comes as a command's reply
                raise reply
        wrong = [
            o.list_key or o.stream or ""
            for o, r in zip(named, replies, strict=True)
            if isinstance(r, ResponseError) and str(r).startswith("WRONGTYPE")
        ]
        types: dict[str, str] = {}
        if wrong:
            pipe = client.pipeline(transaction=False)
            for key in wrong:
                pipe.type(key)
            found = await pipe.execute(raise_on_error=False)
            types = {k: t for k, t in zip(wrong, found, strict=True) if isinstance(t, str)}
        return [backlog(o, r, types) for o, r in zip(named, replies, strict=True)]

    async def close(self, client: aredis.Redis) -> None:
        from redis.exceptions import RedisError

        with contextlib.suppress(RedisError, OSError):  # a broken one: closed all the same
            await client.aclose()

    def failed(self, exc: BaseException, options: Options) -> str:
        """Why a server gave nothing, naming the label to look at: its secret, or its URL."""
        from redis.exceptions import AuthenticationError

        if isinstance(exc, AuthenticationError):
            return credentials.refused(options.credentials, options.user, str(exc))
        return f"metric.url={options.url!r}: no answer: {str(exc) or type(exc).__name__}"

    def member(self, options: Options) -> str:
        if options.list_key is not None:
            return options.list_key
        return f"{options.stream} {options.group}"


Backlogs = Servers[Options, "aredis.Redis"]
"""The Redis source's reader."""


def reader(needs: Needs) -> Backlogs:
    return Servers.made(RedisDriver(), needs)


def backlog(
    options: Options, reply: Any, types: Mapping[str, str]
) -> tuple[float | None, str | None]:
    """A source's value from its reply (LLEN's, or XINFO GROUPS'): (count, None) or (None, why
    not), naming the label to look at. `types`: the TYPE of each key of the wrong type."""
    from redis.exceptions import ResponseError

    if options.list_key is not None:
        key, label = options.list_key, "metric.list"
        if (length := count(reply)) is not None:
            return float(length), None
    else:
        key, label = options.stream or "", "metric.stream"
    if isinstance(reply, ResponseError):
        if key in types:
            wanted = "a list" if options.list_key is not None else "a stream"
            return None, f"{label}={key!r}: the key is a {types[key]}, not {wanted}"
        if str(reply) == "no such key":
            return None, f"{label}={key!r}: no such stream"
        return None, f"{label}={key!r}: the server refused to read it: {reply}"
    if options.list_key is not None or not isinstance(reply, list):
        return None, f"{label}={key!r}: an answer of another shape: {reply!r:.60}"
    return _group_backlog(options, key, reply)


def _group_backlog(
    options: Options, stream: str, groups: list[Any]
) -> tuple[float | None, str | None]:
    found = [g for g in groups if isinstance(g, dict) and g.get("name") == options.group]
    if not found:
        have = ", ".join(sorted(str(g.get("name")) for g in groups if isinstance(g, dict)))
        return None, (
            f"metric.group={options.group!r}: stream {stream!r} has no such group"
            + (f" (it has {have})" if have else " (it has none)")
        )
    group = found[0]
    total = 0
    if "lag" in options.counted:
        lag = count(group.get("lag"))
        if lag is None:
            return None, (
                f"metric.count={options.counted}: Redis cannot tell the lag of group "
                f"{options.group!r} (entries deleted or trimmed that it has not read"
                + (", or Redis older than 7" if "lag" not in group else "")
                + "); metric.count=pending counts without it"
            )
        total += lag
    if "pending" in options.counted:
        pending = count(group.get("pending"))
        if pending is None:
            return None, f"metric.group={options.group!r}: no pending count in {group!r:.60}"
        total += pending
    return float(total), None
