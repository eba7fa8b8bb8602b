"""The PostgreSQL queue source against a real server (scripts/queues.sh): a jobs table's count as
rows come and go; a password from a secret; each way a query fails is a missing value naming
metric.query, touching no other source on the connection, and a query that would write writes
nothing; a slow query is cut at its timeout; a server that goes away and comes back; every
connection closed at shutdown. Rounds are `want` calls, on a clock the test moves past the
reconnect backoff."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from autoscaler.sources.postgres import APPLICATION, Options, PostgresDriver, Queries
from autoscaler.sources.servers import Secrets
from tests.integration.queues import Clock, queue_server, read, running, until
from tests.integration.relay import relay

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

SECRET = "pg-password"


@dataclass(frozen=True)
class PostgresServer:
    url: str
    """postgresql://host:port/database, without the user."""
    netloc: str
    database: str
    user: str
    password: str


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """scripts/queues.sh's PostgreSQL: the database `jobs`, owned by a user with a password."""
    server = queue_server("postgres")
    dsn = urlsplit(server["DSN"])
    netloc = f"{dsn.hostname}:{dsn.port}"
    return PostgresServer(f"postgresql://{netloc}{dsn.path}", netloc, dsn.path.strip("/"),
                          dsn.username or "", server.password)  # fmt: skip


@pytest.fixture
async def admin(postgres_server: PostgresServer) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own, to make and fill its tables with."""
    host, port = postgres_server.netloc.split(":")
    connection = await asyncpg.connect(
        host=host, port=int(port), user=postgres_server.user, password=postgres_server.password,
        database=postgres_server.database, ssl=False,
        server_settings={"application_name": "autoscaler-test-admin"},
    )  # fmt: skip
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def jobs(admin: asyncpg.Connection) -> AsyncIterator[str]:
    """A jobs table of this test alone (tests run side by side), dropped after it."""
    name = f"jobs_{uuid.uuid4().hex[:8]}"
    await admin.execute(f"CREATE TABLE {name} (id serial PRIMARY KEY, state text NOT NULL)")
    try:
        yield name
    finally:
        await admin.execute(f"DROP TABLE {name}")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def secrets(tmp_path: Path, postgres_server: PostgresServer) -> Secrets:
    (tmp_path / SECRET).write_text(postgres_server.password + "\n")
    return Secrets(tmp_path)


@pytest.fixture
async def queries(clock: Clock, secrets: Secrets) -> AsyncIterator[Queries]:
    async with running(PostgresDriver(), clock, secrets) as reader:
        yield reader


def source(server: PostgresServer, query: str, *, url: str | None = None, **labels: str) -> Options:
    return Options.model_validate(
        {"metric.url": url or server.url, "metric.query": query, "metric.user": server.user,
         "metric.credentials": SECRET} | {f"metric.{k}": v for k, v in labels.items()}
    )  # fmt: skip


async def test_a_queued_count_follows_inserts_and_deletes(
    queries: Queries, admin: asyncpg.Connection, jobs: str, postgres_server: PostgresServer
) -> None:
    queued = source(postgres_server, f"SELECT count(*) FROM {jobs} WHERE state = 'queued'")
    assert [m.value for m in await read(queries, queued)] == [0.0]
    await admin.executemany(f"INSERT INTO {jobs} (state) VALUES ($1)",
                            [("queued",)] * 5 + [("running",)] * 2)  # fmt: skip
    assert [m.value for m in await read(queries, queued)] == [5.0]
    await admin.execute(
        f"DELETE FROM {jobs} WHERE id IN (SELECT id FROM {jobs} WHERE state = 'queued' LIMIT 3)"
    )
    assert [m.value for m in await read(queries, queued)] == [2.0]


async def test_a_password_from_a_secret_file_and_each_refused_login_names_its_label(
    queries: Queries, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    (tmp_path / "stale-password").write_text("not-the-password\n")
    query = "SELECT 1"
    good = source(postgres_server, query)
    stale = source(postgres_server, query, credentials="stale-password")
    none = Options.model_validate({"metric.url": postgres_server.url, "metric.query": query,
                                   "metric.user": postgres_server.user})  # fmt: skip
    no_db = source(postgres_server, query, url=postgres_server.url + "_no_such_database")
    members = await read(queries, good, stale, none, no_db)
    assert [m.value for m in members] == [1.0, None, None, None]
    errors = [m.error or "" for m in members]
    assert errors[1].startswith("metric.credentials='stale-password': the server refused it")
    assert errors[2].startswith("metric.credentials: the server wants a password")
    assert errors[3].startswith(f"metric.url={no_db.url!r}: no such database")


async def test_each_bad_query_names_metric_query_and_touches_no_other_source(
    queries: Queries, admin: asyncpg.Connection, jobs: str, postgres_server: PostgresServer
) -> None:
    await admin.execute(f"INSERT INTO {jobs} (state) VALUES ('queued'), ('queued')")
    await admin.execute(f"CREATE SEQUENCE {jobs}_seq")
    bad = {
        "SELECT 1 WHERE false": "no row, not one",
        "SELECT generate_series(1, 2)": "several rows, not one",
        "SELECT 1, 2": "a row of 2 columns, not one",
        "SELECT 'queued'": "text 'queued', not a number",
        "SELECT NULL::int": "NULL, not a number",
        "SELECT -1": "-1, a negative number",
        f"SELECT count(*) FROM {jobs}_missing": "UndefinedTableError",
        "SELEC 1": "PostgresSyntaxError",
        f"DELETE FROM {jobs} RETURNING 1": "it would write, and runs read-only",
        f"SELECT nextval('{jobs}_seq')": "it would write, and runs read-only",
    }
    good = source(postgres_server, f"SELECT count(*) FROM {jobs}")
    members = await read(queries, *(source(postgres_server, q) for q in bad), good)
    assert [m.value for m in members] == [None] * len(bad) + [2.0]
    for member, words in zip(members, bad.values(), strict=False):
        assert member.error is not None and member.error.startswith("metric.query: ")
        assert words in member.error, member.name
    assert await admin.fetchval(f"SELECT count(*) FROM {jobs}") == 2  # nothing was deleted
    assert await admin.fetchval(f"SELECT is_called FROM {jobs}_seq") is False
    await admin.execute(f"DROP SEQUENCE {jobs}_seq")


async def test_what_one_query_sets_is_undone_before_the_next_runs(
    queries: Queries, admin: asyncpg.Connection, jobs: str, postgres_server: PostgresServer
) -> None:
    await admin.execute(f"INSERT INTO {jobs} (state) VALUES ('queued')")
    hijack = source(postgres_server, "SELECT length(set_config('search_path', 'nowhere', false))")
    count = source(postgres_server, f"SELECT count(*) FROM {jobs}")
    members = await read(queries, hijack, count)
    assert [m.value for m in members] == [7.0, 1.0]  # on the one connection, one after another
    assert [m.value for m in await read(queries, count)] == [1.0]


async def test_a_slow_query_is_cut_at_its_share_of_the_round_and_the_next_round_reads(
    queries: Queries, admin: asyncpg.Connection, jobs: str, postgres_server: PostgresServer
) -> None:
    await admin.execute(f"INSERT INTO {jobs} (state) VALUES ('queued')")
    slow = source(postgres_server, "SELECT pg_sleep(10)")
    count = source(postgres_server, f"SELECT count(*) FROM {jobs}")
    began = time.monotonic()
    members = await read(queries, slow, count)
    assert time.monotonic() - began < 0.5  # half the interval of 1 s
    assert [m.value for m in members] == [None, 1.0]
    assert members[0].error is not None
    assert members[0].error.startswith("metric.query: took longer than 0.2 s")
    assert [m.value for m in await read(queries, count)] == [1.0]


async def test_a_server_that_goes_away_is_missing_with_a_reason_then_read_again(
    queries: Queries, admin: asyncpg.Connection, jobs: str, postgres_server: PostgresServer,
    clock: Clock,
) -> None:  # fmt: skip
    await admin.execute(f"INSERT INTO {jobs} (state) VALUES ('queued')")
    query = f"SELECT count(*) FROM {jobs}"
    async with relay(postgres_server.netloc) as path:
        url = path.url.replace("http://", "postgresql://") + f"/{postgres_server.database}"
        relayed, direct = source(postgres_server, query, url=url), source(postgres_server, query)
        assert [m.value for m in await read(queries, relayed, direct)] == [1.0, 1.0]

        path.cut()  # the server stops: its connections drop, new ones are refused
        away = await read(queries, relayed, direct, clock=clock)
        assert [m.value for m in away] == [None, 1.0]  # the other server is not touched
        assert away[0].error is not None and away[0].error.startswith(f"metric.url={url!r}")

        path.resume()  # back, but the backoff holds the next try for a while
        assert (await read(queries, relayed))[0].error == away[0].error
        await admin.execute(f"INSERT INTO {jobs} (state) VALUES ('queued')")
        assert [m.value for m in await read(queries, relayed, clock=clock)] == [2.0]


async def test_a_connection_ended_by_the_server_mid_query_is_the_servers_failure(
    queries: Queries, postgres_server: PostgresServer, clock: Clock
) -> None:
    killer = source(postgres_server, "SELECT pg_terminate_backend(pg_backend_pid())::int")
    other = source(postgres_server, "SELECT 1")
    members = await read(queries, killer, other)
    assert [m.value for m in members] == [None, None]  # the one connection is gone for both
    assert all((m.error or "").startswith("metric.url=") for m in members)
    assert "terminating connection due to administrator command" in (members[1].error or "")
    assert [m.value for m in await read(queries, other, clock=clock)] == [1.0]


async def test_a_table_altered_between_rounds_is_read_at_once(
    queries: Queries, admin: asyncpg.Connection, jobs: str, postgres_server: PostgresServer
) -> None:
    await admin.execute(f"INSERT INTO {jobs} (state) VALUES ('queued')")
    newest = source(postgres_server, f"SELECT max(id) FROM {jobs}")
    assert [m.value for m in await read(queries, newest)] == [1.0]
    await admin.execute(f"ALTER TABLE {jobs} ALTER COLUMN id TYPE bigint")  # a migration
    assert [m.value for m in await read(queries, newest)] == [1.0]


async def test_one_connection_a_server_closed_when_unnamed_and_at_shutdown(
    clock: Clock, secrets: Secrets, admin: asyncpg.Connection, postgres_server: PostgresServer,
    tmp_path: Path,
) -> None:  # fmt: skip
    (tmp_path / "same-password").write_text(postgres_server.password)
    # The metric is the backend's pid: which connection read it.
    pid = "SELECT pg_backend_pid()"
    one, two = source(postgres_server, pid), source(postgres_server, pid + " + 0")
    other = source(postgres_server, pid, credentials="same-password")  # another server
    async with running(PostgresDriver(), clock, secrets) as reader:
        members = await read(reader, one, two, other)
        pids = {int(m.value or 0) for m in members}
        assert len(pids) == 2  # one and two share a connection; the other server has its own

        async def ours() -> set[int]:
            rows = await admin.fetch("SELECT pid FROM pg_stat_activity WHERE application_name = $1"
                                     " AND pid = any($2::int[])", APPLICATION, list(pids))  # fmt: skip
            return {row["pid"] for row in rows}

        assert await ours() == pids
        await reader.want([one])
        await until(ours, lambda left: left == {int(members[0].value or 0)},
                    "the connection no source names was not closed")  # fmt: skip
    await until(ours, lambda left: not left, "the connection was not closed at shutdown")
