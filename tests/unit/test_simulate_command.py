"""`autoscaler simulate`: a trace file in; timelines, a plot and a summary out."""

from __future__ import annotations

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
    assert timeline[0] == "time,demand,needed,replicas,ready"
    assert timeline[26] == "25,1.800,4,4,2"
    lines = printed.splitlines()
    assert lines[0].split()[:2] == ["policy", "actions"]
    assert lines[2].split()[:2] == ["target-tracking", "1"]


def test_a_bad_trace_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "bad.csv"
    trace.write_text("time,demand\n0,1\nsoon,2\n")
    assert main(["simulate", "--trace", str(trace), "--out", str(tmp_path)]) == 2
    assert "trace line 3" in capsys.readouterr().err
