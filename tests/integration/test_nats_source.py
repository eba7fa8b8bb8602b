"""The NATS JetStream queue source against a real nats-server (scripts/queues.sh): a durable
consumer's backlog as messages are published, delivered and acknowledged; a password from a
secret; each way a read fails is a missing value naming the label to look at, touching no other
source; a server that goes away and comes back; one connection a server, closed when no source
names it and at shutdown, with nothing of it left running. Rounds are `want` calls, on a clock
the test moves past the reconnect backoff."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from nats.aio.client import Client as Nats
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig

from autoscaler.sources.nats import Backlogs, NatsDriver, Options
from autoscaler.sources.servers import Secrets
from tests.integration.queues import Clock, queue_server, read, running, until
from tests.integration.relay import relay

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

SECRET = "nats-password"
"""The secret, in the reader's secrets folder, that is user `scaler`'s password."""


@dataclass(frozen=True)
class NatsServer:
    url: str
    user: str
    password: str
    monitor_url: str


@pytest.fixture(scope="session")
def nats_server() -> NatsServer:
    """scripts/queues.sh's nats-server: JetStream on, one user with a password, monitoring."""
    server = queue_server("nats")
    return NatsServer(server["URL"], server["USER"], server.password, server["MONITOR_URL"])


@dataclass
class Admin:
    """A connection of the test's own, to make streams and consumers with and fill them."""

    client: Nats
    js: JetStreamContext
    made: list[str]

    async def stream(self, what: str, *consumers: str) -> str:
        """A stream of this test alone (tests run side by side), with durable pull consumers
        that acknowledge one by one; deleted after the test."""
        name = f"test_{what}_{uuid.uuid4().hex[:8]}"
        await self.js.add_stream(name=name, subjects=[f"{name}.>"])
        self.made.append(name)
        for consumer in consumers:
            config = ConsumerConfig(durable_name=consumer, ack_policy=AckPolicy.EXPLICIT)
            await self.js.add_consumer(name, config)
        return name

    async def publish(self, stream: str, count: int) -> None:
        for n in range(count):
            await self.js.publish(f"{stream}.job", str(n).encode())


@pytest.fixture
async def admin(nats_server: NatsServer) -> AsyncIterator[Admin]:
    client = Nats()
    await client.connect(nats_server.url, user=nats_server.user, password=nats_server.password)
    made = Admin(client, client.jetstream(), [])
    try:
        yield made
    finally:
        for stream in made.made:
            await made.js.delete_stream(stream)
        await client.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def driver() -> NatsDriver:
    """Connections named for this test alone, to be counted on the server's /connz."""
    return NatsDriver(client_name=f"test-{uuid.uuid4().hex[:8]}")


@pytest.fixture
async def backlogs(
    driver: NatsDriver, clock: Clock, tmp_path: Path, nats_server: NatsServer
) -> AsyncIterator[Backlogs]:
    """The reader as the app runs it, with the password as a secret."""
    (tmp_path / SECRET).write_text(nats_server.password + "\n")
    async with running(driver, clock, Secrets(tmp_path)) as reader:
        yield reader


def source(url: str, stream: str, consumer: str = "workers", **labels: str) -> Options:
    """A source of the test server's user, its password the secret SECRET, unless given."""
    labels = {"user": "scaler", "credentials": SECRET} | labels
    return Options.model_validate(
        {"metric.url": url, "metric.stream": stream, "metric.consumer": consumer}
        | {f"metric.{k}": v for k, v in labels.items() if v}
    )


async def test_the_pending_count_follows_what_is_published_and_acknowledged(
    backlogs: Backlogs, admin: Admin, nats_server: NatsServer
) -> None:
    jobs = await admin.stream("jobs", "workers")
    queue = source(nats_server.url, jobs)
    assert [m.value for m in await read(backlogs, queue)] == [0.0]
    await admin.publish(jobs, 5)
    assert [m.value for m in await read(backlogs, queue)] == [5.0]
    worker = await admin.js.pull_subscribe_bind("workers", jobs)
    for message in await worker.fetch(2, timeout=2):
        await message.ack_sync()
    assert [m.value for m in await read(backlogs, queue)] == [3.0]


async def test_pending_plus_unacked_counts_the_jobs_in_flight(
    backlogs: Backlogs, admin: Admin, nats_server: NatsServer
) -> None:
    jobs = await admin.stream("jobs", "workers")
    await admin.publish(jobs, 6)
    worker = await admin.js.pull_subscribe_bind("workers", jobs)
    delivered = await worker.fetch(4, timeout=2)  # 4 in flight, none acknowledged yet
    waiting = source(nats_server.url, jobs)
    in_flight = source(nats_server.url, jobs, count="pending+unacked")
    assert [m.value for m in await read(backlogs, waiting, in_flight)] == [2.0, 6.0]
    await delivered[0].ack_sync()  # one done
    assert [m.value for m in await read(backlogs, waiting, in_flight)] == [2.0, 5.0]


async def test_a_password_from_a_secret_file_and_a_refused_one(
    backlogs: Backlogs, admin: Admin, nats_server: NatsServer, tmp_path: Path
) -> None:
    (tmp_path / "stale-password").write_text("not-the-password\n")
    jobs = await admin.stream("jobs", "workers")
    await admin.publish(jobs, 2)
    good = source(nats_server.url, jobs)
    refused = source(nats_server.url, jobs, credentials="stale-password")
    missing = source(nats_server.url, jobs, credentials="nowhere")
    anonymous = source(nats_server.url, jobs, user="", credentials="")
    members = await read(backlogs, good, refused, missing, anonymous)
    assert [m.value for m in members] == [2.0, None, None, None]
    errors = [m.error or "" for m in members]
    assert errors[1].startswith(
        "metric.credentials='stale-password': the server refused it for metric.user='scaler'"
    )
    assert "Authorization Violation" in errors[1]
    assert str(tmp_path / "nowhere") in errors[2]
    assert "AUTOSCALER_SECRETS__NOWHERE" in errors[2]
    assert errors[3].startswith("metric.credentials: the server wants a user and password")


async def test_a_missing_stream_or_consumer_names_its_label_and_touches_no_other_source(
    backlogs: Backlogs, admin: Admin, nats_server: NatsServer, driver: NatsDriver
) -> None:
    jobs = await admin.stream("jobs", "workers")
    await admin.publish(jobs, 3)
    no_stream = f"test_gone_{uuid.uuid4().hex[:8]}"
    members = await read(
        backlogs,
        source(nats_server.url, no_stream),
        source(nats_server.url, jobs, consumer="no-such-consumer"),
        source(nats_server.url, jobs),
    )
    assert [m.value for m in members] == [None, None, 3.0]
    assert members[0].error == f"metric.stream={no_stream!r}: no such stream"
    assert members[1].error == (
        f"metric.consumer='no-such-consumer': stream {jobs!r} has no such consumer"
    )
    assert len(await connections(nats_server, driver)) == 1  # all three on one connection


async def test_a_server_that_goes_away_is_missing_with_a_reason_then_read_again(
    backlogs: Backlogs, admin: Admin, nats_server: NatsServer, clock: Clock
) -> None:
    jobs = await admin.stream("jobs", "workers")
    await admin.publish(jobs, 3)
    async with relay(urlsplit(nats_server.url).netloc) as path:
        url = path.url.replace("http://", "nats://")
        queue, direct = source(url, jobs), source(nats_server.url, jobs)
        assert [m.value for m in await read(backlogs, queue, direct)] == [3.0, 3.0]

        path.cut()  # the server stops: its connections drop, new ones are refused
        away = await read(backlogs, queue, direct, clock=clock)
        assert [m.value for m in away] == [None, 3.0]  # the other server is not touched
        assert away[0].error is not None and away[0].error.startswith(f"metric.url={url!r}")
        assert away[0].error.endswith("nats: connection closed")  # at once, not at a timeout

        path.resume()  # back, but the backoff holds the next try for a while
        assert (await read(backlogs, queue))[0].error == away[0].error
        await admin.publish(jobs, 1)
        assert [m.value for m in await read(backlogs, queue, clock=clock)] == [4.0]


async def test_connections_are_one_a_server_and_closed_when_no_source_names_it(
    backlogs: Backlogs, admin: Admin, nats_server: NatsServer, driver: NatsDriver
) -> None:
    jobs = await admin.stream("jobs", "workers", "reporters")
    await read(backlogs, source(nats_server.url, jobs), source(nats_server.url, jobs, "reporters"))
    assert len(await connections(nats_server, driver)) == 1
    await backlogs.want([])
    await until(lambda: connections(nats_server, driver), lambda left: not left,
                "the connection was not closed")  # fmt: skip


async def test_shutdown_closes_every_connection_and_leaves_nothing_of_them_running(
    admin: Admin, nats_server: NatsServer, driver: NatsDriver, clock: Clock, tmp_path: Path
) -> None:
    (tmp_path / SECRET).write_text(nats_server.password)
    (tmp_path / "other").write_text(nats_server.password)  # another secret: another connection
    jobs = await admin.stream("jobs", "workers")
    async with running(driver, clock, Secrets(tmp_path)) as reader:
        await read(reader, source(nats_server.url, jobs),
                   source(nats_server.url, jobs, credentials="other"))  # fmt: skip
        assert len(await connections(nats_server, driver)) == 2
    await until(lambda: connections(nats_server, driver), lambda left: not left,
                "the connections were not closed at shutdown")  # fmt: skip
    assert not tasks_of_clients_but(admin.client)  # read loops, pings, flushers: all ended


def tasks_of_clients_but(admin: Nats) -> list[asyncio.Task[object]]:
    """The running tasks of a NATS client (or of one of its subscriptions) other than `admin`."""
    left = []
    for task in asyncio.all_tasks():
        frame = getattr(task.get_coro(), "cr_frame", None)
        owner = frame.f_locals.get("self") if frame is not None else None
        client = getattr(owner, "_conn", owner)
        if isinstance(client, Nats) and client is not admin:
            left.append(task)
    return left


async def test_a_server_without_jetstream_is_missing_naming_the_url(
    backlogs: Backlogs, tmp_path: Path
) -> None:
    async with plain_nats_server(tmp_path) as url:
        members = await read(backlogs, source(url, "JOBS", user="", credentials=""))
    assert members[0].value is None
    assert (
        members[0].error
        == f"metric.url={url!r}: JetStream is not enabled (nothing answers its API)"
    )


async def test_a_tls_url_to_a_server_that_does_not_ask_for_tls_is_refused_unsent(
    backlogs: Backlogs, admin: Admin, nats_server: NatsServer
) -> None:
    jobs = await admin.stream("jobs", "workers")
    url = nats_server.url.replace("nats://", "tls://")
    members = await read(backlogs, source(url, jobs))
    assert members[0].value is None
    assert members[0].error == (
        f"metric.url={url!r}: the server did not ask for TLS: the secret was not sent"
    )


async def test_a_ca_file_that_cannot_be_read_names_metric_ca(
    backlogs: Backlogs, tmp_path: Path
) -> None:
    members = await read(
        backlogs, source("tls://127.0.0.1:4443", "JOBS", ca=str(tmp_path / "no-ca.pem"))
    )
    assert members[0].value is None
    assert members[0].error is not None
    assert members[0].error.startswith(f"metric.ca={str(tmp_path / 'no-ca.pem')!r}: not a CA file")


@contextlib.asynccontextmanager
async def plain_nats_server(where: Path) -> AsyncIterator[str]:
    """A nats-server of the test's own, without JetStream and without users."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        "nats-server", "-a", "127.0.0.1", "-p", str(port), "-l", str(where / "nats.log")
    )
    try:
        for _ in range(300):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                await writer.wait_closed()
                break
            await asyncio.sleep(0.01)
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.terminate()
        await process.wait()


async def connections(nats_server: NatsServer, driver: NatsDriver) -> set[int]:
    """The ids of the server's open connections that are the reader's (by their name)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{nats_server.monitor_url}/connz?limit=4096") as response,
    ):
        connz = await response.json()
    return {c["cid"] for c in connz.get("connections") or [] if c.get("name") == driver.client_name}
