"""An operator's terminal against the real service on the real engine: `autoscaler status` shows
each service's real counts, `--watch` and `events --follow` show what happens as it happens and
end cleanly on Ctrl-C, and `hold`, `pause` and `resume` reach the service, each with who and why.
Each command runs as the operator runs it: a process of its own, told the API by AUTOSCALER_API__*.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiodocker
import pytest

from autoscaler.backends.compose.marker import marker_name
from autoscaler.labels import ServiceKey
from tests.integration.conftest import Mqtt, events, reaches
from tests.integration.test_scaling import WEB


@pytest.fixture
async def records(docker: aiodocker.Docker, project: str) -> AsyncIterator[None]:
    """The control record a test's command leaves on the engine, removed after it."""
    yield
    record = docker.containers.container(marker_name(ServiceKey(project, "web"), "control"))
    try:
        await record.delete(force=True)
    except aiodocker.DockerError:
        pass


def env_for(port: int) -> dict[str, str]:
    return {**os.environ, "AUTOSCALER_API__PORT": str(port)}


async def cli(port: int, *argv: str) -> tuple[int, str, str]:
    """`autoscaler ARGV` as a process of its own: its exit code, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "autoscaler", *argv, env=env_for(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def line_of(table: str, name: str) -> list[str]:
    """The cells of `name`'s line of the status table."""
    found = [line for line in table.splitlines() if line.startswith(f"{name} ")]
    assert len(found) == 1, table
    return re.split(r"\s{2,}", found[0].strip())


class Follower:
    """A long-running command (`status --watch`, `events --follow`): its lines as they come.
    Its output is read all the time, as a terminal reads it, whether a test waits for a line or
    not: a command whose pipe fills blocks in its write, and could not end on Ctrl-C."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._unread: asyncio.Queue[str | None] = asyncio.Queue()

    async def read(self) -> None:
        assert self.process.stdout is not None
        while raw := await self.process.stdout.readline():
            self._unread.put_nowait(raw.decode().rstrip("\n"))
        self._unread.put_nowait(None)

    async def until(self, found: Callable[[str], bool], within: float = 45) -> str:
        async with asyncio.timeout(within):
            while True:
                line = await self._unread.get()
                assert line is not None, (
                    f"ended before it printed what was waited for: {self.lines}"
                )
                self.lines.append(line)
                if found(line):
                    return line

    async def interrupt(self, within: float = 20) -> tuple[int, str]:
        """Ctrl-C, as a terminal sends it: the exit code and what it said on stderr."""
        self.process.send_signal(signal.SIGINT)
        assert self.process.stderr is not None
        try:
            async with asyncio.timeout(within):
                err = await self.process.stderr.read()
                return await self.process.wait(), err.decode()
        except TimeoutError:
            raise AssertionError(
                f"still running {within} s after Ctrl-C: {_signals(self.process.pid)}"
            ) from None


def _signals(pid: int) -> str:
    """How a process that outlived Ctrl-C stands: its state and signal masks (/proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError as exc:
        return f"(its /proc unreadable: {exc})"
    wanted = ("State", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")
    return ", ".join([*(line for line in status if line.startswith(wanted)), f"wchan {wchan}"])


def as_in_a_terminal() -> None:
    """Ctrl-C as a terminal's foreground command receives it: SIGINT at its default. A command
    started in the background by a shell without job control (`make test &`, `nohup`) inherits
    SIGINT ignored, and Python then installs no KeyboardInterrupt for it: Ctrl-C would do
    nothing (the hang this test once met: SigIgn had SIGINT's bit)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.asynccontextmanager
async def follow(port: int, *argv: str) -> AsyncIterator[Follower]:
    """`autoscaler ARGV`, running while the block runs (killed after it, if still running)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "autoscaler", *argv, env=env_for(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        preexec_fn=as_in_a_terminal,
    )  # fmt: skip
    follower = Follower(process)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(follower.read())
        try:
            yield follower
        finally:
            # Ended, so that its output ends, and with it the reading.
            if process.returncode is None:
                process.kill()
                await process.wait()


async def streams(app: Any, count: int) -> None:
    """Until `count` event streams are open on the API: the followers listen. (A follower of a
    quiet service prints nothing when it starts, and the API tells nobody that a stream opened:
    its count is read until it says so.)"""
    async with asyncio.timeout(20):
        while app.api.streaming < count:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def test_status_shows_the_service_with_its_real_counts_bounds_cpu_and_last_action(
    make_container: Any, make_load: Any, run_autoscaler: Any, mqtt: Mqtt, project: str,
) -> None:  # fmt: skip
    load = make_load("web")
    await make_container("web", WEB, load=load)
    app = await run_autoscaler()
    load.set(200)
    await reaches(mqtt, project, "web", 2)

    code, out, err = await cli(app.api.port, "status")
    assert code == 0, err
    assert out.splitlines()[0].split() == ["SERVICE", "REPLICAS", "MIN/MAX", "METRICS", "PHASE",
                                           "CONTROL", "LAST", "ACTION", "AGE"]  # fmt: skip
    cells = line_of(out, f"{project}/web")
    assert cells[1:3] == ["2/2", "1/4"]
    assert re.fullmatch(r"cpu \d+%/50%", cells[3]), cells
    assert cells[5:7] == ["-", "scale_up 1->2"]
    assert re.fullmatch(r"\d+s|\d+m(\d+s)?", cells[7]), cells

    code, out, _ = await cli(app.api.port, "status", "--project", "another")
    assert (code, out) == (0, "no services in project another\n")


async def test_watch_and_follow_show_a_scale_up_as_it_happens_and_end_on_ctrl_c(
    make_container: Any, make_load: Any, run_autoscaler: Any, mqtt: Mqtt, project: str,
) -> None:  # fmt: skip
    load = make_load("web")
    await make_container("web", WEB, load=load)
    app = await run_autoscaler()
    await reaches(mqtt, project, "web", 1, hold=1)
    name = f"{project}/web"
    async with (
        follow(app.api.port, "status", "--watch") as watch,
        follow(app.api.port, "events", "web", "--follow") as tail,
    ):
        await watch.until(lambda line: line.startswith(f"{name} "))
        await streams(app, 2)
        assert not events(mqtt, project, "web", "scale_up")  # what follows is fresh

        load.set(200)
        event = await tail.until(lambda line: "scale_up" in line)
        assert re.fullmatch(rf"\d\d:\d\d:\d\d  {name}  scale_up 1->2: .+", event), event
        shown = await watch.until(lambda line: line.startswith(f"{name} ") and "scale_up" in line)
        assert re.split(r"\s{2,}", shown)[1] in ("1/2", "2/2"), shown

        for each in (watch, tail):
            code, err = await each.interrupt()
            assert (code, err) == (0, "")


async def test_hold_pause_and_resume_reach_the_service_with_who_and_why(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, project: str, records: None,
) -> None:  # fmt: skip
    await make_container("web", WEB | {"autoscaler.max": "3"})
    app = await run_autoscaler()
    await reaches(mqtt, project, "web", 1, hold=1)
    name = f"{project}/web"

    code, out, err = await cli(app.api.port, "hold", "web", "2", "--for", "30m",
                               "--who", "alice", "--why", "launch")  # fmt: skip
    assert code == 0, err
    assert re.fullmatch(rf"{name}: held at 2 by alice \(launch\), until \d\d:\d\d:\d\d \(for 30m\)\n",
                        out), out  # fmt: skip
    await reaches(mqtt, project, "web", 2, hold=1)
    held = await mqtt.wait_for(lambda m: events(m, project, "web", "hold"), within=10)
    assert held[0]["Actor"]["Attributes"]["who"] == "alice"
    _, out, _ = await cli(app.api.port, "status")
    assert re.fullmatch(r"held 2 \((29m\d+s|30m) left\)", line_of(out, name)[5])

    code, out, err = await cli(app.api.port, "hold", "web", "9")
    assert (code, out) == (1, "")
    assert err.startswith("autoscaler hold: ") and "outside its min and max" in err

    code, out, err = await cli(app.api.port, "pause", "web", "--why", "incident 42")
    assert code == 0, err
    assert re.fullmatch(rf"{name}: paused by \S+@\S+ \(incident 42\), until resumed\n", out)
    await mqtt.wait_for(lambda m: events(m, project, "web", "pause"), within=10)
    _, out, _ = await cli(app.api.port, "status")
    cells = line_of(out, name)
    assert cells[1].startswith("2/") and cells[5] == "paused", cells

    code, out, err = await cli(app.api.port, "resume", "web", "--who", "bob")
    assert (code, out) == (0, f"{name}: resumed; the autoscaler decides again\n"), err
    # Bob's resume is told with his name (the pause's replacing of alice's hold may have been
    # told as one of hers before it, on its own time).
    await mqtt.wait_for(
        lambda m: [e for e in events(m, project, "web", "resume")
                   if e["Actor"]["Attributes"]["who"] == "bob"], within=10
    )  # fmt: skip

    code, _, err = await cli(app.api.port, "pause", "nope")
    assert code == 1 and err.startswith("autoscaler pause: no service")
