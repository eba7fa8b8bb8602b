"""A RabbitMQ queue source's labels: a server's URL (AMQP, or the management API) without a
secret in it, a queue, what of it is counted and over which of the two; every wrong label is an
error that names it. And a server's answers: a count, or the reason there is none, naming the
label to look at."""

from __future__ import annotations

import math
from typing import Any

import pytest
from aiormq.exceptions import (
    AMQPConnectionError,
    ChannelAccessRefused,
    ChannelNotFoundEntity,
    InvalidFrameError,
    ProbableAuthenticationError,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st

from autoscaler.sources.rabbitmq import (
    Options,
    RabbitDriver,
    Refused,
    backlog,
    ready,
    refused_queue,
)
from tests.unit.sources import queues

AMQP = "amqp://rabbitmq:5672/"
HTTP = "http://rabbitmq:15672"
CELERY = queues.service(
    "rabbitmq", url=AMQP, queue="celery", user="scaler", credentials="rabbitmq-password", target="5"
)


def options(**labels: str) -> Options:
    return Options.model_validate({f"metric.{k}": v for k, v in labels.items()})


def test_a_celery_queue_is_messages_a_replica_as_any_metric_is() -> None:
    spec = queues.parse(CELERY)
    assert spec.metric is not None and spec.metric.source == "rabbitmq"
    assert spec.metric.name == "rabbitmq celery"
    assert queues.proposed(spec, 23.0) == 5  # ceil(23 ready / 5 a replica)


@pytest.mark.parametrize(
    ("labels", "vhost", "counted"),
    [
        pytest.param({"url": "amqp://rabbitmq"}, "/", "ready", id="amqp-default-vhost"),
        pytest.param({"url": "amqp://rabbitmq:5672/%2F"}, "/", "ready", id="amqp-slash-vhost-encoded"),
        pytest.param({"url": "amqps://rabbitmq:5671/shop", "ca": "/etc/ssl/ca.pem"}, "shop", "ready", id="amqps-vhost-and-ca"),
        pytest.param({"url": HTTP}, "/", "ready", id="http-default-vhost"),
        pytest.param({"url": HTTP, "vhost": "shop", "count": "ready+unacked"}, "shop", "ready+unacked", id="http-unacked"),
        pytest.param({"url": "https://rabbitmq/rabbitmq", "count": "publish-rate"}, "/", "publish-rate", id="https-path-prefix-rate"),
        pytest.param({"url": AMQP, "user": "scaler", "credentials": "rabbitmq-password"}, "/", "ready", id="user-and-secret-name"),
    ],
)  # fmt: skip
def test_good_labels(labels: dict[str, str], vhost: str, counted: str) -> None:
    read = options(**({"queue": "celery"} | labels))
    assert read.virtual_host == vhost
    assert read.counted == counted


@pytest.mark.parametrize(
    ("labels", "label", "words"),
    [
        pytest.param({"autoscaler.metric.url": "amqp://scaler:hunter2@rabbitmq/"}, "autoscaler.metric.url", "metric.credentials", id="a-password-in-the-url"),
        pytest.param({"autoscaler.metric.url": "http://:hunter2@rabbitmq:15672"}, "autoscaler.metric.url", "a password in a label", id="a-password-in-the-http-url"),
        pytest.param({"autoscaler.metric.url": "amqp://scaler@rabbitmq/"}, "autoscaler.metric.url", "metric.user", id="a-user-in-the-url"),
        pytest.param({"autoscaler.metric.url": "amqp://rabbitmq/?heartbeat=5"}, "autoscaler.metric.url", "no ?options", id="an-option-in-the-url"),
        pytest.param({"autoscaler.metric.url": "redis://rabbitmq:6379"}, "autoscaler.metric.url", "should match pattern", id="not-rabbitmq"),
        pytest.param({"autoscaler.metric.url": "amqp://rabbitmq/shop/eu"}, "autoscaler.metric.url", "%2F for /", id="a-vhost-with-a-bare-slash"),
        pytest.param({"autoscaler.metric.url": "amqp://rabbitmq:99999/"}, "autoscaler.metric.url", "not a URL", id="a-port-out-of-range"),
        pytest.param({"autoscaler.metric.queue": None}, "autoscaler.metric.queue", "required", id="no-queue"),
        pytest.param({"autoscaler.metric.queue": "q" * 256}, "autoscaler.metric.queue", "at most 255 bytes", id="a-queue-name-too-long"),
        pytest.param({"autoscaler.metric.count": "ready+unacked"}, "autoscaler.metric.count", "give its URL (http://host:15672)", id="unacked-over-amqp"),
        pytest.param({"autoscaler.metric.count": "publish-rate"}, "autoscaler.metric.count", "only over the management API", id="a-rate-over-amqp"),
        pytest.param({"autoscaler.metric.url": HTTP, "autoscaler.metric.count": "all"}, "autoscaler.metric.count", "'ready', 'ready+unacked' or 'publish-rate'", id="an-unknown-count"),
        pytest.param({"autoscaler.metric.vhost": "shop"}, "autoscaler.metric.vhost", "the vhost is the URL's path", id="a-vhost-label-over-amqp"),
        pytest.param({"autoscaler.metric.user": None}, "autoscaler.metric.user", "required with metric.credentials", id="a-secret-without-its-user"),
        pytest.param({"autoscaler.metric.credentials": None}, "autoscaler.metric.credentials", "required with metric.user", id="a-user-without-its-secret"),
        pytest.param({"autoscaler.metric.ca": "/ca.pem"}, "autoscaler.metric.ca", "only with an amqps:// or https://", id="a-ca-without-tls"),
        pytest.param({"autoscaler.metric.list": "celery"}, "autoscaler.metric.list", "not for metric.source=rabbitmq", id="a-redis-label"),
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
    st.sampled_from(["amqp", "amqps", "http", "https"]),
)
def test_a_url_with_a_password_in_it_is_never_taken(
    user: str | None, password: str, scheme: str
) -> None:
    url = f"{scheme}://{queues.userinfo(user, password)}rabbitmq:5672/"
    assert queues.refused_label(options, url=url, queue="q") == "metric.url"


LABELS = st.dictionaries(
    st.sampled_from(["url", "vhost", "queue", "count", "user", "credentials", "ca"]),
    st.one_of(
        st.sampled_from([AMQP, HTTP, "amqps://q:1/%2F", "https://q/p", "amqp://:pw@q",
                         "amqp://[::1]:5672/v", "ready", "ready+unacked", "publish-rate",
                         "celery", "../x", "a b", "a:b", ""]),
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
    assert (read.user is None) == (read.credentials is None)  # a user with its secret
    if read.over_amqp:  # a passive declare counts the ready messages; its vhost is the URL's
        assert read.counted == "ready" and read.vhost is None
    assert read.virtual_host
    assert read.server == options(**labels).server  # services naming one server share it


# -- a server's answers ----------------------------------------------------------------------------

QUEUE = options(url=HTTP, queue="celery")
BOTH = options(url=HTTP, queue="celery", count="ready+unacked")
RATE = options(url=HTTP, queue="celery", count="publish-rate")
OVER_AMQP = options(url=AMQP, queue="celery")


def stats(**fields: Any) -> dict[str, Any]:
    return {"name": "celery", "vhost": "/", "messages_ready": 7,
            "messages_unacknowledged": 3, "consumers": 2} | fields  # fmt: skip


@pytest.mark.parametrize(
    ("source", "reply", "value", "words"),
    [
        pytest.param(QUEUE, stats(), 7.0, None, id="ready"),
        pytest.param(BOTH, stats(), 10.0, None, id="ready-and-unacked"),
        pytest.param(QUEUE, stats(messages_ready=0), 0.0, None, id="an-empty-queue"),
        pytest.param(QUEUE, {"name": "celery", "vhost": "/"}, None, "metric.queue='celery': the management API has no messages_ready for it yet", id="a-new-queue-not-counted-yet"),
        pytest.param(BOTH, stats(messages_unacknowledged=None), None, "messages_unacknowledged is None, not a count", id="a-null-count"),
        pytest.param(QUEUE, stats(messages_ready=-1), None, "messages_ready is -1, not a count", id="a-negative-count"),
        pytest.param(QUEUE, stats(messages_ready=2.5), None, "not a count", id="a-fraction"),
        pytest.param(QUEUE, stats(messages_ready=True), None, "not a count", id="a-boolean"),
        pytest.param(QUEUE, [stats()], None, "an answer of another shape", id="a-list"),
        pytest.param(RATE, stats(message_stats={"publish": 9, "publish_details": {"rate": 1.5}}), 1.5, None, id="a-publish-rate"),
        pytest.param(RATE, stats(), 0.0, None, id="nothing-published-yet"),
        pytest.param(RATE, stats(message_stats={"publish": 9}), None, "management.rates_mode = none", id="rates-not-kept"),
        pytest.param(RATE, stats(message_stats={"publish_details": {"rate": -0.2}}), None, "a publish rate of -0.2", id="a-negative-rate"),
    ],
)  # fmt: skip
def test_an_answer_is_a_backlog_or_says_why_naming_the_label(
    source: Options, reply: Any, value: float | None, words: str | None
) -> None:
    assert queues.said(backlog(source, reply), words) == (value, words)


def test_a_passive_declare_tells_the_ready_messages_and_why_not() -> None:
    assert ready(OVER_AMQP, 12) == (12.0, None)
    assert ready(OVER_AMQP, None) == (None, "metric.queue='celery': a message count of None")
    missing = ChannelNotFoundEntity("NOT_FOUND - no queue 'celery' in vhost '/'")
    assert refused_queue(OVER_AMQP, missing) == "metric.queue='celery': no such queue in vhost '/'"
    locked = ChannelAccessRefused("ACCESS_REFUSED - access to queue 'celery' refused")
    assert refused_queue(OVER_AMQP, locked).startswith(
        "metric.queue='celery': the server refused to declare it: ACCESS_REFUSED"
    )


@pytest.mark.parametrize(
    ("source", "failure", "words"),
    [
        pytest.param(OVER_AMQP, ProbableAuthenticationError("ACCESS_REFUSED - Login was refused"), "metric.credentials: the server wants a password and none is named", id="none-named"),
        pytest.param(options(url=AMQP, queue="q", user="scaler", credentials="mq"), ProbableAuthenticationError("ACCESS_REFUSED"), "metric.credentials='mq': the server refused it for metric.user='scaler'", id="refused-over-amqp"),
        pytest.param(options(url=HTTP, queue="q", user="scaler", credentials="mq"), Refused("Login failed"), "AUTOSCALER_SECRETS__MQ", id="refused-over-http"),
        pytest.param(options(url=HTTP, queue="q", user="app", credentials="mq"), Refused("Not management user"), "metric.user='app': the management API refused it", id="no-management-tag"),
        pytest.param(options(url="amqp://mq/shop", queue="q"), InvalidFrameError("Expected one of ['Connection.OpenOk'], got <Connection.Close>"), "metric.url='amqp://mq/shop': the server refused the vhost 'shop'", id="no-such-vhost"),
        pytest.param(OVER_AMQP, AMQPConnectionError(111, "Connect call failed ('10.0.0.9', 5672)"), "metric.url='amqp://rabbitmq:5672/': no answer: Connect call failed", id="unreachable"),
        pytest.param(QUEUE, TimeoutError(), "metric.url='http://rabbitmq:15672': no answer: TimeoutError", id="a-timeout"),
    ],
)  # fmt: skip
def test_a_server_that_failed_names_the_label_to_look_at(
    source: Options, failure: BaseException, words: str
) -> None:
    assert words in RabbitDriver().failed(failure, source)


SCALARS = st.integers() | st.floats() | st.none() | st.booleans() | st.text(max_size=6)
REPLIES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["messages_ready", "messages_unacknowledged", "message_stats",
                         "publish", "publish_details", "rate", "x"]), inner, max_size=4),
    max_leaves=10,
)  # fmt: skip
QUEUES = st.fixed_dictionaries({}, optional={
    "messages_ready": SCALARS, "messages_unacknowledged": SCALARS,
    "message_stats": st.fixed_dictionaries({}, optional={
        "publish": SCALARS,
        "publish_details": st.fixed_dictionaries({}, optional={"rate": SCALARS}) | SCALARS,
    }) | SCALARS,
})  # fmt: skip
"""The queue's own fields, each of any value: most answers are of this shape."""


@settings(max_examples=800, deadline=None)
@given(st.sampled_from([QUEUE, BOTH, RATE]), QUEUES | REPLIES)
@example(QUEUE, {"messages_ready": -1})
@example(BOTH, {"messages_ready": 1 << 63, "messages_unacknowledged": 1 << 63})
@example(RATE, {"message_stats": {"publish_details": {"rate": math.nan}}})
@example(RATE, {"message_stats": {"publish_details": {"rate": -math.inf}}})
def test_whatever_the_api_answers_is_a_finite_count_or_a_reason(
    source: Options, reply: Any
) -> None:
    assert queues.fault(backlog(source, reply)) is None  # a backlog is never negative


@settings(max_examples=300, deadline=None)
@given(SCALARS | REPLIES)
@example(-1)
@example(1 << 63)
@example(10**400)
def test_whatever_a_declare_counts_is_a_finite_count_or_a_reason(count: Any) -> None:
    value, why = ready(OVER_AMQP, count)
    assert queues.fault((value, why), reason="metric.queue=") is None
    assert value is None or value == int(value)
