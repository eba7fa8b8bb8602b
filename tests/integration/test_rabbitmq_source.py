"""The RabbitMQ queue source against a real rabbitmq-server (scripts/queues.sh): a queue's ready
messages as they are published and consumed, over AMQP and over the management API; the
messages a consumer holds unacknowledged; a password from a secret; each way a read fails is a
missing value naming the label to look at, touching no other source; a server that goes away
and comes back; one connection a server, closed at shutdown. Rounds are `want` calls, on a
clock the test moves past the reconnect backoff. The management API's counts lag behind the
queue by its statistics interval: those tests wait until the count is the one expected."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from base64 import b64encode
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest
from aio_pika.abc import AbstractChannel, AbstractQueue

from autoscaler.sources.base import Member
from autoscaler.sources.rabbitmq import Backlogs, Options, RabbitDriver
from autoscaler.sources.servers import Secrets
from tests.integration.queues import Clock, queue_server, read, running, until
from tests.integration.relay import relay

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SECRET = "rabbitmq-password"
STATISTICS = 20.0
"""Seconds the management API may take to show a change: its statistics come every 5 s."""


@dataclass(frozen=True)
class RabbitServer:
    host: str
    port: int
    management: str
    """The management API's base URL."""
    user: str
    password: str

    @property
    def amqp(self) -> str:
        return f"amqp://{self.host}:{self.port}/"


@pytest.fixture(scope="session")
def rabbitmq_server() -> RabbitServer:
    """scripts/queues.sh's rabbitmq-server: its AMQP port, its management API, user `scaler`."""
    server = queue_server("rabbitmq")
    return RabbitServer(server["HOST"], int(server["PORT"]), server["MANAGEMENT_URL"],
                        server["USER"], server.password)  # fmt: skip


@dataclass
class Admin:
    """The test's own channel, to fill and drain queues with; the queues it made go with it."""

    channel: AbstractChannel
    made: list[AbstractQueue]

    async def queue(self, what: str) -> AbstractQueue:
        """A queue of this test alone (tests run side by side), deleted after it."""
        made = await self.channel.declare_queue(f"test.{what}.{uuid.uuid4().hex[:8]}")
        self.made.append(made)
        return made

    async def publish(self, queue: AbstractQueue, count: int) -> None:
        for n in range(count):  # each confirmed: in the queue when this returns
            await self.channel.default_exchange.publish(aio_pika.Message(b"%d" % n), queue.name)


@pytest.fixture
async def admin(rabbitmq_server: RabbitServer) -> AsyncIterator[Admin]:
    connection = await aio_pika.connect(host=rabbitmq_server.host, port=rabbitmq_server.port,
                                        login=rabbitmq_server.user,
                                        password=rabbitmq_server.password)  # fmt: skip
    try:
        made = Admin(await connection.channel(), [])
        yield made
        for queue in made.made:
            await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def secrets(tmp_path: Path, rabbitmq_server: RabbitServer) -> Secrets:
    (tmp_path / SECRET).write_text(rabbitmq_server.password + "\n")
    return Secrets(tmp_path)


@pytest.fixture
def connection_name() -> str:
    """The reader's connections' name, this test's alone, to find them in the server's list."""
    return f"autoscaler-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def backlogs(clock: Clock, secrets: Secrets, connection_name: str) -> AsyncIterator[Backlogs]:
    async with running(RabbitDriver(name=connection_name), clock, secrets) as reader:
        yield reader


def source(url: str, queue: str, **labels: str) -> Options:
    """A source as the user `scaler` with its secret, unless the labels say otherwise."""
    given = {"user": "scaler", "credentials": SECRET} | labels
    return Options.model_validate(
        {"metric.url": url, "metric.queue": queue}
        | {f"metric.{k}": v for k, v in given.items() if v}
    )


async def values(
    backlogs: Backlogs, *wanted: Options, clock: Clock | None = None
) -> list[float | None]:
    return [member.value for member in await read(backlogs, *wanted, clock=clock)]


async def settles(
    backlogs: Backlogs, clock: Clock, *wanted: Options, to: list[float | None]
) -> None:
    """Rounds until the management API's statistics show `to` (a round that timed out tried
    again: the clock passes the backoff)."""
    seen: list[Member] = []
    for _ in range(int(STATISTICS / 0.1)):
        seen = await read(backlogs, *wanted, clock=clock)
        if [m.value for m in seen] == to:
            return
        await asyncio.sleep(0.1)  # the next round
    pytest.fail(f"the management API showed {seen}, never {to}")


async def test_the_ready_count_follows_publishes_and_consumes_over_amqp(
    backlogs: Backlogs, admin: Admin, rabbitmq_server: RabbitServer
) -> None:
    jobs = await admin.queue("jobs")
    queue = source(rabbitmq_server.amqp, jobs.name)
    assert await values(backlogs, queue) == [0.0]
    await admin.publish(jobs, 5)
    assert await values(backlogs, queue) == [5.0]  # the queue's own count: no lag
    for _ in range(2):
        await (await jobs.get()).ack()
    assert await values(backlogs, queue) == [3.0]


async def test_the_ready_count_follows_publishes_and_consumes_over_http(
    backlogs: Backlogs, admin: Admin, rabbitmq_server: RabbitServer, clock: Clock
) -> None:
    jobs = await admin.queue("jobs")
    queue = source(rabbitmq_server.management, jobs.name)
    await admin.publish(jobs, 4)
    await settles(backlogs, clock, queue, to=[4.0])
    await (await jobs.get()).ack()
    await settles(backlogs, clock, queue, to=[3.0])


async def test_ready_and_unacked_counts_the_jobs_a_consumer_holds(
    backlogs: Backlogs, admin: Admin, rabbitmq_server: RabbitServer, clock: Clock
) -> None:
    jobs = await admin.queue("jobs")
    url = rabbitmq_server.management
    ready, both = source(url, jobs.name), source(url, jobs.name, count="ready+unacked")
    rate = source(url, jobs.name, count="publish-rate")
    await admin.publish(jobs, 3)
    held = await jobs.get()  # delivered, not acknowledged: a worker's job in flight
    await settles(backlogs, clock, ready, both, to=[2.0, 3.0])
    (published,) = await values(backlogs, rate, clock=clock)
    assert published is not None and published >= 0.0  # messages a second
    await held.ack()
    await settles(backlogs, clock, ready, both, to=[2.0, 2.0])


async def test_a_password_from_a_secret_file_and_a_refused_one(
    backlogs: Backlogs, admin: Admin, rabbitmq_server: RabbitServer, tmp_path: Path
) -> None:
    (tmp_path / "stale-password").write_text("not-the-password\n")
    jobs = await admin.queue("jobs")
    await admin.publish(jobs, 2)
    for url in (rabbitmq_server.amqp, rabbitmq_server.management):
        good = source(url, jobs.name)
        refused = source(url, jobs.name, credentials="stale-password")
        anonymous = source(url, jobs.name, user="", credentials="")
        members = await read(backlogs, good, refused, anonymous)
        # In: read, or (a queue the management API has no statistics of yet) not yet counted.
        assert members[0].error is None or members[0].error.endswith("for it yet"), url
        assert [m.value for m in members[1:]] == [None, None]
        assert (members[1].error or "").startswith(
            "metric.credentials='stale-password': the server refused it for metric.user='scaler'"
        ), url
        assert (members[2].error or "").startswith(
            "metric.credentials: the server wants a password and none is named"
        ), url


async def test_a_missing_queue_names_it_and_the_others_on_its_connection_still_read(
    backlogs: Backlogs, admin: Admin, rabbitmq_server: RabbitServer
) -> None:
    jobs, mail = await admin.queue("jobs"), await admin.queue("mail")
    await admin.publish(jobs, 2)
    await admin.publish(mail, 1)
    url = rabbitmq_server.amqp
    # Each missing queue closes the channel it was declared on; the next queue is read all
    # the same, this round and the next.
    wanted = [source(url, "no-such-queue"), source(url, jobs.name),
              source(url, "nor-this-one"), source(url, mail.name)]  # fmt: skip
    for _ in range(2):
        members = await read(backlogs, *wanted)
        assert [m.value for m in members] == [None, 2.0, None, 1.0]
        assert members[0].error == "metric.queue='no-such-queue': no such queue in vhost '/'"
        assert members[2].error == "metric.queue='nor-this-one': no such queue in vhost '/'"


async def test_a_missing_queue_or_vhost_over_http_names_its_label(
    backlogs: Backlogs, admin: Admin, rabbitmq_server: RabbitServer
) -> None:
    jobs = await admin.queue("jobs")
    url = rabbitmq_server.management
    members = await read(backlogs, source(url, "no-such-queue"),
                         source(url, jobs.name, vhost="no-such-vhost"), source(url, jobs.name))  # fmt: skip
    assert [m.error for m in members[:2]] == [
        "metric.queue='no-such-queue': no such queue in vhost '/'",
        "metric.vhost='no-such-vhost': no such vhost",
    ]
    assert members[2].error is None or "no messages_ready" in members[2].error  # a new queue


async def test_a_vhost_that_does_not_exist_names_the_url_over_amqp(
    backlogs: Backlogs, rabbitmq_server: RabbitServer
) -> None:
    url = f"amqp://{rabbitmq_server.host}:{rabbitmq_server.port}/no-such-vhost"
    (member,) = await read(backlogs, source(url, "jobs"))
    assert member.value is None
    assert (member.error or "").startswith(
        f"metric.url={url!r}: the server refused the vhost 'no-such-vhost'"
    )


@contextlib.asynccontextmanager
async def user(rabbitmq_server: RabbitServer, name: str, tags: str) -> AsyncIterator[None]:
    """A user of the test's own, with the password `pw` and no permissions, deleted after it."""
    basic = b64encode(f"{rabbitmq_server.user}:{rabbitmq_server.password}".encode()).decode()
    users = f"{rabbitmq_server.management}/api/users/{name}"
    async with aiohttp.ClientSession(headers={"Authorization": f"Basic {basic}"}) as http:
        async with http.put(users, json={"password": "pw", "tags": tags}) as made:
            assert made.status in (201, 204)
        try:
            yield
        finally:
            async with http.delete(users):
                pass


async def test_a_user_without_permissions_or_management_tag_names_its_label(
    backlogs: Backlogs, admin: Admin, rabbitmq_server: RabbitServer, tmp_path: Path
) -> None:
    (tmp_path / "pw").write_text("pw")
    jobs = await admin.queue("jobs")
    lone, plain = f"lone-{uuid.uuid4().hex[:8]}", f"plain-{uuid.uuid4().hex[:8]}"
    async with user(rabbitmq_server, lone, "management"), user(rabbitmq_server, plain, ""):
        members = await read(
            backlogs,
            source(rabbitmq_server.amqp, jobs.name, user=lone, credentials="pw"),
            source(rabbitmq_server.management, jobs.name, user=lone, credentials="pw"),
            source(rabbitmq_server.management, jobs.name, user=plain, credentials="pw"),
        )
    assert [m.value for m in members] == [None, None, None]
    errors = [m.error or "" for m in members]
    assert errors[0].startswith(
        f"metric.url={rabbitmq_server.amqp!r}: the server refused the vhost '/'"
    )
    assert errors[1].startswith(f"metric.vhost='/': metric.user={lone!r} has no permissions on it")
    assert errors[2].startswith(f"metric.user={plain!r}: the management API refused it")


async def test_a_server_that_goes_away_is_missing_with_a_reason_then_read_again(
    backlogs: Backlogs, admin: Admin, rabbitmq_server: RabbitServer, clock: Clock
) -> None:
    jobs = await admin.queue("jobs")
    await admin.publish(jobs, 3)
    async with relay(f"{rabbitmq_server.host}:{rabbitmq_server.port}") as path:
        url = path.url.replace("http://", "amqp://") + "/"
        queue, direct = source(url, jobs.name), source(rabbitmq_server.amqp, jobs.name)
        assert await values(backlogs, queue, direct) == [3.0, 3.0]

        path.cut()  # the server stops: its connections drop, new ones are refused
        away = await read(backlogs, queue, direct, clock=clock)
        assert [m.value for m in away] == [None, 3.0]  # the other server is not touched
        assert (away[0].error or "").startswith(f"metric.url={url!r}: ")

        path.resume()  # back, but the backoff holds the next try for a while
        assert (await read(backlogs, queue))[0].error == away[0].error
        await admin.publish(jobs, 1)
        assert [m.value for m in await read(backlogs, queue, clock=clock)] == [4.0]


async def connections(rabbitmq_server: RabbitServer, name: str) -> int:
    """The server's connections named `name` (the management API lists one within a second)."""
    basic = b64encode(f"{rabbitmq_server.user}:{rabbitmq_server.password}".encode()).decode()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{rabbitmq_server.management}/api/connections",
                            headers={"Authorization": f"Basic {basic}"}) as response:  # fmt: skip
            listed: list[dict[str, Any]] = await response.json()
    return sum(c.get("client_properties", {}).get("connection_name") == name for c in listed)


async def until_connections(rabbitmq_server: RabbitServer, name: str, count: int) -> None:
    """Until the management API lists them: it may take a second or more."""
    await until(lambda: connections(rabbitmq_server, name), lambda listed: listed == count,
                f"the server never listed {count} connections named {name}",
                seconds=10.0, pause=0.05)  # fmt: skip


async def test_one_connection_a_server_closed_when_no_source_names_it(
    backlogs: Backlogs, admin: Admin, rabbitmq_server: RabbitServer, connection_name: str
) -> None:
    jobs, mail = await admin.queue("jobs"), await admin.queue("mail")
    wanted = [source(rabbitmq_server.amqp, jobs.name), source(rabbitmq_server.amqp, mail.name)]
    assert await values(backlogs, *wanted) == [0.0, 0.0]
    await until_connections(rabbitmq_server, connection_name, 1)
    assert await values(backlogs, *wanted) == [0.0, 0.0]
    assert await connections(rabbitmq_server, connection_name) == 1  # the same one, still
    await backlogs.want([])
    await until_connections(rabbitmq_server, connection_name, 0)


async def test_shutdown_closes_every_connection(
    clock: Clock, secrets: Secrets, admin: Admin, rabbitmq_server: RabbitServer
) -> None:
    jobs = await admin.queue("jobs")
    name = f"autoscaler-test-{uuid.uuid4().hex[:8]}"
    http = rabbitmq_server.management
    wanted = [source(rabbitmq_server.amqp, jobs.name), source(http, jobs.name)]
    async with running(RabbitDriver(name=name), clock, secrets) as reader:
        await read(reader, *wanted)
        await until_connections(rabbitmq_server, name, 1)
    await until_connections(rabbitmq_server, name, 0)
