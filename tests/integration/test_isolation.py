"""One bad thing touches only its own part or service, against the real engine and broker: a bug
in a part of the process, a template that crashes, two stacks on one engine, a slow scale-down
beside a scale-up, a service that goes away for good."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.app import App
from tests.integration.conftest import Mqtt, events, reaches

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
