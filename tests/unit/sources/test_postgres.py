"""A PostgreSQL source's labels: a server's URL without a user or secret in it, a query that is one
statement, a user always; every wrong label is an error that names it. A query's rows as a
value: one row of one finite number, not negative, or the reason there is none. And why a
server gave nothing, naming the label to look at."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from asyncpg.exceptions import (
    ConnectionDoesNotExistError,
    InvalidAuthorizationSpecificationError,
    InvalidCatalogNameError,
    InvalidPasswordError,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import PydanticCustomError

from autoscaler.sources.postgres import Options, PostgresDriver, statement, value
from tests.unit.sources import queues

URL = "postgresql://db:5432/shop"
QUEUED = "SELECT count(*) FROM jobs WHERE state = 'queued'"
LABELS = queues.service(
    "postgresql", url=URL, query=QUEUED, user="scaler", credentials="postgres-password", target="5"
)


def options(**labels: str) -> Options:
    return Options.model_validate({f"metric.{k}": v for k, v in labels.items()})


def test_a_queued_count_is_jobs_a_replica_as_any_metric_is() -> None:
    spec = queues.parse(LABELS)
    assert spec.metric is not None and spec.metric.source == "postgresql"
    assert spec.metric.name == f"postgresql {QUEUED}"
    assert queues.proposed(spec, 23.0) == 5  # ceil(23 queued / 5 a replica)


@pytest.mark.parametrize(
    ("labels", "query"),
    [
        pytest.param({}, QUEUED, id="a-count"),
        pytest.param({"url": "postgres://db/shop"}, QUEUED, id="postgres-scheme-default-port"),
        pytest.param({"url": "postgresql://[::1]:5432/shop"}, QUEUED, id="ipv6"),
        pytest.param({"query": QUEUED + " ;  -- done\n"}, QUEUED, id="a-trailing-semicolon-dropped"),
        pytest.param({"query": "SELECT count(*) FROM jobs WHERE note = 'a;b'"}, None, id="a-semicolon-in-a-string"),
        pytest.param({"query": 'SELECT count(*) FROM "odd;name"'}, None, id="a-semicolon-in-a-quoted-name"),
        pytest.param({"query": "SELECT length($q$;drop$q$)"}, None, id="a-semicolon-in-dollar-quotes"),
        pytest.param({"query": "SELECT 1 -- no; more\n"}, "SELECT 1 -- no; more", id="a-semicolon-in-a-comment"),
        pytest.param({"query": "SELECT 1 /* a; b */"}, None, id="a-semicolon-in-a-block-comment"),
        pytest.param({"credentials": None}, QUEUED, id="no-password-trust-auth"),
    ],
)  # fmt: skip
def test_good_labels(labels: dict[str, str | None], query: str | None) -> None:
    given_ = {"url": URL, "query": QUEUED, "user": "scaler", "credentials": "pw"} | labels
    read = options(**{k: v for k, v in given_.items() if v is not None})
    assert read.query == (query or labels["query"])


@pytest.mark.parametrize(
    ("labels", "label", "words"),
    [
        pytest.param({"autoscaler.metric.url": "postgresql://:hunter2@db/shop"}, "autoscaler.metric.url", "metric.credentials", id="a-password-in-the-url"),
        pytest.param({"autoscaler.metric.url": "postgresql://scaler:hunter2@db/shop"}, "autoscaler.metric.url", "a password in a label", id="user-and-password-in-the-url"),
        pytest.param({"autoscaler.metric.url": "postgresql://scaler@db/shop"}, "autoscaler.metric.url", "give it as metric.user", id="a-user-in-the-url"),
        pytest.param({"autoscaler.metric.url": "postgresql://db/shop?password=hunter2"}, "autoscaler.metric.url", "no ?options", id="a-password-as-an-option"),
        pytest.param({"autoscaler.metric.url": "postgresql://db/shop?sslmode=require"}, "autoscaler.metric.url", "no TLS yet", id="sslmode"),
        pytest.param({"autoscaler.metric.url": "postgresql://db:5432"}, "autoscaler.metric.url", "the path is the database", id="no-database"),
        pytest.param({"autoscaler.metric.url": "postgresql://db/shop/jobs"}, "autoscaler.metric.url", "the path is the database", id="a-path-not-a-database"),
        pytest.param({"autoscaler.metric.url": "postgresql://db1,db2/shop"}, "autoscaler.metric.url", "one host", id="several-hosts"),
        pytest.param({"autoscaler.metric.url": "postgresql://db:99999/shop"}, "autoscaler.metric.url", "not a URL", id="a-port-out-of-range"),
        pytest.param({"autoscaler.metric.url": "mysql://db/shop"}, "autoscaler.metric.url", "should match pattern", id="not-postgresql"),
        pytest.param({"autoscaler.metric.query": "SELECT 1; DELETE FROM jobs"}, "autoscaler.metric.query", "one statement only", id="two-statements"),
        pytest.param({"autoscaler.metric.query": "SELECT ';'; SELECT 2"}, "autoscaler.metric.query", "one statement only", id="two-after-a-quoted-semicolon"),
        pytest.param({"autoscaler.metric.query": " ; "}, "autoscaler.metric.query", "no statement", id="only-a-semicolon"),
        pytest.param({"autoscaler.metric.query": "-- nothing"}, "autoscaler.metric.query", "no statement", id="only-a-comment"),
        pytest.param({"autoscaler.metric.query": None}, "autoscaler.metric.query", "required", id="no-query"),
        pytest.param({"autoscaler.metric.user": None}, "autoscaler.metric.user", "required", id="no-user"),
        pytest.param({"autoscaler.metric.list": "celery"}, "autoscaler.metric.list", "not for metric.source=postgresql", id="a-redis-label"),
        *queues.EVERY_SOURCE_REFUSES,
    ],
)  # fmt: skip
def test_bad_labels_are_label_errors_naming_the_label(
    labels: dict[str, str | None], label: str, words: str
) -> None:
    error = queues.label_error(LABELS, labels)
    assert error.label == label
    assert words in error.reason


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=8)), queues.PASSWORDS, st.sampled_from(["postgres", "postgresql"]))  # fmt: skip
def test_a_url_with_a_user_or_password_in_it_is_never_taken(
    user: str | None, password: str, scheme: str
) -> None:
    for url in (
        f"{scheme}://{queues.userinfo(user, password)}db:5432/shop",
        f"{scheme}://{queues.userinfo(user, None)}db/shop",
    ):
        assert queues.refused_label(options, url=url, query=QUEUED, user="scaler") == "metric.url"


SQL = st.text(st.sampled_from("SELECT count(*) 1 ; ' \" $ q - / * \n x"), max_size=30)
"""Text made of what a statement's end hides in: quotes, dollar quotes, comments."""


@settings(max_examples=1000, deadline=None)
@given(st.one_of(SQL, st.text(max_size=30)))
def test_a_query_is_one_statement_kept_as_is_or_refused(query: str) -> None:
    try:
        kept = statement(query)
    except PydanticCustomError as exc:
        assert exc.type == "query"
        return
    assert kept and kept == kept.strip() and query.lstrip().startswith(kept)
    assert statement(kept) == kept  # nothing more to drop: no `;` with more after it


WORDS = st.from_regex(r"[A-Za-z0-9_(),*= ]*[A-Za-z0-9_]+[A-Za-z0-9_(),*= ]*", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(WORDS, WORDS)
def test_a_second_statement_is_always_refused(first: str, second: str) -> None:
    with pytest.raises(PydanticCustomError):
        statement(f"{first};{second}")


ANY_LABELS = st.dictionaries(
    st.sampled_from(["url", "query", "user", "credentials"]),
    st.one_of(
        st.sampled_from([URL, "postgres://q:1/d", "postgresql://u:pw@q/d", "postgresql://[::1]/d",
                         QUEUED, "SELECT 1; SELECT 2", "scaler", "../x", "a b", ""]),
        st.text(max_size=20),
    ),
    max_size=4,
)  # fmt: skip


@settings(max_examples=800, deadline=None)
@given(ANY_LABELS)
def test_any_labels_give_options_or_an_error_naming_a_label(labels: dict[str, str]) -> None:
    read = queues.taken(options, labels)
    if read is None:
        return  # refused, naming a label
    assert "@" not in read.url.split("/")[2]
    assert read.server == options(**labels).server  # services naming one server share it


# -- a query's rows ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "got", "words"),
    [
        pytest.param([(7,)], 7.0, None, id="a-count"),
        pytest.param([(0,)], 0.0, None, id="none-queued"),
        pytest.param([(Decimal("2.5"),)], 2.5, None, id="a-numeric"),
        pytest.param([(1.5,)], 1.5, None, id="a-float"),
        pytest.param([], None, "metric.query: no row, not one", id="no-row"),
        pytest.param([(1,), (2,)], None, "metric.query: several rows, not one", id="two-rows"),
        pytest.param([(1, 2)], None, "metric.query: a row of 2 columns, not one", id="two-columns"),
        pytest.param([()], None, "metric.query: a row of 0 columns, not one", id="no-columns"),
        pytest.param([(None,)], None, "metric.query: NULL, not a number", id="null"),
        pytest.param([("7",)], None, "metric.query: text '7', not a number", id="text"),
        pytest.param([(True,)], None, "metric.query: a bool True, not a number", id="a-boolean"),
        pytest.param([(-1,)], None, "metric.query: -1, a negative number", id="negative"),
        pytest.param([(Decimal("NaN"),)], None, "metric.query: NaN, not a finite number", id="numeric-nan"),
        pytest.param([(math.inf,)], None, "metric.query: inf, not a finite number", id="infinity"),
        pytest.param([(10**400,)], None, "not a finite number", id="an-int-beyond-a-float"),
    ],
)  # fmt: skip
def test_rows_are_a_value_or_say_why_naming_metric_query(
    rows: list[tuple[Any, ...]], got: float | None, words: str | None
) -> None:
    number, why = value(rows)
    assert queues.said((number, why), words) == (got, words)
    assert why is None or why.startswith("metric.query: ")


CELLS = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.decimals() | st.text(max_size=5)
    | st.binary(max_size=3) | st.timedeltas() | st.datetimes()
)  # fmt: skip


@settings(max_examples=800, deadline=None)
@given(st.lists(st.lists(CELLS, max_size=3).map(tuple), max_size=3))
def test_whatever_rows_a_query_gives_are_a_finite_count_or_a_reason(
    rows: list[tuple[Any, ...]],
) -> None:
    number, why = value(rows)
    assert queues.fault((number, why), reason="metric.query: ") is None
    assert number is None or (len(rows) == 1 and len(rows[0]) == 1)


# -- why a server gave nothing -------------------------------------------------------------------

SOURCE = options(url=URL, query=QUEUED, user="scaler", credentials="postgres-password")


@pytest.mark.parametrize(
    ("source", "exc", "words"),
    [
        pytest.param(SOURCE, InvalidPasswordError("password authentication failed"), "metric.credentials='postgres-password': the server refused it for metric.user='scaler'", id="a-refused-password"),
        pytest.param(options(url=URL, query=QUEUED, user="scaler"), InvalidPasswordError("x"), "metric.credentials: the server wants a password for metric.user='scaler'", id="no-password-named"),
        pytest.param(SOURCE, InvalidAuthorizationSpecificationError('role "scaler" does not exist'), "metric.user='scaler': the server refused the login", id="no-such-role"),
        pytest.param(SOURCE, InvalidCatalogNameError('database "shop" does not exist'), f"metric.url={URL!r}: no such database", id="no-such-database"),
        pytest.param(SOURCE, ConnectionRefusedError(111, "Connection refused"), f"metric.url={URL!r}: no answer", id="unreachable"),
        pytest.param(SOURCE, ConnectionDoesNotExistError("connection was closed"), f"metric.url={URL!r}: no answer", id="lost"),
    ],
)  # fmt: skip
def test_a_server_that_gave_nothing_names_the_label_to_look_at(
    source: Options, exc: BaseException, words: str
) -> None:
    assert PostgresDriver().failed(exc, source).startswith(words)
