"""`autoscaler status` and `events` in a terminal: a line a service with its counts, bounds,
metrics against their targets, phase, control and last action with its age; an event a line;
and the commands `pause`, `hold` and `resume` as the API is sent them."""

from __future__ import annotations

import asyncio
import io
import re
import socket
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from autoscaler.cli import _parser
from autoscaler.ops import client, console
from autoscaler.settings import ApiSettings
from policies.options import seconds

NOW = 1_000_000.0

WEB = {
    "project": "shop", "service": "web", "phase": "holding", "replicas": 3, "desired": 3,
    "min": 1, "max": 10, "cpu": 62.4, "memory": 30.0, "targets": {"cpu": 60.0},
    "metric": None, "metric_value": None, "last_action": "scale_up 2 → 3",
    "last_action_at": NOW - 130, "control": None, "error": None, "finding": None,
}  # fmt: skip


def state(**changes: Any) -> dict[str, Any]:
    return WEB | changes


def cells(line: str) -> list[str]:
    """A table line's cells: the columns are two spaces or more apart."""
    return re.split(r"\s{2,}", line.strip())


def test_a_service_is_a_line_with_counts_bounds_metrics_phase_last_action_and_age() -> None:
    lines = console.table({"shop/web": state()}, now=NOW).splitlines()
    assert cells(lines[0]) == ["SERVICE", "REPLICAS", "MIN/MAX", "METRICS", "PHASE", "CONTROL",
                               "LAST ACTION", "AGE"]  # fmt: skip
    assert cells(lines[1]) == [
        "shop/web", "3/3", "1/10", "cpu 62%/60%", "holding", "-", "scale_up 2->3", "2m10s"
    ]  # fmt: skip
    assert len(lines) == 2


def test_the_columns_line_up_whatever_the_names_length() -> None:
    text = console.table(
        {"shop/web": state(), "a-long-project/a-long-service": state(project="a-long-project")},
        now=NOW,
    )
    lines = text.splitlines()
    starts = {line.index("holding") for line in lines[1:]}
    assert len(starts) == 1 and lines[0].index("PHASE") in starts


def test_a_queue_metric_shows_its_value_against_its_target_beside_cpu() -> None:
    queued = state(metric="mqtt queue/jobs", metric_value=120.0,
                   targets={"cpu": 60.0, "metric": 10.0})  # fmt: skip
    assert console.metrics(queued) == "cpu 62%/60%, mqtt queue/jobs 120/10"


def test_a_service_with_no_value_yet_shows_a_dash_where_the_value_would_be() -> None:
    fresh = state(cpu=None, metric="mqtt queue/jobs", metric_value=None, desired=None,
                  targets={"cpu": 60.0, "metric": 10.0}, last_action=None,
                  last_action_at=None)  # fmt: skip
    row = console.row("shop/web", fresh, now=NOW)
    assert row[1] == "3/-"
    assert row[3] == "cpu -/60%, mqtt queue/jobs -/10"
    assert row[6:] == ("-", "-")


def test_memory_is_shown_when_it_has_a_target_and_cpu_always() -> None:
    assert console.metrics(state(targets={"memory": 70.0})) == "cpu 62%, memory 30%/70%"
    assert console.metrics(state(targets=None)) == "cpu 62%"


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0.25, "0.25"), (7.0, "7"), (12.34, "12.3"), (99.4, "99.4"), (1234.6, "1235")],
    ids=["fraction", "whole", "three-figures", "just-below-100", "large-whole"],
)
def test_a_metric_value_reads_in_its_own_unit(value: float, shown: str) -> None:
    assert console.metrics(state(metric="m", metric_value=value)) == f"cpu 62%/60%, m {shown}"


def test_a_long_metric_name_is_cut_so_that_the_line_stays_a_line() -> None:
    query = "prometheus sum(rate(http_requests_total{job='web'}[1m]))"
    shown = console.metrics(state(metric=query, metric_value=5.0))
    assert shown == "cpu 62%/60%, prometheus sum(rate(htt… 5"


def test_an_error_and_a_finding_are_told_below_the_table_a_line_each() -> None:
    broken = state(phase="error", error="autoscaler.max: expected a whole number", replicas=1)
    idle = state(finding="shop-api-2 takes no load")
    lines = console.table({"shop/web": broken, "shop/api": idle}, now=NOW).splitlines()
    assert "error" in cells(lines[2])[4]
    assert lines[3:] == ["shop/web: error: autoscaler.max: expected a whole number",
                         "shop/api: finding: shop-api-2 takes no load"]  # fmt: skip


@pytest.mark.parametrize(
    ("control", "shown"),
    [
        (None, "-"),
        ({"action": "pause", "replicas": None, "until": None}, "paused"),
        ({"action": "pause", "replicas": None, "until": NOW + 1500}, "paused (25m left)"),
        ({"action": "hold", "replicas": 4, "until": NOW + 7200}, "held 4 (2h left)"),
        ({"action": "hold", "replicas": 4, "until": None}, "held 4"),
        ({"action": "hold", "replicas": 4, "until": NOW - 1}, "held 4 (ended)"),
        ({"action": "resume", "replicas": None, "until": None}, "-"),
    ],
    ids=["none", "paused-until-resumed", "paused-for-a-while", "held-for-a-while",
         "held-until-resumed", "ran-out", "resumed"],
)  # fmt: skip
def test_a_control_in_force_is_shown_with_the_time_it_has_left(
    control: dict[str, Any] | None, shown: str
) -> None:
    assert console.row("shop/web", state(control=control), now=NOW)[5] == shown


@pytest.mark.parametrize(
    ("span", "shown"),
    [(0, "0s"), (45.9, "45s"), (60, "1m"), (130, "2m10s"), (3600, "1h"), (3 * 3600 + 240, "3h4m"),
     (86_400, "1d"), (2 * 86_400 + 5 * 3600 + 7, "2d5h"), (-5, "0s")],
    ids=["zero", "seconds", "a-minute", "minutes", "an-hour", "hours", "a-day", "days",
         "a-clock-behind"],
)  # fmt: skip
def test_ages_read_as_kubectl_writes_them(span: float, shown: str) -> None:
    assert console.age(span) == shown


def test_a_dry_run_says_so_beside_the_phase() -> None:
    assert console.row("shop/web", state(dry_run=True), now=NOW)[4] == "holding (dry run)"


def test_only_the_project_asked_for_is_shown_and_none_is_said_so() -> None:
    both = {"shop/web": state(), "blog/web": state(project="blog")}
    shown = console.table(both, now=NOW, project="blog").splitlines()
    assert [cells(line)[0] for line in shown[1:]] == ["blog/web"]
    assert console.table(both, now=NOW, project="nope") == "no services in project nope"
    assert console.table({}, now=NOW) == "no services"


def test_the_board_follows_the_stream_whole_then_changes_then_what_is_gone() -> None:
    board = console.Board()
    board.apply({"full": True, "ready": True, "events": [],
                 "services": {"shop/web": {"state": state()}, "shop/api": {"state": state()}}})  # fmt: skip
    board.apply({"services": {"shop/web": {"state": state(replicas=4)}}, "gone": ["shop/api"],
                 "events": []})  # fmt: skip
    assert list(board.states) == ["shop/web"] and board.states["shop/web"]["replicas"] == 4
    board.apply({"full": True, "services": {"blog/db": {"state": state()}}})
    assert list(board.states) == ["blog/db"]


def test_an_event_is_a_line_when_whose_what_and_why() -> None:
    at = datetime(2026, 12, 3, 14, 5, 9).timestamp()
    scaled = {"Action": "scale_up", "Actor": {"ID": "shop/web"}, "timeNano": int(at * 1e9),
              "from": 2, "to": 3, "reason": "cpu 90% > 60%"}  # fmt: skip
    paused = {"Action": "pause", "Actor": {"ID": "shop/web"}, "timeNano": int(at * 1e9),
              "message": "paused by alice (incident 42)"}  # fmt: skip
    assert console.event_line(scaled) == "14:05:09  shop/web  scale_up 2->3: cpu 90% > 60%"
    assert console.event_line(paused) == "14:05:09  shop/web  pause: paused by alice (incident 42)"


def test_events_are_chosen_by_a_service_named_whole_or_by_its_name_alone() -> None:
    found = [{"Actor": {"ID": "shop/web"}}, {"Actor": {"ID": "shop/webapp"}},
             {"Actor": {"ID": "blog/web"}}, {"Actor": {"ID": "instance-1"}}]  # fmt: skip
    assert len(console.events_of(found, None)) == 4
    assert [e["Actor"]["ID"] for e in console.events_of(found, "web")] == ["shop/web", "blog/web"]
    assert [e["Actor"]["ID"] for e in console.events_of(found, "shop/web")] == ["shop/web"]


def test_the_answer_to_a_command_names_the_control_who_why_and_until_when() -> None:
    until = datetime(2026, 12, 3, 14, 30).timestamp()
    held = {"service": "shop/web", "control": {"action": "hold", "replicas": 5, "until": until,
            "who": "alice@host", "why": "launch", "since": until - 7200}}  # fmt: skip
    assert console.answered(held) == (
        "shop/web: held at 5 by alice@host (launch), until 14:30:00 (for 2h)"
    )
    paused = {"service": "shop/web", "control": {"action": "pause", "replicas": None,
              "until": None, "who": "bob", "why": "", "since": 0}}  # fmt: skip
    assert console.answered(paused) == "shop/web: paused by bob, until resumed"
    resumed = {"service": "shop/web", "control": None}
    assert console.answered(resumed).startswith("shop/web: resumed")


# -- the commands' arguments ---------------------------------------------------------------------

DURATIONS = st.builds(
    lambda n, unit: f"{n}{unit}",
    st.integers(min_value=1, max_value=1000),
    st.sampled_from(["", "s", "m", "h", "ms"]),
)


@given(DURATIONS)
def test_a_duration_the_labels_take_is_sent_as_written(text: str) -> None:
    args = _parser().parse_args(["hold", "web", "4", "--for", text, "--who", "a"])
    assert client.body_of(args) == {"service": "web", "action": "hold", "replicas": 4,
                                    "for": text, "who": "a", "why": ""}  # fmt: skip


@given(st.text(max_size=12))
def test_any_text_is_taken_as_a_duration_only_when_the_labels_take_it_and_it_is_above_zero(
    text: str,
) -> None:
    try:
        wanted = seconds(text) > 0
    except ValueError:
        wanted = False
    try:
        taken = console.duration(text) == text
    except ValueError:
        taken = False
    assert taken == wanted


def test_a_bad_duration_is_refused_before_anything_is_sent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for bad in ("soon", "0", "-5m", "9999999h"):
        with pytest.raises(SystemExit) as exit_:
            _parser().parse_args(["pause", "web", f"--for={bad}"])
        assert exit_.value.code == 2
        assert "argument --for: expected a duration" in capsys.readouterr().err


def test_pause_and_resume_say_who_and_why_and_who_defaults_to_user_at_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("USER", "carol")
    paused = client.body_of(_parser().parse_args(["pause", "shop/web", "--why", "incident 42"]))
    assert paused == {"service": "shop/web", "action": "pause", "for": None,
                      "who": f"carol@{socket.gethostname()}", "why": "incident 42"}  # fmt: skip
    resumed = client.body_of(_parser().parse_args(["resume", "web", "--who", "dave"]))
    assert resumed == {"service": "web", "action": "resume", "who": "dave", "why": ""}


# -- against a server that records what it was sent ----------------------------------------------


class Recorder:
    """A stand-in API: /controls records each request and answers as told; /events sends the
    messages it is given, in pieces as a network would, then ends."""

    def __init__(self) -> None:
        self.got: list[tuple[str, str | None, Any]] = []
        self.answer: tuple[int, dict[str, Any]] = (200, {})
        self.stream: list[bytes] = []

    async def controls(self, request: web.Request) -> web.Response:
        self.got.append((request.content_type, request.headers.get("Authorization"),
                         await request.json()))  # fmt: skip
        status, body = self.answer
        return web.json_response(body, status=status)

    async def events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for piece in self.stream:
            await response.write(piece)
        return response


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[Recorder, ApiSettings]]:
    served = Recorder()
    app = web.Application()
    app.add_routes([web.post("/controls", served.controls), web.get("/events", served.events)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield served, ApiSettings(port=runner.addresses[0][1], token=SecretStr("s3cret"))
    finally:
        await runner.cleanup()


async def run(api: ApiSettings, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = await asyncio.to_thread(client.main, _parser().parse_args(list(argv)), api, out)
    return code, out.getvalue()


async def test_a_hold_is_posted_as_json_with_the_token_and_its_answer_told(
    recorder: tuple[Recorder, ApiSettings],
) -> None:
    served, api = recorder
    served.answer = (200, {"service": "shop/web", "control": {
        "action": "hold", "replicas": 4, "until": None, "who": "alice", "why": "launch"}})  # fmt: skip
    code, out = await run(api, "hold", "web", "4", "--who", "alice", "--why", "launch")
    assert code == 0
    assert out == "shop/web: held at 4 by alice (launch), until resumed\n"
    assert served.got == [("application/json", "Bearer s3cret",
                           {"service": "web", "action": "hold", "replicas": 4, "for": None,
                            "who": "alice", "why": "launch"})]  # fmt: skip


async def test_an_api_refusal_is_told_in_its_words_and_the_command_fails(
    recorder: tuple[Recorder, ApiSettings], capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    served, api = recorder
    served.answer = (400, {"error": "service shop/web: hold 40 is outside its min and max"})
    code, out = await run(api, "hold", "web", "40")
    assert code == 1 and out == ""
    err = capsys.readouterr().err
    assert err == "autoscaler hold: service shop/web: hold 40 is outside its min and max\n"


async def test_no_autoscaler_at_the_address_is_an_error_naming_the_settings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _ = await run(ApiSettings(port=1), "status")
    assert code == 1
    assert "autoscaler status: no autoscaler answers at http://127.0.0.1:1/status" in (
        capsys.readouterr().err
    )


async def test_events_are_read_from_the_stream_in_whatever_pieces_it_arrives(
    recorder: tuple[Recorder, ApiSettings], capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    served, api = recorder
    at = int(time.time() * 1e9)
    first = ('data: {"full": true, "services": {}, "events": ['
             f'{{"Action": "scale_up", "Actor": {{"ID": "shop/web"}}, "timeNano": {at}, '
             '"from": 1, "to": 2}, '
             f'{{"Action": "error", "Actor": {{"ID": "shop/api"}}, "timeNano": {at}, '
             '"message": "engine away"}]}\n\n')  # fmt: skip
    # A message may come as several `data:` lines: they are one document.
    later = (f'data: {{"services": {{}}, "gone": [],\ndata: "events": [{{"Action": "scale_down", '
             f'"Actor": {{"ID": "shop/web"}}, "timeNano": {at}, "from": 2, "to": 1}}]}}\n\n')  # fmt: skip
    served.stream = [first.encode()[:30], first.encode()[30:], b": still here\n\n",
                     later.encode()]  # fmt: skip

    code, out = await run(api, "events", "web", "--follow")
    lines = out.splitlines()
    assert [line.split("  ", 1)[1] for line in lines] == ["shop/web  scale_up 1->2",
                                                          "shop/web  scale_down 2->1"]  # fmt: skip
    # The stand-in ends its stream: a follower is told, as it would be of a stopped autoscaler.
    assert code == 1
    assert "closed its event stream" in capsys.readouterr().err

    code, out = await run(api, "events", "--last", "1")
    assert code == 0 and out.splitlines()[0].endswith("shop/api  error: engine away")
