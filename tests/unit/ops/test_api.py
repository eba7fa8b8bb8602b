"""The API's guard, on its real HTTP server and raw requests: a tokenless loopback API answers
only to this machine's names (a web page cannot rebind its domain to it); a token given in bytes
no UTF-8 holds is refused like any wrong token, never a 500."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoscaler.control.history import History
from autoscaler.control.state import Phase, ServiceState
from autoscaler.mqtt.journal import Journal
from autoscaler.ops.api import Api
from autoscaler.ops.metrics import Metrics
from autoscaler.ops.stream import Snapshot


def api(token: str | None = None) -> Api:
    history = History(1.0)
    history.add(ServiceState(project="p", service="web", phase=Phase.HOLDING, replicas=2,
                             containers=("a", "b"), reason="holding", time=1000.0,
                             instance=None, dry_run=False, cpu=40.0))  # fmt: skip
    return Api(
        "127.0.0.1", 0, metrics=Metrics(), unready=lambda: None,
        status=lambda _: {"services": {"p/web": {}}}, snapshot=lambda: Snapshot({}, {}),
        history=lambda name: ("p/web", history) if name in ("p/web", "web") else None,
        journal=Journal(), token=token,
    )  # fmt: skip


@pytest.fixture
async def serving(request: pytest.FixtureRequest) -> AsyncIterator[Api]:
    served = api(getattr(request, "param", None))
    task = asyncio.create_task(served.serve())
    await served.bound.wait()
    try:
        yield served
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def status_of(served: Api, path: str, *headers: bytes) -> int:
    """The status code of a GET of `path` with these raw header lines."""
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    lines = [f"GET {path} HTTP/1.1".encode(), *headers, b"Connection: close", b"", b""]
    writer.write(b"\r\n".join(lines))
    await writer.drain()
    status = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return int(status.split()[1])


async def test_a_tokenless_loopback_api_answers_only_to_this_machines_names(serving: Api) -> None:
    port = serving.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "127.0.0.1",
                 f"app.localhost:{port}"):  # fmt: skip
        assert await status_of(serving, "/status", b"Host: " + host.encode()) == 200, host
    # A page of evil.example whose name now resolves to 127.0.0.1 (DNS rebinding).
    for host in (f"evil.example:{port}", "evil.example", "localhost.evil.example"):
        assert await status_of(serving, "/status", b"Host: " + host.encode()) == 421, host
        assert await status_of(serving, "/metrics", b"Host: " + host.encode()) == 421, host
    # Health answers whatever the name: it tells nothing, and a probe may use any.
    assert await status_of(serving, "/healthz", b"Host: evil.example") == 200


@pytest.mark.parametrize("serving", ["s3cret"], indirect=True)
async def test_a_token_of_bytes_no_utf8_holds_is_refused_not_a_server_error(serving: Api) -> None:
    host = b"Host: 127.0.0.1"
    assert await status_of(serving, "/status", host, b"Authorization: Bearer \xff\xfe") == 401
    assert await status_of(serving, "/status", host, b"Authorization: Bearer s3cret") == 200
    assert await status_of(serving, "/status?token=%ff%fe", host) == 401
    # With a token the API may be reached by any name: the token is what guards it.
    evil = b"Host: evil.example"
    assert await status_of(serving, "/status", evil, b"Authorization: Bearer s3cret") == 200


@pytest.mark.parametrize("serving", ["s3cret"], indirect=True)
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    header=st.one_of(st.binary(max_size=64), st.binary(max_size=8).map(b"Bearer ".__add__)),
    host=st.binary(max_size=32),
)
async def test_whatever_a_request_carries_the_guard_refuses_it_and_never_fails(
    serving: Api, header: bytes, host: bytes
) -> None:
    lines = [b"Host: " + host, b"Authorization: " + header]
    if any(b"\r" in line or b"\n" in line for line in lines):
        return  # another request's lines: not one request's header
    status = await status_of(serving, "/status", *lines)
    assert status in (401, 400), (header, host, status)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    path=st.sampled_from(["/history", "/status", "/events?x=", "/metrics", "/nowhere"]),
    query=st.one_of(
        st.text(max_size=40),
        st.sampled_from(["nan", "inf", "-inf", "1e400", "9" * 400, "%ff%fe", "%00", "web"]),
    ),
)
async def test_whatever_a_request_asks_the_api_answers_it_and_never_fails(
    serving: Api, path: str, query: str
) -> None:
    encoded = quote(query, safe="%")
    for target in (f"{path}?service=p/web&since={encoded}", f"{path}?service={encoded}"):
        if path.startswith("/events"):
            continue  # a stream: answered, and open until the client goes
        status = await status_of(serving, target, b"Host: 127.0.0.1")
        assert status in (200, 400, 404), (target, status)


async def test_status_gives_as_many_decisions_as_asked_and_refuses_a_count_that_is_none() -> None:
    asked: list[int | None] = []
    served = api()
    served._status = lambda kept: asked.append(kept) or {"services": {}}  # type: ignore[method-assign, func-returns-value]
    task = asyncio.create_task(served.serve())
    await served.bound.wait()
    try:
        local = b"Host: 127.0.0.1"
        assert await status_of(served, "/status?decisions=0", local) == 200
        assert await status_of(served, "/status", local) == 200
        assert await status_of(served, "/status?decisions=some", local) == 400
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert asked == [0, None]
