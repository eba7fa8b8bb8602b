"""The controller's side of the per-node agents: which samples count, and which nodes are silent."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.backends.swarm.agents import AgentFeed, health_of, topic
from autoscaler.settings import MqttSettings

WALL = 1_800_000_000.0
"""The wall clock of every test here: the agents' messages carry its time."""


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def on(node: str) -> str:
    """The topic of `node`'s agent."""
    return topic("autoscaler", node)


PLACED = {"a": "n1", "b": "n2"}
"""Where the Swarm runs the tests' containers: `a` on node n1, `b` on n2."""


def reading(cpu: float, health: str | None) -> dict[str, object]:
    return {"cpu": cpu, "memory": None, "memory_bytes": 1024, "throttled": None,
            "source": "cgroup", "health": health}  # fmt: skip


def message(
    node: str, samples: dict[str, float], health: str | None = None, *, at: float = WALL
) -> bytes:
    body = {
        "node": node,
        "hostname": f"host-{node}",
        "time": at,
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
    feed = AgentFeed(MqttSettings(), interval=1.0, now=clock, wall=lambda: WALL)
    feed._receive(on("n1"), message("n1", {"a": 40.0}))
    feed._receive(on("n2"), message("n2", {"b": 60.0}))
    samples, _ = feed.readings(PLACED)
    assert {cid: s.cpu for cid, s in samples.items()} == {"a": 40.0, "b": 60.0}
    assert samples["a"].source == "cgroup@host-n1"


def test_a_node_not_heard_within_three_intervals_is_silent_and_its_samples_are_missing() -> None:
    clock = Clock()
    feed = AgentFeed(MqttSettings(), interval=1.0, now=clock, wall=lambda: WALL)
    feed._receive(on("n1"), message("n1", {"a": 40.0}))
    clock.now += 2.0
    feed._receive(on("n2"), message("n2", {"b": 60.0}))
    clock.now += 1.5
    assert set(feed.readings(PLACED)[0]) == {"b"}
    nodes = {"n1": "host-n1", "n2": "host-n2", "n3": "host-n3"}
    assert feed.silent(nodes) == {"n1": "host-n1", "n3": "host-n3"}


def test_a_node_never_heard_from_is_silent_at_once_but_settled_only_after_three_intervals() -> None:
    clock = Clock()
    feed = AgentFeed(MqttSettings(), interval=1.0, now=clock, wall=lambda: WALL)
    clock.now += 2.0
    assert feed.silent({"n1": "host-n1"}) == {"n1": "host-n1"}  # its tasks are unseen
    assert not feed.settled  # but not worth a warning yet
    clock.now += 1.5
    assert feed.settled


def test_health_verdicts_travel_with_the_samples() -> None:
    feed = AgentFeed(MqttSettings(), interval=1.0, now=Clock(), wall=lambda: WALL)
    feed._receive(on("n1"), message("n1", {"a": 40.0}, health="starting"))
    assert feed.readings(PLACED)[1] == {"a": "starting"}


def test_a_message_that_is_not_one_is_ignored() -> None:
    feed = AgentFeed(MqttSettings(), interval=1.0, now=Clock(), wall=lambda: WALL)
    feed._receive(on("n1"), b"not json")
    feed._receive(on("n1"), b'{"node": "n1"}')
    assert feed.readings(PLACED)[0] == {}


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
        {"node": st.one_of(st.just("n1"), st.text(max_size=6), st.integers(), st.none()),
         "samples": st.one_of(st.dictionaries(st.text(max_size=4), READING, max_size=3), JSON)},
        optional={"hostname": JSON, "time": st.one_of(st.just(WALL), st.floats(), st.text(max_size=3))},
    ),
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(MESSAGES)
def test_whatever_is_published_on_the_agents_topic_is_a_message_or_ignored(body: object) -> None:
    feed = AgentFeed(MqttSettings(), interval=1.0, now=Clock(), wall=lambda: WALL)
    feed._receive(on("n1"), json.dumps(body).encode())
    samples, health = feed.readings(PLACED)
    for sample in samples.values():
        assert sample.cpu is None or 0 <= sample.cpu < float("inf")
        assert sample.memory is None or 0 <= sample.memory < float("inf")
        assert sample.throttled is None or 0 <= sample.throttled <= 1
    assert set(health.values()) <= {None, "healthy", "starting", "unhealthy"}


def test_a_sample_that_is_not_a_number_is_no_message() -> None:
    feed = AgentFeed(MqttSettings(), interval=1.0, now=Clock(), wall=lambda: WALL)
    bad = json.loads(message("n1", {"a": 40.0}))
    bad["samples"]["a"]["cpu"] = "x"
    feed._receive(on("n1"), json.dumps(bad).encode())
    assert feed.readings(PLACED)[0] == {}
    feed._receive(on("n1"), b"\xff not json")
    assert feed.readings(PLACED)[0] == {}


def test_nodes_not_heard_from_lately_are_forgotten_not_kept_for_ever() -> None:
    clock = Clock()
    feed = AgentFeed(MqttSettings(), interval=1.0, now=clock, wall=lambda: WALL)
    for i in range(50):  # nodes come and go (a cluster that replaces its nodes)
        feed._receive(on(f"n{i}"), message(f"n{i}", {f"c{i}": 10.0}))
        clock.now += 1.0
    assert len(feed._nodes) <= 4  # those heard from within three intervals
    assert feed.silent({"n0": "host-n0"}) == {"n0": "host-n0"}


def test_an_agent_speaks_for_its_own_nodes_tasks_only() -> None:
    feed = AgentFeed(MqttSettings(), interval=1.0, now=Clock(), wall=lambda: WALL)
    # n2's agent (or whoever can publish on its topic) tells of a, which runs on n1.
    feed._receive(on("n2"), message("n2", {"a": 100.0, "b": 30.0}))
    assert {cid: s.cpu for cid, s in feed.readings(PLACED)[0].items()} == {"b": 30.0}


def test_a_message_naming_another_node_than_its_topics_is_ignored() -> None:
    feed = AgentFeed(MqttSettings(), interval=1.0, now=Clock(), wall=lambda: WALL)
    feed._receive(on("n2"), message("n1", {"a": 100.0}))
    assert feed.readings(PLACED)[0] == {}


def test_a_message_whose_time_is_far_from_the_clock_is_a_replay_and_ignored() -> None:
    feed = AgentFeed(MqttSettings(), interval=1.0, now=Clock(), wall=lambda: WALL)
    feed._receive(on("n1"), message("n1", {"a": 90.0}, at=WALL - 31))
    feed._receive(on("n2"), message("n2", {"b": 90.0}, at=WALL + 31))
    assert feed.readings(PLACED)[0] == {}
    feed._receive(on("n1"), message("n1", {"a": 40.0}, at=WALL - 2))  # clocks a little apart
    assert set(feed.readings(PLACED)[0]) == {"a"}


def test_readings_out_of_any_range_a_container_can_have_make_no_message() -> None:
    feed = AgentFeed(MqttSettings(), interval=1.0, now=Clock(), wall=lambda: WALL)
    for field, value in (("cpu", 1e6), ("memory", 250.0), ("throttled", 2.0), ("cpu", -1.0)):
        bad = json.loads(message("n1", {"a": 40.0}))
        bad["samples"]["a"][field] = value
        feed._receive(on("n1"), json.dumps(bad).encode())
    untimed = json.loads(message("n1", {"a": 40.0}))
    del untimed["time"]
    feed._receive(on("n1"), json.dumps(untimed).encode())
    assert feed.readings(PLACED)[0] == {}
