"""The controller's side of the per-node agents: which samples count, and which nodes are silent."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.settings import MqttSettings
from autoscaler.swarm.agents import AgentFeed, health_of


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def reading(cpu: float, health: str | None) -> dict[str, object]:
    return {"cpu": cpu, "memory": None, "memory_bytes": 1024, "throttled": None,
            "source": "cgroup", "health": health}  # fmt: skip


def message(node: str, samples: dict[str, float], health: str | None = None) -> bytes:
    body = {
        "node": node,
        "hostname": f"host-{node}",
        "time": 0,
        "samples": {
            cid: {
                "cpu": cpu,
                "memory": None,
                "memory_bytes": 1024,
                "throttled": None,
                "source": "cgroup",
                "health": health,
            }
            for cid, cpu in samples.items()
        },
    }
    return json.dumps(body).encode()


def test_samples_of_every_node_heard_lately_are_merged_by_container() -> None:
    clock = Clock()
    feed = AgentFeed(MqttSettings(), interval=1.0, now=clock)
    feed._receive(message("n1", {"a": 40.0}))
    feed._receive(message("n2", {"b": 60.0}))
    samples = feed.samples()
    assert {cid: s.cpu for cid, s in samples.items()} == {"a": 40.0, "b": 60.0}
    assert samples["a"].source == "cgroup@host-n1"


def test_a_node_not_heard_within_three_intervals_is_silent_and_its_samples_are_missing() -> None:
    clock = Clock()
    feed = AgentFeed(MqttSettings(), interval=1.0, now=clock)
    feed._receive(message("n1", {"a": 40.0}))
    clock.now += 2.0
    feed._receive(message("n2", {"b": 60.0}))
    clock.now += 1.5
    assert set(feed.samples()) == {"b"}
    nodes = {"n1": "host-n1", "n2": "host-n2", "n3": "host-n3"}
    assert feed.silent(nodes) == {"n1": "host-n1", "n3": "host-n3"}


def test_a_node_never_heard_from_is_silent_at_once_but_settled_only_after_three_intervals() -> None:
    clock = Clock()
    feed = AgentFeed(MqttSettings(), interval=1.0, now=clock)
    clock.now += 2.0
    assert feed.silent({"n1": "host-n1"}) == {"n1": "host-n1"}  # its tasks are unseen
    assert not feed.settled  # but not worth a warning yet
    clock.now += 1.5
    assert feed.settled


def test_health_verdicts_travel_with_the_samples() -> None:
    feed = AgentFeed(MqttSettings(), interval=1.0, now=Clock())
    feed._receive(message("n1", {"a": 40.0}, health="starting"))
    assert feed.health() == {"a": "starting"}


def test_a_message_that_is_not_one_is_ignored() -> None:
    feed = AgentFeed(MqttSettings(), interval=1.0, now=Clock())
    feed._receive(b"not json")
    feed._receive(b'{"node": "n1"}')
    assert feed.samples() == {}


def test_health_is_read_from_the_listing_status_text() -> None:
    assert health_of("Up 3 minutes (healthy)") == "healthy"
    assert health_of("Up 2 seconds (health: starting)") == "starting"
    assert health_of("Up 1 minute (unhealthy)") == "unhealthy"
    assert health_of("Up 5 seconds") is None


JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
READING = st.fixed_dictionaries(
    {},
    optional={
        "cpu": st.one_of(st.floats(), st.integers(), st.text(max_size=3), st.none()),
        "memory": st.one_of(st.floats(), st.none(), st.booleans()),
        "memory_bytes": st.one_of(st.integers(), st.floats(), st.none()),
        "throttled": st.one_of(st.floats(), st.none()),
        "source": st.one_of(st.text(max_size=8), st.integers(), st.none()),
        "health": st.one_of(
            st.sampled_from(["healthy", "starting", "unhealthy", "sick"]), st.none()
        ),
    },
)
MESSAGES = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"node": st.one_of(st.text(max_size=6), st.integers(), st.none()),
         "samples": st.one_of(st.dictionaries(st.text(max_size=4), READING, max_size=3), JSON)},
        optional={"hostname": JSON, "time": st.one_of(st.floats(), st.text(max_size=3))},
    ),
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(MESSAGES)
def test_whatever_is_published_on_the_agents_topic_is_a_message_or_ignored(body: object) -> None:
    feed = AgentFeed(MqttSettings(), interval=1.0, now=Clock())
    feed._receive(json.dumps(body).encode())
    for sample in feed.samples().values():
        assert sample.cpu is None or 0 <= sample.cpu < float("inf")
        assert sample.memory is None or 0 <= sample.memory < float("inf")
        assert sample.throttled is None or 0 <= sample.throttled <= 1
    assert set(feed.health().values()) <= {None, "healthy", "starting", "unhealthy"}


def test_a_sample_that_is_not_a_number_is_no_message() -> None:
    feed = AgentFeed(MqttSettings(), interval=1.0, now=Clock())
    bad = json.loads(message("n1", {"a": 40.0}))
    bad["samples"]["a"]["cpu"] = "x"
    feed._receive(json.dumps(bad).encode())
    assert feed.samples() == {}
    feed._receive(b"\xff not json")
    assert feed.samples() == {}


def test_nodes_not_heard_from_lately_are_forgotten_not_kept_for_ever() -> None:
    clock = Clock()
    feed = AgentFeed(MqttSettings(), interval=1.0, now=clock)
    for i in range(50):  # nodes come and go (a cluster that replaces its nodes)
        feed._receive(message(f"n{i}", {f"c{i}": 10.0}))
        clock.now += 1.0
    assert len(feed._nodes) <= 4  # those heard from within three intervals
    assert feed.silent({"n0": "host-n0"}) == {"n0": "host-n0"}
