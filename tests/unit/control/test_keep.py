"""What a policy learns over days, kept across a restart in a small file; and a replica's
start-up, measured from the action that created it to its first counted sample."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.control.keep import SAVE_EVERY, Keep, Memory
from autoscaler.control.startup import Startup
from autoscaler.labels import ServiceKey
from policies import registry

KEY = ServiceKey("shop", "web")


class Learner:
    def __init__(self) -> None:
        self.state: dict[str, Any] = {"n": 0}

    def export(self) -> dict[str, Any]:
        return dict(self.state)

    def restore(self, saved: dict[str, Any]) -> None:
        self.state = dict(saved)


def test_a_policy_s_learning_is_saved_every_few_minutes_and_read_back(tmp_path: Path) -> None:
    keep = Keep(tmp_path / "state")
    memory, learner = Memory(keep, KEY), Learner()
    memory.tick(learner, now=0.0)
    learner.state["n"] = 7
    memory.tick(learner, now=SAVE_EVERY - 1)
    assert not keep.path(KEY).exists()
    memory.tick(learner, now=SAVE_EVERY)
    assert json.loads(keep.path(KEY).read_text()) == {"n": 7}
    restarted = Learner()
    Memory(keep, KEY).restore(restarted)
    assert restarted.state == {"n": 7}


def test_a_stop_saves_what_was_learned_since_the_last_save_and_nothing_before_any(
    tmp_path: Path,
) -> None:
    keep = Keep(tmp_path)
    memory, learner = Memory(keep, KEY), Learner()
    memory.save(learner)  # no round yet: nothing learned, nothing written
    assert not keep.path(KEY).exists()
    memory.tick(learner, now=0.0)
    learner.state["n"] = 3
    memory.save(learner)  # a minute later, not five: a restart now would lose it otherwise
    assert json.loads(keep.path(KEY).read_text()) == {"n": 3}


def test_the_predictive_policy_s_daily_history_survives_a_restart(tmp_path: Path) -> None:
    keep = Keep(tmp_path)
    before, _ = registry.build("predictive", {"cpu.target": "50"})
    before.restore({"bucket": 300.0, "first": 0.0, "sums": {"100": [12.0, 3]}})  # type: ignore[attr-defined]
    keep.save(KEY, before.export())  # type: ignore[attr-defined]
    after, _ = registry.build("predictive", {"cpu.target": "50"})
    Memory(keep, KEY).restore(after)
    # The bucket itself came back, not only a history as empty as a new one's.
    assert after.export()["sums"] == {"100": [12.0, 3]}  # type: ignore[attr-defined]
    assert after.export() == before.export()  # type: ignore[attr-defined]


def test_a_file_that_is_no_json_is_a_warning_and_the_policy_learns_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keep = Keep(tmp_path)
    keep.path(KEY).write_text("{not json")
    learner = Learner()
    Memory(keep, KEY).restore(learner)
    assert learner.state == {"n": 0}
    assert "is no JSON" in caplog.text and keep.path(KEY).name in caplog.text
    assert keep.path(KEY).name.startswith("shop_web-")


def test_names_that_read_alike_as_file_names_keep_two_files(tmp_path: Path) -> None:
    keep = Keep(tmp_path)
    one, other = ServiceKey("shop", "a/b"), ServiceKey("shop", "a_b")
    keep.save(one, {"n": 1})
    keep.save(other, {"n": 2})
    assert (keep.load(one), keep.load(other)) == ({"n": 1}, {"n": 2})
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".json"]  # no temporary left


def test_a_file_kept_by_an_earlier_release_is_read_back(tmp_path: Path) -> None:
    (tmp_path / "shop_web.json").write_text('{"n": 5}')  # its name before the digest
    learner = Learner()
    Memory(Keep(tmp_path), KEY).restore(learner)
    assert learner.state == {"n": 5}


@pytest.mark.parametrize(
    "saved",
    [
        {"bucket": 300.0, "sums": {"100": []}},
        {"bucket": 300.0, "sums": {"100": [1.0]}},
        {"bucket": 300.0, "sums": {"x": [1.0, 2]}},
        {"bucket": 300.0, "sums": {"100": "12"}},
        {"bucket": 300.0, "sums": {"100": [1e400, 2]}},
        {"bucket": 300.0, "sums": {"100": [1.0, 0]}},
        {"bucket": 300.0, "sums": [1, 2]},
        {"bucket": 300.0, "first": 1e400, "sums": {}},
    ],
)
def test_a_daily_history_another_release_or_a_disk_damaged_is_a_warning_and_learnt_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, saved: dict[str, Any]
) -> None:
    keep = Keep(tmp_path)
    keep.path(KEY).write_text(json.dumps(saved).replace("Infinity", "1e400"))
    policy, _ = registry.build("predictive", {"cpu.target": "50"})
    fresh = policy.export()  # type: ignore[attr-defined]
    Memory(keep, KEY).restore(policy)
    assert policy.export() == fresh  # type: ignore[attr-defined]
    assert "holds nothing this policy can read" in caplog.text


def test_a_directory_that_cannot_be_written_is_a_warning_not_a_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    keep = Keep(blocked / "state")  # a file where the folder should be
    keep.save(KEY, {"n": 1})
    keep.save(KEY, {"n": 2})
    assert caplog.text.count("cannot be written") == 1


def test_without_a_state_dir_nothing_is_kept(tmp_path: Path) -> None:
    memory, learner = Memory(None, KEY), Learner()
    memory.tick(learner, 0.0)
    memory.tick(learner, SAVE_EVERY)
    memory.restore(learner)
    assert list(tmp_path.iterdir()) == []


def test_a_start_up_is_from_the_action_to_the_first_counted_sample() -> None:
    startup = Startup()
    assert startup.seconds is None
    startup.created(["a", "b"], at=100.0)
    startup.counted(["a"], at=103.0, live=["a", "b"])
    assert startup.seconds == 3.0
    startup.counted(["a", "b"], at=105.0, live=["a", "b"])  # a counts again: measured once
    assert startup.seconds == 4.0  # the median of 3 and 5


def test_a_clone_removed_before_it_counted_is_forgotten() -> None:
    startup = Startup()
    startup.created(["a"], at=100.0)
    startup.counted([], at=101.0, live=[])
    startup.counted(["a"], at=200.0, live=["a"])
    assert startup.seconds is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1), st.text(min_size=1)), min_size=2, max_size=2,
                unique=True))  # fmt: skip
def test_every_service_name_is_a_file_of_its_own_in_the_state_folder(
    names: list[tuple[str, str]],
) -> None:
    # Whatever a name holds (`/`, `..`, NUL, a surrogate, 10,000 characters), its file is one
    # name in the folder, short enough for any file system, and no other service's.
    keep = Keep(Path("/state"))
    paths = [keep.path(ServiceKey(project, service)) for project, service in names]
    for path in paths:
        assert path.parent == Path("/state")
        assert "\x00" not in path.name and len(path.name.encode()) <= 255
    assert paths[0] != paths[1]
