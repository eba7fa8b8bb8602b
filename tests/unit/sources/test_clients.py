"""The queue sources' client libraries are loaded once a service names their kind, not at start:
together they are 13 MB resident that an instance without a queue source never needs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from autoscaler.sources.registry import KINDS

CLIENTS = {"redis": "redis", "rabbitmq": "aiormq", "nats": "nats", "postgresql": "asyncpg"}
"""The library each queue kind's driver loads to tell a failing server (RabbitMQ's AMQP
client, aio_pika on top of aiormq, loads once it connects)."""
LIBRARIES = {*CLIENTS.values(), "aio_pika"}


def _loaded_after(code: str) -> set[str]:
    """The client libraries a fresh interpreter holds after running `code`."""
    script = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split()  # fmt: skip
    return {library for library in LIBRARIES if library in out}


def test_starting_the_service_loads_no_queue_client() -> None:
    # The app as `autoscaler run` makes it: every kind's reader is made at start.
    start = (
        "import asyncio\n"
        "from autoscaler.app import App\n"
        "from autoscaler.settings import Settings\n"
        "async def start():\n"
        "    app = App(Settings(docker_host='unix:///nonexistent.sock'))\n"
        "    assert len(app.signals.readers) >= len(" + repr(sorted(CLIENTS)) + ")\n"
        "    await app.docker.close()\n"
        "asyncio.run(start())"
    )
    assert _loaded_after(start) == set()


@pytest.mark.parametrize("kind", sorted(CLIENTS))
def test_a_kind_loads_its_client_alone_once_it_is_used(kind: str) -> None:
    code = (
        "from autoscaler.settings import MqttSettings\n"
        "from autoscaler.sources.base import Needs\n"
        "from autoscaler.sources.registry import KINDS\n"
        f"reader = KINDS[{kind!r}].reader(Needs(MqttSettings(), interval=2.0))\n"
        "reader.driver.expected"
    )
    assert _loaded_after(code) == {CLIENTS[kind]}


def test_every_queue_kind_is_checked_here() -> None:
    assert {k for k in KINDS if k not in ("mqtt", "prometheus", "scrape")} == set(CLIENTS)
