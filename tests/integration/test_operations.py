"""What an operator sees: explain, /status, /history, /metrics, /healthz and /readyz of a running
service."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from autoscaler.cli import main
from autoscaler.settings import ApiSettings
from tests.integration.conftest import Mqtt, reaches
from tests.integration.test_scaling import WEB


async def test_explain_shows_each_decision_with_its_inputs_and_the_rules_that_shaped_it(
    make_container: Any,
    make_load: Any,
    run_autoscaler: Any,
    mqtt: Mqtt,
    project: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    load = make_load("web")
    await make_container("web", WEB | {"autoscaler.scale-down.stabilization": "1m"}, load=load)
    app = await run_autoscaler()
    load.set(200)
    await reaches(mqtt, project, "web", 2)
    load.set(0)
    await mqtt.wait_for(
        lambda m: any(
            "scale-down stabilization" in s.get("reason", "") for s in m.on(f"{project}/web/state")
        )
    )

    monkeypatch.setenv("AUTOSCALER_API__PORT", str(app.api.port))
    code = await asyncio.to_thread(main, ["explain", "web", "--last", "50"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(f"{project}/web: 2 replicas (min 1, max 4), policy target-tracking")
    assert "1 -> 2" in out
    assert "propose 2" in out
    assert "scale-down stabilization: highest proposal of the last 60s is 2" in out
    assert f"{project}-web-1 cpu " in out
    assert "(ignored: warming up" in out  # the clone, in its first seconds


async def test_explain_names_the_services_it_knows_when_asked_for_another(
    make_container: Any,
    run_autoscaler: Any,
    mqtt: Mqtt,
    project: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await make_container("web", WEB)
    app = await run_autoscaler()
    await reaches(mqtt, project, "web", 1, hold=1)
    monkeypatch.setenv("AUTOSCALER_API__PORT", str(app.api.port))
    assert await asyncio.to_thread(main, ["explain", "nope"]) == 1
    assert f"no service 'nope'; services: {project}/web" in capsys.readouterr().err


async def test_health_readiness_status_history_and_metrics(
    make_container: Any, make_load: Any, run_autoscaler: Any, mqtt: Mqtt, project: str
) -> None:
    load = make_load("web")
    await make_container("web", WEB, load=load)
    app = await run_autoscaler()
    load.set(200)
    await reaches(mqtt, project, "web", 2)

    base = f"http://127.0.0.1:{app.api.port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/healthz") as r:
            assert r.status == 200
        async with http.get(f"{base}/readyz") as r:
            assert r.status == 200
        async with http.get(f"{base}/status") as r:
            status = await r.json()
        async with http.get(f"{base}/metrics") as r:
            metrics = await r.text()
        async with http.get(f"{base}/history", params={"service": "web"}) as r:
            history = await r.json()
        newest = history["rows"]["time"][-1]
        async with http.get(f"{base}/history", params={"service": "web", "since": newest}) as r:
            after = await r.json()
        async with http.get(f"{base}/history", params={"service": "web", "since": "soon"}) as r:
            assert r.status == 400
            assert "since='soon'" in (await r.json())["error"]
        async with http.get(f"{base}/history", params={"service": "nope"}) as r:
            assert r.status == 404
    # A row a round, oldest first, from one replica to two, with the scale-up to mark it.
    rows = history["rows"]
    assert history["service"] == f"{project}/web" and history["interval"] == 1.0
    assert rows["time"] == sorted(rows["time"]) and len(rows["time"]) >= 3
    assert rows["replicas"][0] == 1 and rows["replicas"][-1] == 2 and rows["max"][-1] == 4
    assert any(cpu is not None and cpu > 50 for cpu in rows["cpu"])
    assert [(e["Action"], e["from"], e["to"]) for e in history["events"]] == [("scale_up", 1, 2)]
    assert all(t > newest for t in after["rows"]["time"]) and after["events"] == []
    service = status["services"][f"{project}/web"]
    assert service["state"]["replicas"] == 2
    assert service["decisions"][-1]["samples"]
    assert status["mqtt"]["connected"] is True
    labels = f'project="{project}",service="web"'
    assert f"autoscaler_replicas{{{labels}}} 2.0" in metrics
    assert f"autoscaler_desired_replicas{{{labels}}} 2.0" in metrics
    assert f'autoscaler_actions_total{{direction="scale_up",{labels}}} 1.0' in metrics
    assert "autoscaler_sampling_seconds_count" in metrics
    rounds = next(line for line in metrics.splitlines()
                  if line.startswith("autoscaler_round_seconds_count"))  # fmt: skip
    assert float(rounds.split()[-1]) >= 1


async def test_explain_and_replicas_send_the_token_an_autoscaler_asks_for(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, project: str, tmp_path: Any,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    await make_container("web", WEB)
    secret = tmp_path / "token"
    secret.write_text("s3cret\n")  # as a Compose or Swarm secret file holds it
    app = await run_autoscaler(api=ApiSettings(port=0, token_file=secret))
    await reaches(mqtt, project, "web", 1, hold=1)
    monkeypatch.setenv("AUTOSCALER_API__PORT", str(app.api.port))
    assert await asyncio.to_thread(main, ["explain", "web"]) == 1
    assert "asks for its token: set AUTOSCALER_API__TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("AUTOSCALER_API__TOKEN_FILE", str(secret))
    assert await asyncio.to_thread(main, ["explain", "web"]) == 0
    assert capsys.readouterr().out.startswith(f"{project}/web: 1 replicas")
    assert await asyncio.to_thread(main, ["replicas", "--project", project]) == 0


async def test_event_streams_beyond_the_bound_are_refused_until_one_closes(
    make_container: Any, run_autoscaler: Any
) -> None:
    await make_container("web", WEB)
    app = await run_autoscaler(api=ApiSettings(port=0, streams=2))
    events = f"http://127.0.0.1:{app.api.port}/events"
    async with aiohttp.ClientSession() as http:
        first, second = await http.get(events), await http.get(events)
        await first.content.readline()  # both streams are open: each sent its first document
        await second.content.readline()
        async with http.get(events) as third:
            assert third.status == 503
            assert "2 event streams are open already" in (await third.json())["error"]
        first.close()
        async with asyncio.timeout(10):
            # The server sees the closed stream at its next write, a round later.
            while app.api.streaming > 1:  # noqa: ASYNC110 - a count of the server's, no event
                await asyncio.sleep(0.1)
        async with http.get(events) as again:
            assert again.status == 200
        second.close()
