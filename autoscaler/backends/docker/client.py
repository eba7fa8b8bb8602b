"""The Docker Engine connection: one aiodocker client, and the boundary where its errors
become ours.

The address is `Settings.docker_host` (DOCKER_HOST): `unix:///path/docker.sock` or
`tcp://host:2376`; TLS follows Docker's own DOCKER_TLS_VERIFY and DOCKER_CERT_PATH.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiodocker
import aiohttp

from autoscaler.errors import EngineError

GRANTS_HINT = (
    "a socket proxy must grant CONTAINERS, EVENTS, INFO, VERSION and POST, and NETWORKS for "
    "POST /networks/{id}/connect below API 1.44; see docs/security.md"
)

# What a lost or refused engine connection raises through aiodocker.
LIBRARY_ERRORS = (aiodocker.DockerError, aiohttp.ClientError, OSError, TimeoutError)


def unanswered(exc: BaseException) -> bool:
    """Whether a try failed for want of an engine to answer it (its socket gone or refusing, as
    while it restarts): aiodocker's 900, or the connection's own error; of a group of failures
    (the tasks of one try), whether every one was."""
    if isinstance(exc, BaseExceptionGroup):
        return all(unanswered(e) for e in exc.exceptions)
    if isinstance(exc, aiodocker.DockerError):
        return exc.status == 900
    return isinstance(
        exc, aiohttp.ClientConnectorError | ConnectionRefusedError | FileNotFoundError
    )


@contextmanager
def engine_errors(doing: str, service: str | None = None) -> Iterator[None]:
    """Re-raise library errors met while `doing` something as EngineError, keeping the cause."""
    try:
        yield
    except aiodocker.DockerError as exc:
        # aiodocker's 900 is no answer at all, not an HTTP status.
        status = f"{exc.status} " if exc.status < 600 else ""
        message = f"{doing}: {status}{exc.message}".rstrip()
        if exc.status in (401, 403):
            # Most often a socket proxy in front of the engine that was not granted this call.
            message += f" (refused: {GRANTS_HINT})"
        raise EngineError(message, service=service, status=exc.status) from exc
    except TimeoutError as exc:
        raise EngineError(f"{doing}: the engine did not answer in time", service=service) from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise EngineError(f"{doing}: {exc or type(exc).__name__}", service=service) from exc


def client(
    docker_host: str | None, timeout: float = 30.0, api_version: str | None = None
) -> aiodocker.Docker:
    """A client whose every call is bounded by `timeout` seconds, but for those that last by
    nature (the event stream, a graceful stop: aiodocker leaves them unbounded, and a stop is
    bounded by the caller, by its grace period). It speaks the engine's own API version, or
    `api_version` (`1.41`) where one is pinned."""
    version = f"v{api_version}" if api_version else "auto"
    try:
        return aiodocker.Docker(
            url=docker_host, timeout=aiohttp.ClientTimeout(total=timeout), api_version=version
        )
    except (ValueError, aiodocker.DockerError) as exc:
        raise EngineError(f"cannot use engine address {docker_host!r}: {exc}") from exc


async def ping(docker: aiodocker.Docker) -> dict[str, Any]:
    """The engine's version, or an EngineError naming the address that did not answer."""
    with engine_errors(f"engine at {docker.docker_host} did not answer"):
        version: dict[str, Any] = await docker.version()
    return version


def label_filter(*labels: str, **more: list[str]) -> str:
    """The JSON `filters` parameter of the list and events endpoints."""
    return json.dumps({"label": list(labels), **more})
