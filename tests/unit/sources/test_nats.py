"""A NATS JetStream source's labels: a server's URL without a user, token or password in it, a
stream and its consumer, what of the consumer's backlog is counted; every wrong label is an error
that names it. And the server's answers to CONSUMER.INFO: a count, or the reason there is none,
naming the label to look at."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nats.errors import AuthorizationError, Error, NoRespondersError

from autoscaler.sources.nats import NatsDriver, Options, UnreadableCA, backlog
from tests.unit.sources import queues

URL = "nats://queue:4222"
JOBS = queues.service("nats", url=URL, stream="JOBS", consumer="workers", target="5")


def options(**labels: str) -> Options:
    return Options.model_validate({f"metric.{k}": v for k, v in labels.items()})


def test_a_consumers_backlog_is_messages_a_replica_as_any_metric_is() -> None:
    spec = queues.parse(JOBS)
    assert spec.metric is not None and spec.metric.source == "nats"
    assert spec.metric.name == "nats JOBS workers"
    assert queues.proposed(spec, 23.0) == 5  # ceil(23 messages / 5 a replica)


@pytest.mark.parametrize(
    ("labels", "count"),
    [
        pytest.param({}, "pending", id="pending-by-default"),
        pytest.param({"count": "pending+unacked"}, "pending+unacked", id="jobs-in-flight-too"),
        pytest.param({"url": "tls://queue:4443", "ca": "/etc/ssl/queue-ca.pem"}, "pending", id="tls-with-a-ca"),
        pytest.param({"url": "nats://queue"}, "pending", id="the-default-port"),
        pytest.param({"user": "scaler", "credentials": "nats-password"}, "pending", id="user-and-secret-name"),
        pytest.param({"credentials": "nats-token"}, "pending", id="a-token-by-name"),
        pytest.param({"stream": "ORDERS-eu_1", "consumer": "worker-group"}, "pending", id="names-with-dashes"),
    ],
)  # fmt: skip
def test_good_labels(labels: dict[str, str], count: str) -> None:
    read = options(**({"url": URL, "stream": "JOBS", "consumer": "workers"} | labels))
    assert read.count == count


@pytest.mark.parametrize(
    ("labels", "label", "words"),
    [
        pytest.param({"autoscaler.metric.url": "nats://scaler:hunter2@queue:4222"}, "autoscaler.metric.url", "metric.credentials", id="a-password-in-the-url"),
        pytest.param({"autoscaler.metric.url": "nats://s3cr3t-token@queue:4222"}, "autoscaler.metric.url", "a user, token or password in a label", id="a-token-in-the-url"),
        pytest.param({"autoscaler.metric.url": "nats://@queue"}, "autoscaler.metric.url", "metric.user", id="an-empty-user"),
        pytest.param({"autoscaler.metric.url": "nats://queue/jobs"}, "autoscaler.metric.url", "only a host and a port", id="a-path"),
        pytest.param({"autoscaler.metric.url": "nats://queue?user=scaler"}, "autoscaler.metric.url", "only a host and a port", id="an-option"),
        pytest.param({"autoscaler.metric.url": "ws://queue:8080"}, "autoscaler.metric.url", "should match pattern", id="websocket-not-yet"),
        pytest.param({"autoscaler.metric.url": "nats://a:4222,nats://b:4222"}, "autoscaler.metric.url", "not a URL", id="a-list-of-servers"),
        pytest.param({"autoscaler.metric.url": "nats://:4222"}, "autoscaler.metric.url", "no host", id="no-host"),
        pytest.param({"autoscaler.metric.url": "nats://queue:0"}, "autoscaler.metric.url", "port 0", id="port-0"),
        pytest.param({"autoscaler.metric.stream": None}, "autoscaler.metric.stream", "required", id="no-stream"),
        pytest.param({"autoscaler.metric.consumer": None}, "autoscaler.metric.consumer", "required", id="no-consumer"),
        pytest.param({"autoscaler.metric.stream": "JOBS.>"}, "autoscaler.metric.stream", "should match pattern", id="a-wildcard-stream"),
        pytest.param({"autoscaler.metric.consumer": "a b"}, "autoscaler.metric.consumer", "should match pattern", id="a-consumer-with-a-space"),
        pytest.param({"autoscaler.metric.count": "lag"}, "autoscaler.metric.count", "'pending' or 'pending+unacked'", id="an-unknown-count"),
        pytest.param({"autoscaler.metric.user": "scaler"}, "autoscaler.metric.credentials", "required with metric.user", id="a-user-without-its-secret"),
        pytest.param({"autoscaler.metric.ca": "/ca.pem"}, "autoscaler.metric.ca", "only with a tls://", id="a-ca-without-tls"),
        pytest.param({"autoscaler.metric.list": "celery"}, "autoscaler.metric.list", "not for metric.source=nats", id="a-redis-label"),
        *queues.EVERY_SOURCE_REFUSES,
    ],
)  # fmt: skip
def test_bad_labels_are_label_errors_naming_the_label(
    labels: dict[str, str | None], label: str, words: str
) -> None:
    error = queues.label_error(JOBS, labels)
    assert error.label == label
    assert words in error.reason


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=8), st.one_of(st.none(), queues.PASSWORDS), st.sampled_from(["nats", "tls"])
)
def test_a_url_with_a_user_token_or_password_in_it_is_never_taken(
    user: str, password: str | None, scheme: str
) -> None:
    url = f"{scheme}://{queues.userinfo(user, password)}queue:4222"
    assert queues.refused_label(options, url=url, stream="JOBS", consumer="workers") == "metric.url"


LABELS = st.dictionaries(
    st.sampled_from(["url", "stream", "consumer", "count", "user", "credentials", "ca"]),
    st.one_of(
        st.sampled_from([URL, "tls://q:1", "nats://t@q", "nats://[::1]:4222", "pending",
                         "pending+unacked", "JOBS", "a.b", "*", "../x", "a b", ""]),
        st.text(max_size=20),
    ),
    max_size=7,
)  # fmt: skip


@settings(max_examples=800, deadline=None)
@given(LABELS)
def test_any_labels_give_options_or_an_error_naming_a_label(labels: dict[str, str]) -> None:
    read = queues.taken(options, labels)
    if read is None:
        return  # refused, naming a label
    assert "@" not in read.url.split("/")[2]
    for name in (read.stream, read.consumer):  # a token of the API's subject, never more
        assert name and not set(name) & set(".*> \t\r\n")
    assert read.user is None or read.credentials is not None
    assert read.server == options(**labels).server  # services naming one server share it


# -- the server's answers ------------------------------------------------------------------------

PENDING = options(url=URL, stream="JOBS", consumer="workers")
IN_FLIGHT = options(url=URL, stream="JOBS", consumer="workers", count="pending+unacked")


def info(**fields: Any) -> dict[str, Any]:
    return {"type": "io.nats.jetstream.api.v1.consumer_info_response", "stream_name": "JOBS",
            "name": "workers", "num_pending": 7, "num_ack_pending": 3, "num_waiting": 1,
            "num_redelivered": 0} | fields  # fmt: skip


def error(code: int, err_code: int, description: str) -> dict[str, Any]:
    return {"type": "io.nats.jetstream.api.v1.consumer_info_response",
            "error": {"code": code, "err_code": err_code, "description": description}}  # fmt: skip


@pytest.mark.parametrize(
    ("source", "reply", "value", "words"),
    [
        pytest.param(PENDING, info(), 7.0, None, id="not-yet-delivered"),
        pytest.param(IN_FLIGHT, info(), 10.0, None, id="and-not-yet-acknowledged"),
        pytest.param(PENDING, info(num_pending=0), 0.0, None, id="an-empty-backlog"),
        pytest.param(PENDING, error(404, 10059, "stream not found"), None, "metric.stream='JOBS': no such stream", id="no-such-stream"),
        pytest.param(PENDING, error(404, 10014, "consumer not found"), None, "metric.consumer='workers': stream 'JOBS' has no such consumer", id="no-such-consumer"),
        pytest.param(PENDING, error(503, 10039, "jetstream not enabled for account"), None, f"metric.url={URL!r}: jetstream not enabled for account", id="no-jetstream-for-the-account"),
        pytest.param(PENDING, NoRespondersError(), None, f"metric.url={URL!r}: JetStream is not enabled", id="no-jetstream-at-all"),
        pytest.param(PENDING, error(500, 10999, "something new"), None, "metric.consumer='workers': JetStream refused to read it: something new (code 500, err_code 10999)", id="another-error"),
        pytest.param(IN_FLIGHT, info(num_ack_pending=None), None, "metric.consumer='workers': no num_ack_pending in the answer", id="no-ack-pending"),
        pytest.param(PENDING, info(num_pending=-1), None, "no num_pending", id="a-negative-count"),
        pytest.param(PENDING, info(num_pending=True), None, "no num_pending", id="a-boolean"),
        pytest.param(PENDING, b"\xff not json", None, "an answer of another shape", id="not-json"),
        pytest.param(PENDING, {"error": "bad"}, None, "an error of another shape", id="an-error-string"),
    ],
)  # fmt: skip
def test_an_answer_is_a_backlog_or_says_why_naming_the_label(
    source: Options, reply: Any, value: float | None, words: str | None
) -> None:
    assert queues.said(backlog(source, reply), words) == (value, words)


SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
JUNK = st.recursive(
    SCALARS | st.binary(max_size=6) | st.just(NoRespondersError()),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["num_pending", "num_ack_pending", "error", "code", "err_code",
                         "description", "x"]), inner, max_size=5),
    max_leaves=10,
)  # fmt: skip
ERRORS = st.fixed_dictionaries({}, optional={
    "code": st.sampled_from([400, 404, 500, 503]) | SCALARS,
    "err_code": st.sampled_from([10014, 10039, 10059, 10076]) | SCALARS,
    "description": SCALARS,
})  # fmt: skip
ANSWERS = JUNK | st.fixed_dictionaries({}, optional={
    "num_pending": SCALARS, "num_ack_pending": SCALARS, "error": ERRORS | SCALARS,
})  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(st.sampled_from([PENDING, IN_FLIGHT]), ANSWERS)
def test_whatever_a_server_answers_is_a_finite_count_or_a_reason(
    source: Options, reply: Any
) -> None:
    assert queues.fault(backlog(source, reply)) is None  # a backlog is never negative


# -- why a server gave nothing ---------------------------------------------------------------------

WITH_PASSWORD = options(url=URL, stream="JOBS", consumer="workers", user="scaler",
                        credentials="nats-password")  # fmt: skip
WITH_CA = options(url="tls://queue:4443", stream="JOBS", consumer="workers", ca="/ca.pem")


@pytest.mark.parametrize(
    ("exc", "source", "words"),
    [
        pytest.param(Error("nats: 'Authorization Violation'"), WITH_PASSWORD, "metric.credentials='nats-password': the server refused it for metric.user='scaler'", id="a-refused-password"),
        pytest.param(AuthorizationError(), options(url=URL, stream="S", consumer="C", credentials="tok"), "metric.credentials='tok': the server refused it as a token", id="a-refused-token"),
        pytest.param(Error("nats: 'Authorization Violation'"), PENDING, "metric.credentials: the server wants", id="no-secret-named"),
        pytest.param(ConnectionRefusedError(111, "Connect call failed"), PENDING, f"metric.url={URL!r}: no answer: [Errno 111] Connect call failed", id="refused"),
        pytest.param(UnreadableCA("not a CA file that can be read"), WITH_CA, "metric.ca='/ca.pem': not a CA file", id="an-unreadable-ca"),
    ],
)  # fmt: skip
def test_a_failed_server_names_the_label_to_look_at(
    exc: BaseException, source: Options, words: str
) -> None:
    assert words in NatsDriver().failed(exc, source)
