"""Scaling on demand itself, against the real broker and a real Prometheus: a queue's depth
published on MQTT, or the value of a PromQL query, with the same rules as CPU."""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis

from tests.integration.conftest import Exporter, Mqtt, events, reaches, states, states_after
from tests.integration.exporter import QUEUE, Queue, exporting, publish
from tests.integration.queues import queue_server
from tests.integration.relay import Relay


def decided(mqtt: Mqtt, project: str, since: float) -> list[float]:
    """When the worker's published state said it was scaling (a decision made), after `since`."""
    return [s["time"] for s in states(mqtt, project, "worker")
            if s["phase"] == "scaling" and s["time"] > since]  # fmt: skip


async def test_a_queue_step_is_one_action_and_a_drop_waits_for_the_window(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, queue: Queue, project: str
) -> None:
    topic = queue.topic
    await make_container("worker", QUEUE | {"autoscaler.metric.topic": topic})
    await run_autoscaler()
    await queue.set(0)
    await reaches(mqtt, project, "worker", 1)

    await queue.set(90)  # 9 replicas' worth: one action, 1 -> 9
    ups = await mqtt.wait_for(lambda m: events(m, project, "worker", "scale_up"))
    assert (ups[0]["from"], ups[0]["to"]) == (1, 9)
    assert ups[0]["reason"] == f"mqtt {topic} 90 vs 10 a replica: propose 9"
    await reaches(mqtt, project, "worker", 9)

    dropped = time.time()
    await queue.set(20)
    downs = await mqtt.wait_for(lambda m: events(m, project, "worker", "scale_down"))
    assert (downs[0]["from"], downs[0]["to"]) == (9, 2)
    assert downs[0]["timeNano"] / 1e9 - dropped >= 3  # the scale-down window held it
    assert len(events(mqtt, project, "worker", "scale_up")) == 1


async def test_a_pushed_value_is_acted_on_as_it_arrives_not_at_the_next_round(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, queue: Queue, project: str
) -> None:
    # Rounds 8 s apart: a value published just after one waits up to 8 s for the next, unless
    # its arrival is acted on, under the same rules (here: a step up in one action).
    topic = queue.topic
    await make_container("worker", QUEUE | {"autoscaler.metric.topic": topic,
                                            "autoscaler.metric.max-age": "30s"})  # fmt: skip
    await queue.set(0)
    await run_autoscaler(interval=8.0)
    await reaches(mqtt, project, "worker", 1)
    # Just after a round (its state message for this service marks it).
    await states_after(mqtt, project, "worker", time.time(), count=1)
    published = time.time()
    await queue.set(90)
    ups = await mqtt.wait_for(lambda m: events(m, project, "worker", "scale_up"), within=6)
    assert (ups[0]["from"], ups[0]["to"]) == (1, 9)
    # Its event comes once the 8 clones run; the next round would be 8 s after the last.
    assert ups[0]["timeNano"] / 1e9 - published < 4.0, ups[0]


@contextlib.asynccontextmanager
async def polled_worker(
    make_container: Any, project: str, poll: str, **labels: str
) -> AsyncIterator[tuple[str, Redis]]:
    """A worker on a Redis list of its own, read every `poll` between rounds: the list's name
    and a client to fill it with; the list deleted after."""
    server = queue_server("redis")
    jobs = f"test:{project}:jobs"
    own = {k: v for k, v in QUEUE.items() if k != "autoscaler.metric.source"}
    await make_container("worker", own | {
        "autoscaler.metric.source": "redis", "autoscaler.metric.url": server["URL"],
        "autoscaler.metric.list": jobs, "autoscaler.metric.poll": poll, **labels})  # fmt: skip
    admin = Redis.from_url(server["URL"])
    try:
        yield jobs, admin
    finally:
        await admin.delete(jobs)
        await admin.aclose()


async def test_a_polled_redis_list_is_acted_on_between_rounds(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, project: str
) -> None:
    # A worker on a Redis list, polled every 250 ms, the rounds 8 s apart: a burst enqueued
    # just after a round is acted on within a poll, through the app (reader, signals, a look).
    async with polled_worker(make_container, project, "250ms") as (jobs, admin):
        await run_autoscaler(interval=8.0)
        await reaches(mqtt, project, "worker", 1)
        (rounded,) = await states_after(mqtt, project, "worker", time.time(), count=1)
        await admin.rpush(jobs, *range(90))  # just after a round
        ups = await mqtt.wait_for(lambda m: events(m, project, "worker", "scale_up"), within=12)
        assert (ups[0]["from"], ups[0]["to"]) == (1, 9), ups[0]
        assert ups[0]["reason"] == f"redis {jobs} 90 vs 10 a replica: propose 9"
        # Decided before the next round, 8 s after the last (its event comes once the 8 clones
        # run, as late as the engine makes them).
        assert decided(mqtt, project, since=rounded["time"])[0] < rounded["time"] + 8.0


async def test_a_queue_that_grows_while_its_service_acts_is_acted_on_when_the_action_ends(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, project: str
) -> None:
    # A burst still being enqueued when a poll reads it: the first action is for part of it.
    # The rest, read while that action runs, is acted on as soon as it ends; the polled value
    # does not change again, so nothing else would ask before the next round, 8 s away.
    more = {"autoscaler.max": "20", "autoscaler.scale-up.max-replicas": "20"}
    async with polled_worker(make_container, project, "100ms", **more) as (jobs, admin):
        await run_autoscaler(interval=8.0)
        await reaches(mqtt, project, "worker", 1)
        (rounded,) = await states_after(mqtt, project, "worker", time.time(), count=1)
        await admin.rpush(jobs, *range(100))  # just after a round, 10 replicas' worth: 9 clones
        await mqtt.wait_for(lambda m: decided(m, project, since=rounded["time"]), within=4)
        await admin.rpush(jobs, *range(100, 200))  # while they are made: 20 in all
        ups = await mqtt.wait_for(
            lambda m: (found := events(m, project, "worker", "scale_up"))[1:] and found, within=20
        )
        # Each action for what was read when it was decided, from what the one before made. What
        # an action made is the engine's: on a loaded host the lease's lead may lapse while it
        # runs, and the fence then drops its last starts (a lease's test, not this one's); the
        # count is made up once the lead is back.
        assert [(u["from"], u["desired"]) for u in ups[:2]] == [(1, 10), (10, 20)], ups
        # The second decided as the first action ended, however long the engine took to make
        # the clones: the rounds are 8 s apart from `rounded`, and one that came while the
        # service acted passed it by. A decision left to the next round would come as that
        # round starts, give or take the milliseconds by which a round's timing moves: told
        # apart wherever the action ended far enough before it.
        first_ended = ups[0]["timeNano"] / 1e9
        next_round = rounded["time"] + 8.0 * math.ceil((first_ended - rounded["time"]) / 8.0)
        second = decided(mqtt, project, since=first_ended)[0]
        assert second - first_ended < 2.0, (first_ended, second, next_round)
        if next_round - first_ended > 0.5:
            assert second < next_round - 0.2, (first_ended, second, next_round)
        await reaches(mqtt, project, "worker", 20, hold=1)


async def test_a_stale_value_holds_and_is_reported_once_until_it_is_fresh_again(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, queue: Queue, project: str
) -> None:
    topic = queue.topic
    labels = QUEUE | {"autoscaler.metric.topic": topic, "autoscaler.metric.max-age": "2s",
                      "autoscaler.scale-down.stabilization": "0s"}  # fmt: skip
    await make_container("worker", labels)
    await run_autoscaler()
    await queue.set(30)
    await reaches(mqtt, project, "worker", 3)

    # The publisher stalls: after 2 s the value is missing; the count holds at 3, where a
    # value of 0 would have taken it to 1 at once (no scale-down window).
    queue.stall()
    errors = await mqtt.wait_for(lambda m: events(m, project, "worker", "error"), within=20)
    assert errors[0]["Actor"]["Attributes"]["source"] == f"mqtt {topic}"
    assert "no value for longer than its max age of 2s" in errors[0]["message"]
    later = await states_after(mqtt, project, "worker", errors[0]["timeNano"] / 1e9, 4)
    assert {s["replicas"] for s in later} == {3}
    assert all("no value for longer than its max age of 2s" in (s["error"] or "") for s in later)
    assert len(events(mqtt, project, "worker", "error")) == 1

    await queue.set(30)
    back = await mqtt.wait_for(
        lambda m: [
            s
            for s in states(m, project, "worker")
            if s["time"] > errors[0]["time"] and s["error"] is None
        ]
    )
    assert back[0]["replicas"] == 3


async def test_a_metric_missing_past_its_fallback_wait_runs_the_fallback_count_until_it_reads(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, queue: Queue, project: str
) -> None:
    labels = QUEUE | {"autoscaler.metric.topic": queue.topic, "autoscaler.metric.max-age": "2s",
                      "autoscaler.metric.fallback": "5", "autoscaler.metric.fallback-after": "2s",
                      "autoscaler.scale-down.stabilization": "0s"}  # fmt: skip
    await make_container("worker", labels)
    await run_autoscaler()
    await queue.set(20)
    await reaches(mqtt, project, "worker", 2)

    queue.stall()  # missing after 2 s of max age, the fallback 2 s later
    told = await mqtt.wait_for(lambda m: events(m, project, "worker", "fallback"), within=20)
    assert told[0]["Actor"]["Attributes"]["replicas"] == "5"
    assert "missing for" in told[0]["message"] and "running 5" in told[0]["message"]
    await reaches(mqtt, project, "worker", 5)
    fallen = states_after(mqtt, project, "worker", told[0]["timeNano"] / 1e9, 1)
    assert "fallback to 5" in (await fallen)[-1]["reason"]

    await queue.set(10)  # reads again: the metric decides (1), the fallback is over
    over = await mqtt.wait_for(lambda m: events(m, project, "worker", "fallback_end"))
    assert "reads again" in over[0]["message"]
    await reaches(mqtt, project, "worker", 1)
    assert len(events(mqtt, project, "worker", "fallback")) == 1


async def test_a_malformed_payload_is_an_error_never_a_crash_and_a_json_field_is_read(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, broker: tuple[str, int], project: str
) -> None:
    topic = f"{mqtt.prefix}-queues/{project}/stats"
    labels = QUEUE | {"autoscaler.metric.topic": topic, "autoscaler.metric.field": "queue.depth"}
    await make_container("worker", labels)
    app = await run_autoscaler()
    await publish(broker, topic, "lots")
    errors = await mqtt.wait_for(lambda m: events(m, project, "worker", "error"))
    assert "payload 'lots' is not JSON" in errors[0]["message"]
    await publish(broker, topic, json.dumps({"queue": {"size": 40}}))
    missing = await mqtt.wait_for(lambda m: events(m, project, "worker", "error")[1:])
    assert "has no queue.depth" in missing[0]["message"]
    assert not events(mqtt, project, "worker", "scale_up")

    await publish(broker, topic, json.dumps({"queue": {"depth": 40}}))
    ups = await mqtt.wait_for(lambda m: events(m, project, "worker", "scale_up"))
    assert (ups[0]["from"], ups[0]["to"]) == (1, 4)
    assert app.compose.inventory.ready.is_set()


async def test_a_wildcard_sums_its_members_and_holds_when_one_is_stale_or_malformed(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, broker: tuple[str, int], project: str
) -> None:
    base = f"{mqtt.prefix}-queues/{project}"
    labels = QUEUE | {"autoscaler.metric.topic": f"{base}/+/depth",
                      "autoscaler.metric.max-age": "2s",
                      "autoscaler.scale-down.stabilization": "0s"}  # fmt: skip
    await make_container("worker", labels)
    await run_autoscaler()
    async with exporting(broker, f"{base}/eu/depth") as eu, exporting(broker, f"{base}/us/depth") as us:  # fmt: skip
        await eu.set(40)
        await us.set(20)
        await us.set(21)  # the latest counts, not the sum of all
        await reaches(mqtt, project, "worker", 7)  # 40 + 21 = 61: ceil(61 / 10)
        ups = events(mqtt, project, "worker", "scale_up")
        assert ups[-1]["reason"].startswith(f"mqtt {base}/+/depth 61 vs 10")

        # eu's publisher stalls: the sum without it (21) would scale down to 3. It holds.
        before = len(events(mqtt, project, "worker", "error"))
        eu.stall()
        error = await mqtt.wait_for(
            lambda m: events(m, project, "worker", "error")[before:], within=20
        )
        assert f"{base}/eu/depth: no value for longer than its max age of 2s" in error[0]["message"]
        held = await states_after(mqtt, project, "worker", error[0]["timeNano"] / 1e9, 4)
        assert {s["replicas"] for s in held} == {7}

        # eu comes back, malformed: still missing, and said so.
        await eu.set("lots")
        bad = await mqtt.wait_for(lambda m: events(m, project, "worker", "error")[before + 1 :])
        assert f"{base}/eu/depth: payload 'lots' is not a number" in bad[0]["message"]
        held = await states_after(mqtt, project, "worker", bad[0]["timeNano"] / 1e9, 4)
        assert {s["replicas"] for s in held} == {7}
        assert not events(mqtt, project, "worker", "scale_down")

        # A good value again: the sum is trusted, and it is small now.
        await eu.set(9)
        await reaches(mqtt, project, "worker", 3)  # 9 + 21 = 30


async def test_a_retained_value_of_unknown_age_is_not_taken_for_a_fresh_one(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, broker: tuple[str, int], project: str
) -> None:
    topic = f"{mqtt.prefix}-queues/{project}/stats"
    # Retained before the autoscaler subscribes: it is handed over as an old retained message.
    await publish(broker, topic, json.dumps({"depth": 90}))
    labels = QUEUE | {"autoscaler.metric.topic": topic, "autoscaler.metric.field": "depth"}
    await make_container("worker", labels)
    await run_autoscaler()
    errors = await mqtt.wait_for(lambda m: events(m, project, "worker", "error"))
    assert "a retained value of unknown age" in errors[0]["message"]
    # Retained an hour ago by its publisher's own word: as stale.
    await publish(broker, topic, json.dumps({"depth": 90, "time": time.time() - 3600}))
    later = await states_after(mqtt, project, "worker", time.time(), 4)
    assert {s["replicas"] for s in later} == {1}
    assert not events(mqtt, project, "worker", "scale_up")

    await publish(broker, topic, json.dumps({"depth": 90, "time": time.time()}))
    ups = await mqtt.wait_for(lambda m: events(m, project, "worker", "scale_up"))
    assert (ups[0]["from"], ups[0]["to"]) == (1, 9)


async def test_a_topic_that_is_no_mqtt_filter_is_a_label_error_and_others_still_scale(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, queue: Queue, project: str
) -> None:
    await make_container("broken", QUEUE | {"autoscaler.metric.topic": "shop/#/depth"})
    await make_container("worker", QUEUE | {"autoscaler.metric.topic": queue.topic})
    app = await run_autoscaler()
    await queue.set(40)
    await reaches(mqtt, project, "worker", 4)
    errors = events(mqtt, project, "broken", "error")
    assert [e["Actor"]["Attributes"]["label"] for e in errors] == ["autoscaler.metric.topic"]
    assert "'#' must be a level of its own" in errors[0]["message"]
    assert states(mqtt, project, "broken")[-1]["phase"] == "error"
    assert app.compose.inventory.ready.is_set()


async def test_with_cpu_too_the_larger_proposal_wins(
    make_container: Any, make_load: Any, run_autoscaler: Any, mqtt: Mqtt, queue: Queue,
    project: str,
) -> None:  # fmt: skip
    topic = queue.topic
    load = make_load("worker")
    labels = QUEUE | {"autoscaler.metric.topic": topic, "autoscaler.cpu.target": "50"}
    await make_container("worker", labels, load=load)
    await run_autoscaler()
    await queue.set(50)  # the queue asks for 5
    load.set(300)  # CPU asks for ceil(300 / 125) = 3
    await reaches(mqtt, project, "worker", 5)
    assert events(mqtt, project, "worker", "scale_up")[-1]["reason"].startswith(f"mqtt {topic} 50")
    load.set(1000)  # CPU asks for ceil(1000 / 125) = 8 now, the queue still 5
    await reaches(mqtt, project, "worker", 8, within=60)
    assert events(mqtt, project, "worker", "scale_up")[-1]["reason"].startswith("cpu ")


async def test_a_prometheus_query_scales_and_an_unreachable_server_holds_and_says_so(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, exporter: Exporter,
    prometheus_relay: Relay, project: str,
) -> None:  # fmt: skip
    query = f'sum(queue_depth{{project="{project}"}})'
    base = QUEUE | {"autoscaler.metric.source": "prometheus", "autoscaler.metric.query": query,
                    "autoscaler.scale-down.stabilization": "0s"}  # fmt: skip
    await make_container("worker", base | {"autoscaler.metric.url": prometheus_relay.url})
    await run_autoscaler()
    exporter.set("queue_depth", project, 60)
    ups = await mqtt.wait_for(lambda m: events(m, project, "worker", "scale_up"), within=30)
    assert (ups[0]["from"], ups[0]["to"]) == (1, 6)
    assert ups[0]["reason"] == f"prometheus {query} 60 vs 10 a replica: propose 6"
    await reaches(mqtt, project, "worker", 6)

    # The server goes away with the queue drained: a value of 0 would take it to 1 at once.
    # (Errors from before: the first rounds may have asked before Prometheus scraped a value.)
    before = len(events(mqtt, project, "worker", "error"))
    exporter.set("queue_depth", project, 0)
    prometheus_relay.cut()
    errors = await mqtt.wait_for(lambda m: events(m, project, "worker", "error")[before:])
    assert f"{prometheus_relay.url} did not answer" in errors[0]["message"]
    held = await states_after(mqtt, project, "worker", errors[0]["timeNano"] / 1e9, 4)
    assert {s["replicas"] for s in held} == {6}
    assert all("did not answer" in (s["error"] or "") for s in held)
    assert not events(mqtt, project, "worker", "scale_down")


async def test_a_query_that_gives_nan_is_a_missing_value_reported_once_and_held(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, exporter: Exporter, project: str
) -> None:
    # What an idle rate() ratio gives: 0/0.
    query = f'sum(queue_depth{{project="{project}"}}) / sum(queue_rate{{project="{project}"}})'
    labels = QUEUE | {"autoscaler.metric.source": "prometheus", "autoscaler.metric.query": query,
                      "autoscaler.metric.url": exporter.url,
                      "autoscaler.scale-down.stabilization": "0s"}  # fmt: skip
    await make_container("worker", labels)
    await run_autoscaler()
    exporter.set("queue_rate", project, 1)
    exporter.set("queue_depth", project, 30)
    await reaches(mqtt, project, "worker", 3)

    before = len(events(mqtt, project, "worker", "error"))  # a first round's, before a scrape
    exporter.set("queue_rate", project, 0)
    exporter.set("queue_depth", project, 0)
    errors = await mqtt.wait_for(
        lambda m: events(m, project, "worker", "error")[before:], within=20
    )
    assert "gave NaN" in errors[0]["message"]
    held = await states_after(mqtt, project, "worker", errors[0]["timeNano"] / 1e9, 6)
    assert {s["replicas"] for s in held} == {3}
    assert all("gave NaN" in (s["error"] or "") for s in held)
    assert {s["phase"] for s in held} == {"holding"}
    assert len(events(mqtt, project, "worker", "error")[before:]) == 1
