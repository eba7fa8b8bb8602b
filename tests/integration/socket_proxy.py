"""deploy/socket-proxy as the tests run it: Debian's HAProxy (autoscaler-test/haproxy, built
offline by scripts/web-images.sh) in a container of the engine, with the shipped config, holding
the engine's socket and answering on a unix socket in a folder of the test's, so that an
autoscaler of the test's own process reaches the engine through it alone."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "socket-proxy" / "haproxy.cfg"
IMAGE = "autoscaler-test/haproxy:latest"
BROKER_IMAGE = "autoscaler-test/mosquitto:latest"


def overlay_env(docker_host: str, folder: Path) -> dict[str, str]:
    """What deploy/compose.autoscaler.yaml is given in the tests and benchmarks: the proxy's and
    the broker's images made offline, deploy/ by its path (the stack's files are copies
    elsewhere), and secrets made by deploy/secrets.sh in `folder`."""
    env = {**os.environ, "DOCKER_HOST": docker_host}
    subprocess.run(["bash", str(ROOT / "scripts" / "broker-image.sh"), BROKER_IMAGE],
                   check=True, env=env)  # fmt: skip
    subprocess.run(["sh", str(ROOT / "deploy" / "secrets.sh"), str(folder)], check=True,
                   capture_output=True)  # fmt: skip
    return {"SOCKET_PROXY_IMAGE": IMAGE, "BROKER_IMAGE": BROKER_IMAGE,
            "AUTOSCALER_DEPLOY": str(ROOT / "deploy"), "AUTOSCALER_SECRETS": str(folder)}  # fmt: skip


def _answers(path: Path) -> bool:
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(1)
        sock.connect(str(path))
        sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
        return b" 200 " in sock.recv(64).split(b"\r\n", 1)[0]
    return False


@contextlib.contextmanager
def socket_proxy(
    docker_host: str,
    folder: Path,
    config: str | None = None,
    *,
    engine: str | None = None,
    swarm: bool = False,
    write: bool = True,
) -> Iterator[str]:
    """The proxy with `config` (the shipped one by default), as deploy/compose.autoscaler.yaml
    runs it (root without capabilities, a read-only file system), in a container of the engine
    at `docker_host`, in front of that engine or of `engine` (another one's DOCKER_HOST, a node
    of the swarm); `swarm`: with the Swarm grants (SWARM=1); `write=False`: reading only
    (WRITE=0, as a node's agent is given it). Yields its DOCKER_HOST."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "haproxy.cfg").write_text(config if config is not None else CONFIG.read_text())
    name = f"autoscaler-test-socket-proxy-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DOCKER_HOST": docker_host}
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "--network", "none", "--user", "0",
         "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true", "--read-only",
         # The socket stays root's (this test process's): no capability to give it away.
         "-e", "LISTEN=/run/proxy/docker.sock", "-e", "LISTEN_UID=0", "-e", f"SWARM={int(swarm)}",
         "-e", f"WRITE={int(write)}",
         "-v", f"{(engine or docker_host).removeprefix('unix://')}:/var/run/docker.sock",
         "-v", f"{folder / 'haproxy.cfg'}:/usr/local/etc/haproxy/haproxy.cfg:ro",
         "-v", f"{folder}:/run/proxy", IMAGE],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not _answers(folder / "docker.sock"):
            if time.monotonic() > deadline:
                logs = subprocess.run(["docker", "logs", name], env=env, capture_output=True)
                raise AssertionError(f"the socket proxy did not answer: {logs.stderr!r}")
            time.sleep(0.1)
        yield f"unix://{folder / 'docker.sock'}"
    finally:
        subprocess.run(["docker", "rm", "-f", name], env=env, capture_output=True)
