"""The broker as deploy/mqtt configures it, run for real (Debian's mosquitto with the shipped
mosquitto.conf and acl, the passwords deploy/secrets.sh makes): nobody connects without a
password, agents publish samples and nothing else, viewers only read, and the autoscaler reads
the samples and publishes its own topics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiomqtt
import pytest

from tests.integration.conftest import ROOT


@pytest.fixture(scope="module")
def secured() -> Iterator[tuple[int, Path]]:
    """(port, the secrets folder) of a mosquitto with deploy/mqtt's config, on loopback."""
    folder = Path(tempfile.mkdtemp(prefix="autoscaler-broker-"))
    secrets = folder / "secrets"
    # Two nodes whose agents have users of their own (deploy/agents.sh), beside the shared one.
    subprocess.run(["sh", str(ROOT / "deploy" / "secrets.sh"), str(secrets)], check=True,
                   capture_output=True, env=os.environ | {"NODES": "n1 n2"})  # fmt: skip
    # mosquitto reads its files as the user it drops to; in a container the secret is mounted
    # on its own, here it is read through folders that are their owner's alone (pytest's,
    # mkdtemp's, secrets.sh's): open them to it.
    for opened in (folder, secrets):
        opened.chmod(0o755)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The shipped file, but for its paths inside the container and its port.
    conf = (ROOT / "deploy" / "mqtt" / "mosquitto.conf").read_text()
    conf = conf.replace("listener 1883", f"listener {port} 127.0.0.1")
    conf = conf.replace("/run/secrets/", f"{secrets}/")
    conf = conf.replace("/mosquitto/config/acl", str(ROOT / "deploy" / "mqtt" / "acl"))
    (folder / "mosquitto.conf").write_text(conf)
    log = folder / "mosquitto.log"
    with log.open("wb") as out:
        broker = subprocess.Popen(["mosquitto", "-c", str(folder / "mosquitto.conf")], stderr=out)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            assert broker.poll() is None, log.read_text()
            time.sleep(0.05)
        yield port, secrets
    finally:
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(folder)


def connect(port: int, secrets: Path, user: str | None) -> aiomqtt.Client:
    password = (secrets / f"mqtt-{user}-password").read_text() if user else None
    return aiomqtt.Client("127.0.0.1", port, username=user, password=password,
                          identifier=f"{user}-{uuid.uuid4().hex[:6]}")  # fmt: skip


@contextlib.asynccontextmanager
async def reading(port: int, secrets: Path, topic: str) -> AsyncIterator[asyncio.Queue[str]]:
    """The topics of the messages the autoscaler's user receives on `topic`, as they arrive."""
    arrived: asyncio.Queue[str] = asyncio.Queue()

    async def collect(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            await arrived.put(str(message.topic))

    async with connect(port, secrets, "autoscaler") as client, asyncio.TaskGroup() as tg:
        await client.subscribe(topic, qos=1)
        task = tg.create_task(collect(client))
        yield arrived
        task.cancel()


async def test_no_client_connects_without_a_password(secured: tuple[int, Path]) -> None:
    port, secrets = secured
    with pytest.raises(aiomqtt.MqttError):
        async with connect(port, secrets, None):
            pass
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", port, username="agent", password="guess"):
            pass


async def test_an_agent_publishes_samples_and_nothing_else(secured: tuple[int, Path]) -> None:
    port, secrets = secured
    async with reading(port, secrets, "autoscaler/#") as arrived:
        async with connect(port, secrets, "agent") as agent:
            # Refused by the ACL (QoS 1: the broker answers, and drops it), then one allowed:
            # when the allowed one arrives, a forbidden one delivered would have come first.
            await agent.publish("autoscaler/status", b'{"status": "offline"}', qos=1)
            await agent.publish("autoscaler/shop/web/state", b'{"replicas": 10}', qos=1)
            await agent.publish("autoscaler/agents/n1/samples", b"{}", qos=1)
        async with asyncio.timeout(10):
            assert await arrived.get() == "autoscaler/agents/n1/samples"
        assert arrived.empty()


async def test_an_agent_with_a_user_of_its_own_publishes_its_own_nodes_samples_alone(
    secured: tuple[int, Path],
) -> None:
    port, secrets = secured
    password = (secrets / "mqtt-agent-n1-password").read_text()
    async with reading(port, secrets, "autoscaler/#") as arrived:
        async with aiomqtt.Client("127.0.0.1", port, username="n1", password=password) as agent:
            await agent.publish("autoscaler/agents/n2/samples", b"{}", qos=1)  # another node's
            await agent.publish("autoscaler/status", b'{"status": "offline"}', qos=1)
            await agent.publish("autoscaler/agents/n1/samples", b"{}", qos=1)
        async with asyncio.timeout(10):
            assert await arrived.get() == "autoscaler/agents/n1/samples"
        assert arrived.empty()
    # Its password is its own: not the shared agent's, not another node's.
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", port, username="n2", password=password):
            pass


async def test_a_viewer_reads_the_autoscalers_topics_and_publishes_nothing(
    secured: tuple[int, Path],
) -> None:
    port, secrets = secured
    async with connect(port, secrets, "viewer") as viewer:
        await viewer.subscribe("autoscaler/#", qos=1)
        async with connect(port, secrets, "autoscaler") as autoscaler:
            await autoscaler.publish("autoscaler/agents/n1/samples", b"{}", qos=1)  # as a viewer
            await viewer.publish("autoscaler/shop/web/state", b'{"replicas": 10}', qos=1)
            await autoscaler.publish("autoscaler/shop/web/events", b"{}", qos=1)
        seen = []
        async with asyncio.timeout(10):
            async for message in viewer.messages:
                seen.append(str(message.topic))
                if message.topic.matches("autoscaler/shop/web/events"):
                    break
        assert seen == ["autoscaler/agents/n1/samples", "autoscaler/shop/web/events"]
