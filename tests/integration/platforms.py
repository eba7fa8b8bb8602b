"""The platforms the tests run on, as scripts/test.sh starts them (scripts/engine.sh,
scripts/platform.sh): each an engine and the Compose a user of it types.

    current   Docker Engine 26.1 (API 1.45) and Compose v2.26, with the default bridge: where
              every test runs
    legacy    Docker Engine 20.10 (API 1.41) and docker-compose 1.29: the paths below API 1.44
              (networks connected one by one) and Compose v1's names and rules
    bare      Docker Engine 20.10 without the default bridge (`"bridge": "none"`), where a
              `docker run` container reports an endpoint the engine never joined

A test runs on another platform than `current` by asking for it:
`@pytest.mark.parametrize("platform", ["current", "legacy"], indirect=True)` (conftest's
`ON_BOTH`).
"""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENGINES = {"current": "engine", "legacy": "legacy", "bare": "bare"}
"""A platform's engine, by the name scripts/engine.sh knows it."""


@dataclass(frozen=True)
class Platform:
    name: str
    docker_host: str
    compose: tuple[str, ...]
    """The command a user types for Compose: `docker compose` (v2) or `docker-compose` (1.29)."""

    @property
    def compose_v1(self) -> bool:
        return self.name == "legacy"

    def container(self, project: str, service: str, number: int = 1) -> str:
        """The name Compose gives a service's container: `shop-web-1` (v2), `shop_web_1` (1.29)."""
        sep = "_" if self.compose_v1 else "-"
        return f"{project}{sep}{service}{sep}{number}"

    def network(self, project: str, network: str) -> str:
        """A project's network, as both Compose generations name it: `shop_back`."""
        return f"{project}_{network}"

    def netns(self) -> str:
        """The engine's network namespace now (an engine restarted by a test has a new one):
        where its containers' addresses answer."""
        return _script("engine.sh", "netns", ENGINES[self.name]).strip()

    async def run_compose(
        self,
        project: str,
        files: Sequence[Path],
        *args: str,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> str:
        """`docker compose -p PROJECT -f FILE... ARGS...` on this platform's engine: its output
        (stdout and stderr), asserted to succeed unless `check` is false."""
        chosen = [arg for path in files for arg in ("-f", str(path))]
        process = await asyncio.create_subprocess_exec(
            *self.compose, "-p", project, *chosen, *args,
            env={**os.environ, "DOCKER_HOST": self.docker_host, **(env or {})},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await process.communicate()
        if check:
            assert process.returncode == 0, f"{' '.join(args)}: {out.decode()}"
        return out.decode()


def platform_named(name: str) -> Platform:
    """The platform `name`, started if it does not answer (and left running, as the engine is)."""
    env: Mapping[str, str] = os.environ
    host = {
        "current": env.get("DOCKER_HOST"),
        "legacy": env.get("AUTOSCALER_TEST_LEGACY_HOST"),
        "bare": env.get("AUTOSCALER_TEST_BARE_HOST"),
    }[name]
    if host is None:
        _script("engine.sh", "start", ENGINES[name])
        host = _script("engine.sh", "env", ENGINES[name]).strip().split("=", 1)[1]
    if name == "legacy":
        compose = env.get("AUTOSCALER_TEST_LEGACY_COMPOSE") or str(
            Path(_script("platform.sh", "bin", "legacy").strip()) / "docker-compose"
        )
        return Platform(name, host, (compose,))
    # scripts/test.sh says `docker compose` (the plugin, through DOCKER_CONFIG); run alone, the
    # same binary is called by its own name.
    compose = env.get("AUTOSCALER_TEST_COMPOSE") or str(
        Path(_script("platform.sh", "bin", "current").strip()) / "docker-compose"
    )
    return Platform(name, host, tuple(shlex.split(compose)))


def _script(script: str, *args: str) -> str:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / script), *args], check=True, capture_output=True, text=True
    ).stdout
