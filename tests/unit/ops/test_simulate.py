"""`autoscaler simulate`: a trace file in; timelines, a plot and a summary out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoscaler.cli import main


def test_simulate_writes_timelines_and_a_plot_and_prints_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "step.csv"
    trace.write_text("time,demand\n0,1.0\n20,1.8\n120,1.8\n")
    out = tmp_path / "out"
    assert main(["simulate", "--trace", str(trace), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {
        "step-target-tracking.csv", "step-hpa.csv", "step-step.csv", "step.png",
    }  # fmt: skip
    assert (out / "step.png").read_bytes().startswith(b"\x89PNG")
    timeline = (out / "step-target-tracking.csv").read_text().splitlines()
    assert timeline[0] == "time,demand,needed,replicas,ready,schedule"
    assert timeline[26] == "25,1.800,4,4,2,"
    lines = printed.splitlines()
    assert lines[0].split()[:2] == ["policy", "actions"]
    assert lines[2].split()[:2] == ["target-tracking", "1"]


def test_a_bad_trace_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "bad.csv"
    trace.write_text("time,demand\n0,1\nsoon,2\n")
    assert main(["simulate", "--trace", str(trace), "--out", str(tmp_path)]) == 2
    assert "trace line 3" in capsys.readouterr().err


def test_json_prints_each_policys_summary_for_scripts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "step.csv"
    trace.write_text("time,demand\n0,1.0\n20,1.8\n120,1.8\n")
    assert main(["simulate", "--trace", str(trace), "--out", str(tmp_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary) == {"target-tracking", "hpa", "step"}
    assert summary["target-tracking"] == {
        "actions": 1, "under_provisioned_s": 15.0, "lost_s": 0.0,
        "over_provisioned_replica_s": 0.0, "time_to_needed_s": 15.0,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("label", "words"),
    [
        pytest.param("cpu.target=fast", "cpu.target='fast': Input should be a valid number", id="bad-value"),
        pytest.param("scale-up.cooldown=soon", "scale-up.cooldown='soon'", id="bad-behaviour-value"),
        pytest.param("noise-bnad=3", "noise-bnad='3': no policy here knows it", id="typo"),
    ],
)  # fmt: skip
def test_a_bad_label_is_a_clear_error_not_a_traceback(
    label: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "step.csv"
    trace.write_text("time,demand\n0,1.0\n")
    assert main(["simulate", "--trace", str(trace), "--out", str(tmp_path), "--label", label]) == 2
    err = capsys.readouterr().err
    assert err.startswith("autoscaler simulate: ")
    assert words in err
    assert "Traceback" not in err


def test_each_reference_takes_only_the_labels_it_understands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `step` is the step policy's own label; hpa and target-tracking run without it.
    trace = tmp_path / "step.csv"
    trace.write_text("time,demand\n0,1.0\n20,1.8\n120,1.8\n")
    args = ["simulate", "--trace", str(trace), "--out", str(tmp_path), "--json"]
    assert main([*args, "--label", "step=2", "--label", "scale-down.stabilization=1m"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"target-tracking", "hpa", "step"}


def test_a_trace_runs_across_a_schedule_given_as_the_services_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "idle.csv"
    trace.write_text("time,demand\n0,0.1\n300,0.1\n")
    out = tmp_path / "out"
    window = "schedule.morning=Mon 08:00-08:02 min=3"
    args = ["simulate", "--trace", str(trace), "--out", str(out), "--label", window,
            "--start", "2026-11-30T07:59:00"]  # fmt: skip
    assert main(args) == 0
    rows = {line.split(",")[0]: line for line in (out / "idle-hpa.csv").read_text().splitlines()}
    assert rows["30"].endswith(",1,1,")  # 07:59:30, before the window
    assert rows["100"] == '100,0.100,3,3,3,"schedule morning (min 3): min 3, max 20"'
    assert main([*args[:-4], "--label", "schedule.x=soon"]) == 2
    assert "expected" in capsys.readouterr().err


def test_a_schedules_lead_and_time_zone_are_read_as_a_services_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "idle.csv"
    trace.write_text("time,demand\n0,0.1\n300,0.1\n")
    out = tmp_path / "out"
    # The trace starts at 07:57 in Berlin, where the window's times are; with a lead of 2
    # minutes its min is in force from 07:58.
    args = ["simulate", "--trace", str(trace), "--out", str(out), "--start", "2026-11-30T07:57:00",
            "--label", "schedule.morning=Mon 08:00-08:10 min=3",
            "--label", "schedule.lead=2m", "--label", "schedule.timezone=Europe/Berlin"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    rows = {line.split(",")[0]: line for line in (out / "idle-hpa.csv").read_text().splitlines()}
    assert rows["30"].endswith(",1,1,")  # 07:57:30 local: before the lead
    assert rows["100"].split(",")[3] == "3"  # 07:58:40 local: the lead's two minutes early
    assert main([*args, "--label", "schedule.lead=soon"]) == 2
    assert "schedule.lead" in capsys.readouterr().err


def test_min_zero_sleeps_on_a_quiet_demand_and_wakes_when_it_comes_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With `--min 0` the demand is also the metric (as a proxy's requests in flight are): the
    service sleeps after `to-zero-after` of none, and wakes, one replica, when it returns."""
    trace = tmp_path / "quiet.csv"
    trace.write_text("time,demand\n0,0.4\n60,0\n300,0.4\n400,0.4\n")
    out = tmp_path / "out"
    args = ["simulate", "--trace", str(trace), "--out", str(out), "--min", "0", "--interval", "5",
            "--startup", "5", "--label", "scale-down.to-zero-after=60s",
            "--label", "metric.target=0.2"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    rows = [line.split(",") for line in (out / "quiet-hpa.csv").read_text().splitlines()[1:]]
    replicas = {int(float(r[0])): int(r[3]) for r in rows}
    assert replicas[50] >= 1  # demand: awake
    slept = min(t for t, n in replicas.items() if n == 0)
    assert 120 <= slept <= 130  # 60 s of no demand from t=60, read at the next round
    assert replicas[299] == 0  # nothing wakes it while there is no demand
    woke = min(t for t, n in replicas.items() if t > 300 and n > 0)
    assert woke <= 306  # the next round after the demand returns
    assert replicas[woke] == 1  # its own container started again, as the backend wakes it
    assert main([*args, "--min", "-1"]) == 2
    assert main([*args[:-2]]) == 2  # no metric.target: nothing to wake it by
    assert "metric.target" in capsys.readouterr().err
