"""One bad thing touches only its own part or service, against the real engine and broker: a bug
in a part of the process, a template that crashes, two stacks on one engine, a slow scale-down
beside a scale-up, a service that goes away for good."""

from __future__ import annotations

import time
from typing import Any

import aiodocker
import pytest

from autoscaler.app import App
from tests.integration.conftest import Mqtt, events, reaches, states, states_after

# Two replicas from the start (min 2): the clone the autoscaler makes at once shows it scales.
TWO = {
    "autoscaler.enable": "true",
    "autoscaler.min": "2",
    "autoscaler.max": "4",
    "autoscaler.cpu.target": "50",
}


def fail_once(method: Any) -> tuple[Any, list[str]]:
    """`method`, raising a bug of ours the first time it is called."""
    failed: list[str] = []

    async def failing(*args: Any, **kwargs: Any) -> Any:
        if not failed:
            failed.append("injected")
            raise RuntimeError("injected")
        return await method(*args, **kwargs)

    return failing, failed


@pytest.mark.parametrize(
    ("part", "where"),
    [
        pytest.param("engine events", ("inventory", "_apply"), id="reading-an-engine-event"),
        pytest.param("metric sources", ("signals", "follow"), id="asking-the-metric-sources"),
        pytest.param("sampling", ("collector", "sample"), id="a-sampling-round"),
    ],
)
async def test_a_bug_in_one_part_is_reported_once_and_never_ends_the_process(
    part: str,
    where: tuple[str, str],
    make_container: Any,
    run_autoscaler: Any,
    mqtt: Mqtt,
    project: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app: App = await run_autoscaler()
    owner, name = getattr(app, where[0]), where[1]
    failing, failed = fail_once(getattr(owner, name))
    monkeypatch.setattr(owner, name, failing)
    # A service appears after the bug is armed: its events, its round and its samples go
    # through the part that fails.
    await make_container("web", TWO)
    faults = await mqtt.wait_for(lambda m: m.on("events"))
    assert failed == ["injected"]
    assert faults[0]["Type"] == "autoscaler"
    assert faults[0]["Actor"]["ID"] == part
    assert faults[0]["Actor"]["Attributes"]["error"] == "RuntimeError"
    assert faults[0]["message"] == f"{part}: injected"
    # The process lives on, and scales: the clone is made after the fault.
    await reaches(mqtt, project, "web", 2)
    assert events(mqtt, project, "web", "scale_up")
    assert len(mqtt.on("events")) == 1


# Runs until a file named after its own hostname (its container id, short) appears in /load,
# then exits 3 by itself: a crash, with no stop request. Clones get hostnames of their own.
CRASH_ON_CUE = ["sh", "-c", "while [ ! -e /load/crash-$(hostname) ]; do sleep 0.2; done; exit 3"]


@pytest.mark.parametrize("how", ["crashes", "is-stopped-by-its-owner"])
async def test_a_crashed_template_is_reported_and_its_clones_keep_the_count(
    how: str,
    make_container: Any,
    make_load: Any,
    run_autoscaler: Any,
    mqtt: Mqtt,
    docker: aiodocker.Docker,
    project: str,
) -> None:
    load = make_load("web")
    labels = TWO | {"autoscaler.min": "3"}
    template = await make_container("web", labels, load=load, command=CRASH_ON_CUE)
    await run_autoscaler()
    await reaches(mqtt, project, "web", 3)
    since = time.time()
    if how == "crashes":
        # As an OOM under load would, with Compose's default `restart: "no"`.
        (load.path / f"crash-{template.id[:12]}").touch()
        errors = await mqtt.wait_for(lambda m: events(m, project, "web", "error"))
        assert f"{project}-web-1 crashed (exit code 3)" in errors[0]["message"]
        assert errors[0]["Actor"]["Attributes"]["error"] == "TemplateError"
        # The service is kept at its decided count from its clones, and says what is down.
        restored = await mqtt.wait_for(lambda m: events(m, project, "web", "restore"))
        assert restored[0]["created"] == 1
        later = await reaches(mqtt, project, "web", 3)
        assert "crashed" in (later[-1]["error"] or "")
        assert later[-1]["phase"] != "stopped"
        assert len(events(mqtt, project, "web", "error")) == 1
    else:
        await template.stop(t=1)  # `docker compose stop`, as far as the engine can tell
        stopped = await mqtt.wait_for(
            lambda m: [
                s
                for s in states(m, project, "web")
                if s["time"] > since and s["phase"] == "stopped"
            ]
        )
        assert stopped[0]["error"] is None
        held = await states_after(mqtt, project, "web", stopped[0]["time"], 3)
        assert {s["phase"] for s in held} == {"stopped"}
        assert not events(mqtt, project, "web", "restore")
        assert not events(mqtt, project, "web", "error")
