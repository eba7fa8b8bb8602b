"""Schedules against the real engine: a window that begins during the test raises the service's
min at once, whatever its load, and its end lets the service go back to its own min. The wall
clock the controllers read is stepped to just before the window and then into it and past it,
as a day would."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from autoscaler.control.context import Clock
from tests.integration.conftest import Mqtt, events, reaches, states
from tests.integration.test_scaling import WEB, SteppedWall, names


def offset_to(hour: int, minute: int, second: int) -> float:
    """The wall clock's offset that makes it read today's hour:minute:second, UTC."""
    today = datetime.now(UTC).replace(hour=hour, minute=minute, second=second, microsecond=0)
    return today.timestamp() - time.time()


async def test_a_window_that_begins_raises_min_and_its_end_gives_the_labels_min_back(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, docker: Any, project: str
) -> None:
    wall = SteppedWall()
    wall.offset = offset_to(7, 58, 56)  # the window begins 4 s into the test
    labels = WEB | {"autoscaler.schedule.morning": "07:59-08:10 min=3",
                    "autoscaler.schedule.timezone": "UTC"}  # fmt: skip
    await make_container("web", labels)
    await run_autoscaler(clock=Clock(wall=wall))
    before = await mqtt.wait_for(lambda m: states(m, project, "web"))
    assert (before[0]["min"], before[0]["schedule"]) == (1, None)
    began = await mqtt.wait_for(lambda m: events(m, project, "web", "schedule"))
    assert began[0]["message"] == "schedule morning (min 3): min 3, max 4"
    await reaches(mqtt, project, "web", 3)
    assert len(await names(docker, project)) == 3
    assert states(mqtt, project, "web")[-1]["schedule"] == "schedule morning (min 3): min 3, max 4"
    assert states(mqtt, project, "web")[-1]["min"] == 3

    wall.offset = offset_to(8, 10, 1)  # the window is over: an idle service goes back to 1
    ended = await mqtt.wait_for(
        lambda m: [
            e for e in events(m, project, "web", "schedule") if "no schedule" in e["message"]
        ]
    )
    assert ended[0]["message"] == "no schedule window in force: the labels' min and max"
    await reaches(mqtt, project, "web", 1)
    assert states(mqtt, project, "web")[-1]["schedule"] is None
