"""The Redis queue source against a real redis-server (scripts/queues.sh): a list's length and a
stream group's backlog as they change; a password from a secret; each way a read fails is a
missing value naming the label to look at, touching no other source; a server that goes away
and comes back; TLS verified with a CA file. Rounds are `want` calls, on a clock the test moves
past the reconnect backoff."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from autoscaler.sources.redis import Backlogs, Options, RedisDriver
from autoscaler.sources.servers import Answer, Secrets
from tests.integration.queues import Clock, queue_server, read, running, until
from tests.integration.relay import relay

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


@dataclass(frozen=True)
class RedisServer:
    url: str
    """The default user, no password."""
    user: str
    password: str
    """User `user`'s password, as its file holds it."""
    tls_url: str
    ca_file: Path


@pytest.fixture(scope="session")
def redis_server() -> RedisServer:
    """scripts/queues.sh's redis-server: its plain and TLS ports, a user with a password."""
    server = queue_server("redis")
    return RedisServer(server["URL"], server["USER"], server.password, server["TLS_URL"],
                       Path(server["CA_FILE"]))  # fmt: skip


@pytest.fixture
async def admin(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A client of the test's own, to fill the queues with; the keys it made go with it."""
    client = Redis.from_url(redis_server.url, decode_responses=True)
    made: list[str] = []
    client.made = made  # type: ignore[attr-defined]
    try:
        yield client
    finally:
        if made:
            await client.delete(*made)
        await client.aclose()


def key(admin: Redis, what: str) -> str:
    """A key of this test alone (tests run side by side), deleted after it."""
    name = f"test:{what}:{uuid.uuid4().hex[:8]}"
    admin.made.append(name)  # type: ignore[attr-defined]
    return name


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def backlogs(clock: Clock, tmp_path: Path) -> AsyncIterator[Backlogs]:
    async with running(RedisDriver(), clock, Secrets(tmp_path)) as reader:
        yield reader


def source(url: str, **labels: str) -> Options:
    return Options.model_validate(
        {"metric.url": url} | {f"metric.{k}": v for k, v in labels.items()}
    )


async def test_a_lists_length_follows_its_pushes_and_pops(
    backlogs: Backlogs, admin: Redis, redis_server: RedisServer
) -> None:
    celery = key(admin, "celery")
    queue = source(redis_server.url, list=celery)
    assert [m.value for m in await read(backlogs, queue)] == [0.0]  # no key: an empty queue
    await admin.rpush(celery, *range(5))
    assert [m.value for m in await read(backlogs, queue)] == [5.0]
    await admin.lpop(celery, 2)
    assert [m.value for m in await read(backlogs, queue)] == [3.0]


async def test_a_polled_list_is_read_between_rounds_and_a_change_is_told_at_once(
    clock: Clock, tmp_path: Path, admin: Redis, redis_server: RedisServer
) -> None:
    told: asyncio.Queue[Options] = asyncio.Queue()
    jobs, other = key(admin, "jobs"), key(admin, "other")
    polled = source(redis_server.url, list=jobs, poll="0.2s")
    once = source(redis_server.url, list=other)  # read once a round, as by default
    driver = Counting()
    async with running(driver, clock, Secrets(tmp_path), told.put_nowait) as reader:
        await read(reader, polled, once)  # a round names both
        await admin.rpush(other, 1)
        await admin.rpush(jobs, *range(7))
        async with asyncio.timeout(2):  # no round in between: the poll read it, and told it
            assert await told.get() == polled
        assert [m.value for m in reader.members(polled)] == [7.0]
        await admin.rpush(jobs, 7)
        async with asyncio.timeout(2):
            assert await told.get() == polled
        assert [m.value for m in reader.members(polled)] == [8.0]
        assert [m.value for m in reader.members(once)] == [0.0]  # not read since the round
        asked = driver.asks
        await until(async_value(lambda: driver.asks), lambda n: n >= asked + 2, "no more polls")
        assert told.empty()  # polled again, unchanged: not told again


class Counting(RedisDriver):
    """The Redis driver, counting the reads it makes."""

    asks = 0

    async def ask(self, client: Any, named: list[Options]) -> list[Answer]:
        self.asks += 1
        return await super().ask(client, named)


def async_value(get: Callable[[], int]) -> Callable[[], Awaitable[int]]:
    async def look() -> int:
        return get()

    return look


async def test_a_stream_groups_backlog_is_its_lag_plus_its_pending(
    backlogs: Backlogs, admin: Redis, redis_server: RedisServer
) -> None:
    jobs = key(admin, "jobs")
    for n in range(6):
        await admin.xadd(jobs, {"n": n})
    await admin.xgroup_create(jobs, "workers", id="0")
    await admin.xreadgroup("workers", "w1", {jobs: ">"}, count=4)  # 4 delivered, 2 not yet
    (delivered,) = await admin.xreadgroup("workers", "w1", {jobs: "0"}, count=1)
    await admin.xack(jobs, "workers", delivered[1][0][0])  # 1 of them done: 3 pending
    both, lag, pending = (source(redis_server.url, stream=jobs, group="workers", count=c)
                          for c in ("lag+pending", "lag", "pending"))  # fmt: skip
    assert [m.value for m in await read(backlogs, both, lag, pending)] == [5.0, 2.0, 3.0]


async def test_a_lag_redis_cannot_tell_is_missing_saying_so_and_pending_still_counts(
    backlogs: Backlogs, admin: Redis, redis_server: RedisServer
) -> None:
    jobs = key(admin, "jobs")
    for n in range(1, 5):
        await admin.xadd(jobs, {"n": n}, id=f"{n}-0")
    await admin.xgroup_create(jobs, "workers", id="0")
    await admin.xreadgroup("workers", "w1", {jobs: ">"}, count=1)
    await admin.xdel(jobs, "3-0")  # deleted before the group read it: Redis's lag is nil
    both = source(redis_server.url, stream=jobs, group="workers")
    pending = source(redis_server.url, stream=jobs, group="workers", count="pending")
    members = await read(backlogs, both, pending)
    assert [m.value for m in members] == [None, 1.0]
    assert members[0].error is not None
    assert members[0].error.startswith("metric.count=lag+pending: Redis cannot tell the lag")


async def test_a_password_from_a_secret_file_and_a_refused_one(
    backlogs: Backlogs, admin: Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    (tmp_path / "redis-password").write_text(redis_server.password + "\n")
    (tmp_path / "stale-password").write_text("not-the-password\n")
    celery = key(admin, "celery")
    await admin.rpush(celery, "a", "b")
    good = source(redis_server.url, list=celery, user=redis_server.user,
                  credentials="redis-password")  # fmt: skip
    refused = source(redis_server.url, list=celery, user=redis_server.user,
                     credentials="stale-password")  # fmt: skip
    missing = source(redis_server.url, list=celery, credentials="nowhere")
    members = await read(backlogs, good, refused, missing)
    assert [m.value for m in members] == [2.0, None, None]
    assert members[1].error is not None
    assert members[1].error.startswith("metric.credentials='stale-password': the server refused")
    assert members[2].error is not None
    assert str(tmp_path / "nowhere") in members[2].error
    assert "AUTOSCALER_SECRETS__NOWHERE" in members[2].error


async def test_each_bad_key_names_its_label_and_touches_no_other_source(
    backlogs: Backlogs, admin: Redis, redis_server: RedisServer
) -> None:
    a_hash, jobs, celery = key(admin, "hash"), key(admin, "jobs"), key(admin, "celery")
    await admin.hset(a_hash, "field", "value")
    await admin.xadd(jobs, {"n": 1})
    await admin.xgroup_create(jobs, "workers", id="0")
    await admin.rpush(celery, "a")
    members = await read(
        backlogs,
        source(redis_server.url, list=a_hash),
        source(redis_server.url, stream=jobs, group="no-such-group"),
        source(redis_server.url, stream=key(admin, "no-stream"), group="workers"),
        source(redis_server.url, stream=celery, group="workers"),
        source(redis_server.url, list=celery),
    )
    assert [m.value for m in members] == [None, None, None, None, 1.0]
    errors = [m.error or "" for m in members]
    assert errors[0] == f"metric.list={a_hash!r}: the key is a hash, not a list"
    assert errors[1].startswith("metric.group='no-such-group': stream")
    assert "has no such group (it has workers)" in errors[1]
    assert errors[2].startswith("metric.stream=") and errors[2].endswith("no such stream")
    assert errors[3] == f"metric.stream={celery!r}: the key is a list, not a stream"


async def test_a_server_that_goes_away_is_missing_with_a_reason_then_read_again(
    backlogs: Backlogs, admin: Redis, redis_server: RedisServer, clock: Clock
) -> None:
    celery = key(admin, "celery")
    await admin.rpush(celery, "a", "b", "c")
    async with relay(urlsplit(redis_server.url).netloc) as path:
        url = path.url.replace("http://", "redis://") + "/0"
        queue, direct = source(url, list=celery), source(redis_server.url, list=celery)
        assert [m.value for m in await read(backlogs, queue, direct)] == [3.0, 3.0]

        path.cut()  # the server stops: its connections drop, new ones are refused
        away = await read(backlogs, queue, direct, clock=clock)
        assert [m.value for m in away] == [None, 3.0]  # the other server is not touched
        assert away[0].error is not None and away[0].error.startswith(f"metric.url={url!r}")

        path.resume()  # back, but the backoff holds the next try for a while
        assert (await read(backlogs, queue))[0].error == away[0].error
        await admin.rpush(celery, "d")
        assert [m.value for m in await read(backlogs, queue, clock=clock)] == [4.0]


async def test_clients_are_one_a_server_and_closed_when_no_source_names_it(
    backlogs: Backlogs, admin: Redis, redis_server: RedisServer
) -> None:
    # On a database of this test's own, the server's connections to it are the reader's.
    url = redis_server.url.rsplit("/", 1)[0] + "/9"

    async def ours() -> set[str]:
        return {c["id"] for c in await admin.client_list() if c.get("db") == "9"}

    await read(backlogs, source(url, list="one"), source(url, list="two"))
    assert len(await ours()) == 1  # one pipeline of one client for both keys
    await backlogs.want([])
    await until(ours, lambda left: not left, "the client was not closed")


async def test_shutdown_closes_every_client(
    clock: Clock, admin: Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    url = redis_server.url.rsplit("/", 1)[0] + "/8"

    async def ours() -> set[str]:
        return {c["id"] for c in await admin.client_list() if c.get("db") == "8"}

    async with running(RedisDriver(), clock, Secrets(tmp_path)) as reader:
        await read(reader, source(url, list="one"))
        assert len(await ours()) == 1
    await until(ours, lambda left: not left, "the client was not closed at shutdown")


async def test_a_user_allowed_only_the_reads_is_enough(
    backlogs: Backlogs, admin: Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    user = f"reader-{uuid.uuid4().hex[:8]}"
    await admin.acl_setuser(user, enabled=True, passwords=["+reader-password"], keys=["*"],
                            commands=["+llen", "+xinfo|groups", "+type"])  # fmt: skip
    (tmp_path / "reader").write_text("reader-password")
    try:
        a_hash = key(admin, "hash")
        await admin.hset(a_hash, "field", "value")
        members = await read(backlogs, source(redis_server.url, list=a_hash, user=user,
                                              credentials="reader"))  # fmt: skip
        assert members[0].error == f"metric.list={a_hash!r}: the key is a hash, not a list"
    finally:
        await admin.acl_deluser(user)


async def test_tls_is_verified_with_the_ca_file_named(
    backlogs: Backlogs, admin: Redis, redis_server: RedisServer
) -> None:
    celery = key(admin, "celery")
    await admin.rpush(celery, "a")
    verified = source(redis_server.tls_url, list=celery, ca=str(redis_server.ca_file))
    unverified = source(redis_server.tls_url, list=celery)
    members = await read(backlogs, verified, unverified)
    assert [m.value for m in members] == [1.0, None]
    assert members[1].error is not None and "certificate verify failed" in members[1].error
    assert members[1].error.startswith("metric.url=")
