"""A metric source: the number a user's SELECT returns, asked of a PostgreSQL server once a round
(a jobs table's queued rows).

    metric.url          postgresql://host:port/database (or postgres://); no user, password or
                        ?options in it (no TLS yet: the connection is plain)
    metric.query        a query giving one row of one number: SELECT count(*) FROM jobs WHERE
                        state = 'queued'
    metric.user         the role to log in as (PostgreSQL always has one)
    metric.credentials  the name of the secret that is its password (credentials.py)

A label must never write to, or hang, the database it reads. Each query runs alone in a READ
ONLY transaction that is always rolled back, with a `statement_timeout`, so that a write is
refused by the server and a `SET` made by one service's query is undone before the next one's
runs. The label refuses what is plainly more than one statement (a `;` outside quotes and
comments); the server refuses it too, as a prepared statement is a single one.

One connection serves every service that names one server (URL, user, secret); their queries
run one after another on it, within half an interval in all. Each query's `statement_timeout` is
its share of the time left (the time left over the queries not yet asked), so that a slow query
can take no other's time. A query that fails (a syntax error, no such table, no permission, a
write, too slow) or gives no number is that service's missing value, naming `metric.query`; the
connection and the other services' queries go on. A server that cannot be reached, refuses the
login or has no such database is missing for each of its services, naming the label to look at,
and is tried again after a backoff (servers.py):

    NONE ──want──► CONNECTED ──unreachable, refused──► BROKEN (backoff) ──ready──► NONE
      ▲                                                                           │
      └─────────────────────── no service names it: closed ◄──────────────────────┘
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import SplitResult, unquote

from pydantic import AfterValidator, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from autoscaler.sources import credentials
from autoscaler.sources.base import Needs
from autoscaler.sources.servers import Answer, Polled, Secrets, Server, Servers
from autoscaler.sources.urls import Url

if TYPE_CHECKING:
    import asyncpg

# The client library (3.4 MB resident) is imported where it is used, once a service names a
# PostgreSQL source: an instance without one never loads it (bench/scale.py measures the start).

logger = logging.getLogger(__name__)

APPLICATION = "compose-autoscaler"
"""The connections' application_name, as pg_stat_activity shows them."""
SHARE = 0.8
"""Of the read's seconds, what the statements may take: the rest is for the round trips, so
that a statement's own timeout ends it before the read's does (which drops the connection)."""
MIN_STATEMENT_MS = 10

# What may hide a `;`: a string, a quoted name, a dollar-quoted body, a comment. An unclosed one
# runs to the end (the server then says what is wrong). Not a parser: a label's early word.
_TOKENS = re.compile(
    r"""'(?:[^']|'')*'?|"(?:[^"]|"")*"?|--[^\n]*|/\*.*?(?:\*/|\Z)"""
    r"""|\$(?P<tag>[A-Za-z_]\w*)?\$.*?(?:\$(?P=tag)\$|\Z)|;|[^'"$;/-]+|.""",
    re.DOTALL,
)


def _database(parts: SplitResult) -> str | None:
    if not database(parts) or "/" in database(parts):
        return "the path is the database: postgresql://host:5432/jobs"
    return None


URL = Url({"postgresql": 5432, "postgres": 5432}, tls=(),
          holds="a host, a port and a database (no TLS yet)", path=_database)  # fmt: skip


class Options(Polled):
    """A PostgreSQL source's own labels."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    url: Annotated[str, AfterValidator(URL.checked)] = Field(
        alias="metric.url", pattern=URL.pattern
    )
    query: str = Field(alias="metric.query", min_length=1)
    user: str = Field(alias="metric.user", pattern=r"^\S+$")
    credentials: str | None = Field(None, alias="metric.credentials", pattern=credentials.NAME)

    @field_validator("query")
    @classmethod
    def _one_statement(cls, query: str) -> str:
        return statement(query)

    @property
    def name(self) -> str:
        return f"postgresql {self.query}"

    @property
    def server(self) -> Server:
        return Server(self.url, self.user, self.credentials)


def database(parts: SplitResult) -> str:
    return unquote(parts.path.removeprefix("/"))


def statement(query: str) -> str:
    """The query without a trailing `;`; PydanticCustomError where it is plainly not one
    statement (a `;` with more after it, outside quotes and comments) or is none."""
    tokens = [m.group() for m in _TOKENS.finditer(query)]
    ends = [i for i, token in enumerate(tokens) if token == ";"]
    kept, after = (tokens[: ends[0]], tokens[ends[0] :]) if ends else (tokens, [])
    if not all(t == ";" or _blank(t) for t in after):
        raise PydanticCustomError(
            "query", "one statement only: a `;` outside quotes ends it and more follows"
        )
    if all(_blank(t) for t in kept):
        raise PydanticCustomError("query", "no statement: a SELECT giving one number")
    return "".join(kept).strip()


def _blank(token: str) -> bool:
    return token.isspace() or token.startswith(("--", "/*"))


@dataclass(frozen=True, slots=True)
class Session:
    """A server's connection, and the seconds one read of it may take."""

    connection: asyncpg.Connection
    seconds: float


class PostgresDriver:
    """The PostgreSQL source's driver (servers.py): each query in a read-only transaction of its
    own, one after another on the server's one connection."""

    kind = "postgresql"

    @property
    def expected(self) -> tuple[type[BaseException], ...]:
        from asyncpg import exceptions as pg

        return (pg.PostgresError, pg.InterfaceError)

    def server(self, options: Options) -> Server:
        return options.server

    async def connect(self, options: Options, secrets: Secrets, seconds: float) -> Session:
        """A connection, with the secret read now; MissingSecret where there is none."""
        import asyncpg

        secret = secrets(options.credentials)
        parts = URL.address(options.url)
        connection = await asyncpg.connect(
            host=parts.hostname,
            port=URL.port(parts),
            database=database(parts),
            user=options.user,
            # "", not None: else asyncpg would take PGPASSWORD or ~/.pgpass, not the label's
            password=secret.get_secret_value() if secret is not None else "",
            ssl=False,  # explicit: else PGSSLMODE and ~/.postgresql would decide
            timeout=seconds,
            # Each query prepared anew: a cached one fails once after its table is altered.
            statement_cache_size=0,
            server_settings={
                "application_name": APPLICATION,
                # A second guard: a transaction the driver did not begin is read-only too.
                "default_transaction_read_only": "on",
            },
        )
        return Session(connection, seconds)

    async def ask(self, session: Session, named: list[Options]) -> list[Answer]:
        """Each source's answer; raises where the connection itself failed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + session.seconds * SHARE
        answers: list[Answer] = []
        for left, options in zip(range(len(named), 0, -1), named, strict=True):
            ms = max(MIN_STATEMENT_MS, int((deadline - loop.time()) / left * 1000))
            answers.append(await self._query(session.connection, options.query, ms))
        return answers

    async def _query(self, connection: asyncpg.Connection, query: str, ms: int) -> Answer:
        """One query's answer, in a read-only transaction rolled back after it: nothing it did
        (a SET among them) outlives it. Two rows at most are fetched: one is the answer."""
        from asyncpg import exceptions as pg

        await connection.execute(f"BEGIN READ ONLY; SET LOCAL statement_timeout = {ms}")
        try:
            rows = await (await connection.cursor(query)).fetch(2)
        except (pg.PostgresError, pg.InterfaceError) as exc:
            if isinstance(exc, pg.PostgresConnectionError) or connection.is_closed():
                raise  # the server's failure, not the query's
            answer: Answer = None, refused(exc, ms)
        else:
            answer = value([tuple(row) for row in rows])
        # Not in a `finally`: a read cancelled mid-query leaves the connection to be dropped.
        await connection.execute("ROLLBACK")
        return answer

    async def close(self, session: Session) -> None:
        from asyncpg import exceptions as pg

        try:
            await session.connection.close(timeout=session.seconds)
        except (pg.PostgresError, pg.InterfaceError, OSError, TimeoutError) as exc:
            logger.debug("closing a connection failed, ended instead: %r", exc)
            session.connection.terminate()  # a broken one: closed all the same

    def failed(self, exc: BaseException, options: Options) -> str:
        """Why a server gave nothing, naming the label to look at."""
        from asyncpg import exceptions as pg

        user = f"metric.user={options.user!r}"
        if isinstance(exc, pg.InvalidPasswordError):
            wanted = f"a password for {user}"
            return credentials.refused(options.credentials, options.user, str(exc), wanted=wanted)
        if isinstance(
            exc, pg.InvalidAuthorizationSpecificationError | pg.InsufficientPrivilegeError
        ):
            return f"{user}: the server refused the login ({exc})"
        if isinstance(exc, pg.InvalidCatalogNameError):
            return f"metric.url={options.url!r}: no such database ({exc})"
        return f"metric.url={options.url!r}: no answer: {str(exc) or type(exc).__name__}"

    def member(self, options: Options) -> str:
        return options.query


Queries = Servers[Options, Session]
"""The PostgreSQL source's reader."""


def reader(needs: Needs) -> Queries:
    return Servers.made(PostgresDriver(), needs)


def refused(exc: BaseException, ms: int) -> str:
    """Why a query gave nothing, in the server's words."""
    from asyncpg import exceptions as pg

    if isinstance(exc, pg.QueryCanceledError):
        seconds = f"{ms / 1000:.2g} s"
        return f"metric.query: took longer than {seconds}, its share of half an interval ({exc})"
    if isinstance(exc, pg.ReadOnlySQLTransactionError):
        return f"metric.query: it would write, and runs read-only ({exc})"
    return f"metric.query: the server refused it: {type(exc).__name__}: {exc}"


def value(rows: Sequence[Sequence[Any]]) -> Answer:
    """A query's rows as a source's value: one row of one finite number, not negative; else
    (None, why not), naming metric.query."""
    if len(rows) != 1:
        return None, f"metric.query: {'several rows' if rows else 'no row'}, not one"
    (row,) = rows
    if len(row) != 1:
        return None, f"metric.query: a row of {len(row)} columns, not one"
    (got,) = row
    number: float
    if got is None:
        return None, "metric.query: NULL, not a number (coalesce(..., 0) where none is 0)"
    if isinstance(got, bool) or not isinstance(got, int | float | Decimal):
        if isinstance(got, timedelta):
            return (
                None,
                "metric.query: an interval, not a number: extract(epoch from ...) is its seconds",
            )
        what = "text" if isinstance(got, str) else f"a {type(got).__name__}"
        return None, f"metric.query: {what} {got!r:.40}, not a number"
    if isinstance(got, Decimal) and not got.is_finite():
        return None, f"metric.query: {got}, not a finite number"
    try:
        number = float(got)
    except OverflowError:  # an int beyond a float's range
        number = math.inf
    if not math.isfinite(number):
        return None, f"metric.query: {got!r:.40}, not a finite number"
    if number < 0:
        return None, f"metric.query: {number:g}, a negative number"
    return number, None
