"""A Redis queue source's labels: a server's URL without a secret in it, exactly one of a list or
a stream with its group, what of a group's backlog is counted; every wrong label is an error that
names it. And a server's replies to a backlog: a count, or the reason there is none, naming the
label to look at."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from redis.exceptions import ResponseError

from autoscaler.sources.redis import Options, backlog
from tests.unit.sources import queues

URL = "redis://queue:6379/0"
CELERY = queues.service("redis", url=URL, list="celery", target="5")


def options(**labels: str) -> Options:
    return Options.model_validate({f"metric.{k}": v for k, v in labels.items()})


def test_a_celery_queue_is_items_a_replica_as_any_metric_is() -> None:
    spec = queues.parse(CELERY)
    assert spec.metric is not None and spec.metric.source == "redis"
    assert spec.metric.name == "redis celery"
    assert queues.proposed(spec, 23.0) == 5  # ceil(23 backlog / 5 a replica)


@pytest.mark.parametrize(
    ("labels", "counted"),
    [
        pytest.param({"list": "rq:queue:default"}, None, id="rq-list"),
        pytest.param({"stream": "jobs", "group": "workers"}, "lag+pending", id="stream-default-count"),
        pytest.param({"stream": "jobs", "group": "workers", "count": "pending"}, "pending", id="pending-only"),
        pytest.param({"list": "q", "url": "rediss://queue:6380", "ca": "/etc/ssl/queue-ca.pem"}, None, id="tls-with-a-ca"),
        pytest.param({"list": "q", "user": "scaler", "credentials": "redis-password"}, None, id="user-and-secret-name"),
    ],
)  # fmt: skip
def test_good_labels(labels: dict[str, str], counted: str | None) -> None:
    read = options(**({"url": URL} | labels))
    if counted is not None:
        assert read.counted == counted


@pytest.mark.parametrize(
    ("labels", "label", "words"),
    [
        pytest.param({"autoscaler.metric.url": "redis://:hunter2@queue:6379/0"}, "autoscaler.metric.url", "metric.credentials", id="a-password-in-the-url"),
        pytest.param({"autoscaler.metric.url": "redis://scaler:hunter2@queue/0"}, "autoscaler.metric.url", "a password in a label", id="user-and-password-in-the-url"),
        pytest.param({"autoscaler.metric.url": "redis://scaler@queue/0"}, "autoscaler.metric.url", "metric.user", id="a-user-in-the-url"),
        pytest.param({"autoscaler.metric.url": "redis://queue/0?password=hunter2"}, "autoscaler.metric.url", "no ?options", id="a-password-as-an-option"),
        pytest.param({"autoscaler.metric.url": "http://queue:6379"}, "autoscaler.metric.url", "should match pattern", id="not-redis"),
        pytest.param({"autoscaler.metric.url": "redis://queue/jobs"}, "autoscaler.metric.url", "database number", id="a-path-not-a-db"),
        pytest.param({"autoscaler.metric.url": "redis://queue:99999/0"}, "autoscaler.metric.url", "not a URL", id="a-port-out-of-range"),
        pytest.param({"autoscaler.metric.stream": "jobs", "autoscaler.metric.group": "g"}, "autoscaler.metric.stream", "exactly one of metric.list", id="a-list-and-a-stream"),
        pytest.param({"autoscaler.metric.list": None}, "autoscaler.metric.stream", "exactly one of metric.list", id="neither"),
        pytest.param({"autoscaler.metric.list": None, "autoscaler.metric.stream": "jobs"}, "autoscaler.metric.group", "required with metric.stream", id="a-stream-without-its-group"),
        pytest.param({"autoscaler.metric.group": "g"}, "autoscaler.metric.group", "only with metric.stream", id="a-group-of-a-list"),
        pytest.param({"autoscaler.metric.count": "pending"}, "autoscaler.metric.count", "only with metric.stream", id="a-count-of-a-list"),
        pytest.param({"autoscaler.metric.list": None, "autoscaler.metric.stream": "s", "autoscaler.metric.group": "g", "autoscaler.metric.count": "all"}, "autoscaler.metric.count", "'lag', 'pending' or 'lag+pending'", id="an-unknown-count"),
        pytest.param({"autoscaler.metric.ca": "/ca.pem"}, "autoscaler.metric.ca", "only with a rediss://", id="a-ca-without-tls"),
        pytest.param({"autoscaler.metric.query": "up"}, "autoscaler.metric.query", "not for metric.source=redis", id="a-prometheus-label"),
        *queues.EVERY_SOURCE_REFUSES,
    ],
)  # fmt: skip
def test_bad_labels_are_label_errors_naming_the_label(
    labels: dict[str, str | None], label: str, words: str
) -> None:
    error = queues.label_error(CELERY, labels)
    assert error.label == label
    assert words in error.reason


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.none(), st.text(max_size=8)),
    queues.PASSWORDS,
    st.sampled_from(["redis", "rediss"]),
)
def test_a_url_with_a_password_in_it_is_never_taken(
    user: str | None, password: str, scheme: str
) -> None:
    url = f"{scheme}://{queues.userinfo(user, password)}queue:6379/0"
    assert queues.refused_label(options, url=url, list="q") == "metric.url"


LABELS = st.dictionaries(
    st.sampled_from(["url", "list", "stream", "group", "count", "user", "credentials", "ca"]),
    st.one_of(
        st.sampled_from([URL, "rediss://q:1/2", "redis://:pw@q", "redis://[::1]:6379/0",
                         "lag", "pending", "lag+pending", "celery", "../x", "a b", ""]),
        st.text(max_size=20),
    ),
    max_size=8,
)  # fmt: skip


@settings(max_examples=800, deadline=None)
@given(LABELS)
def test_any_labels_give_options_or_an_error_naming_a_label(labels: dict[str, str]) -> None:
    read = queues.taken(options, labels)
    if read is None:
        return  # refused, naming a label
    assert (read.list_key is None) != (read.stream is None)
    assert (read.group is None) == (read.stream is None)
    assert "@" not in read.url.split("/")[2]
    assert read.server == options(**labels).server  # services naming one server share it


# -- a server's replies ----------------------------------------------------------------------------

LIST = options(url=URL, list="celery")
STREAM = options(url=URL, stream="jobs", group="workers")
WRONGTYPE = ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")


def group(name: str = "workers", **fields: Any) -> dict[str, Any]:
    return {"name": name, "consumers": 2, "pending": 3, "last-delivered-id": "1-0",
            "entries-read": 1, "lag": 4} | fields  # fmt: skip


@pytest.mark.parametrize(
    ("source", "reply", "types", "value", "words"),
    [
        pytest.param(LIST, 7, {}, 7.0, None, id="a-lists-length"),
        pytest.param(LIST, 0, {}, 0.0, None, id="no-such-list-is-an-empty-queue"),
        pytest.param(LIST, WRONGTYPE, {"celery": "hash"}, None, "metric.list='celery': the key is a hash, not a list", id="a-hash-not-a-list"),
        pytest.param(STREAM, [group("other"), group()], {}, 7.0, None, id="lag-plus-pending"),
        pytest.param(options(url=URL, stream="jobs", group="workers", count="lag"), [group()], {}, 4.0, None, id="lag"),
        pytest.param(options(url=URL, stream="jobs", group="workers", count="pending"), [group(lag=None)], {}, 3.0, None, id="pending-needs-no-lag"),
        pytest.param(STREAM, [group(lag=None)], {}, None, "Redis cannot tell the lag of group 'workers'", id="a-nil-lag-is-missing"),
        pytest.param(STREAM, [{k: v for k, v in group().items() if k != "lag"}], {}, None, "older than 7", id="redis-6-has-no-lag"),
        pytest.param(STREAM, [group("other")], {}, None, "metric.group='workers': stream 'jobs' has no such group (it has other)", id="no-such-group"),
        pytest.param(STREAM, [], {}, None, "(it has none)", id="a-stream-without-groups"),
        pytest.param(STREAM, ResponseError("no such key"), {}, None, "metric.stream='jobs': no such stream", id="no-such-stream"),
        pytest.param(STREAM, WRONGTYPE, {"jobs": "list"}, None, "the key is a list, not a stream", id="a-list-not-a-stream"),
        pytest.param(LIST, ResponseError("NOPERM this user has no permissions"), {}, None, "metric.list='celery': the server refused to read it: NOPERM", id="an-acl-refusal"),
        pytest.param(LIST, "7", {}, None, "another shape", id="a-string"),
    ],
)  # fmt: skip
def test_a_reply_is_a_backlog_or_says_why_naming_the_label(
    source: Options, reply: Any, types: dict[str, str], value: float | None, words: str | None
) -> None:
    assert queues.said(backlog(source, reply, types), words) == (value, words)


REPLIES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
    | st.builds(ResponseError, st.sampled_from(["WRONGTYPE x", "no such key", "ERR x"])),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["name", "lag", "pending", "x"]), inner, max_size=4),
    max_leaves=8,
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@example(LIST, -1, {})
@example(STREAM, [group(lag=-2, pending=1)], {})
@given(
    st.sampled_from([LIST, STREAM]),
    REPLIES,
    st.dictionaries(st.sampled_from(["celery", "jobs"]), st.text(max_size=5)),
)
def test_whatever_a_server_replies_is_a_finite_count_or_a_reason(
    source: Options, reply: Any, types: dict[str, str]
) -> None:
    assert queues.fault(backlog(source, reply, types)) is None  # a backlog is never negative
