"""What the queue sources' unit tests share: a service's labels parsed as the core parses them,
and what is asked of every queue source's labels and answers. The tests say what they expect;
these only find it (pytest shows what they return where a test's assertion fails)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TypeVar
from urllib.parse import quote

import pytest
from hypothesis import strategies as st
from pydantic import ValidationError

from autoscaler.control import spec as specs
from autoscaler.errors import LabelError
from autoscaler.labels import ServiceKey
from autoscaler.sources.registry import OPTIONS
from autoscaler.sources.servers import Answer
from policies.base import ReplicaSample, Signal
from policies.pipeline import Pipeline, Round

T = TypeVar("T")

WORKER = ServiceKey("shop", "worker")
PASSWORDS = st.text(st.characters(codec="ascii", exclude_characters="/?#@\x00"), max_size=12)
"""Secrets as a user might paste them into a URL (quoted there)."""
EVERY_SOURCE_REFUSES = [
    pytest.param({"autoscaler.metric.credentials": "../etc/shadow"}, "autoscaler.metric.credentials", "should match pattern", id="a-secret-name-that-is-a-path"),
    pytest.param({"autoscaler.metric.password": "hunter2"}, "autoscaler.metric.password", "unknown label", id="no-password-label"),
]  # fmt: skip
"""Bad labels of every queue source, rows of its table (labels, the label the error names,
words of its reason): a secret's name is never a path, and no label is a password."""


def service(source: str, **metric: str) -> dict[str, str]:
    """The labels of a Compose service `shop-worker` scaled on the metric `source` with these
    `autoscaler.metric.*` labels."""
    return {
        "com.docker.compose.project": WORKER.project,
        "com.docker.compose.service": WORKER.service,
        "autoscaler.enable": "true",
        "autoscaler.max": "10",
        "autoscaler.metric.source": source,
    } | {f"autoscaler.metric.{name}": value for name, value in metric.items()}


def parse(labels: Mapping[str, str]) -> specs.ServiceSpec:
    """The service's spec, as the core parses its labels."""
    return specs.parse(WORKER, dict(labels), OPTIONS)


def label_error(labels: Mapping[str, str], changed: Mapping[str, str | None]) -> LabelError:
    """The error of the service's `labels` with `changed` (None: taken out); fails where there
    is none."""
    merged = {k: v for k, v in {**labels, **changed}.items() if v is not None}
    with pytest.raises(LabelError) as caught:
        parse(merged)
    return caught.value


def proposed(spec: specs.ServiceSpec, value: float) -> int:
    """The count the service's policy proposes, at two replicas, for `value` of its metric."""
    assert spec.metric is not None
    samples = (ReplicaSample("r0", 10.0), ReplicaSample("r1", 10.0))
    round_ = Round(1, 10, samples, 1_000.0, 1.764e9, Signal(spec.metric.name, value, age=0.0))
    return Pipeline(spec.new_policy(), spec.behavior).decide(round_).decision.proposal


def userinfo(user: str | None, password: str | None) -> str:
    """A URL's `user:password@`, each quoted; the parts that are None left out."""
    secret = "" if password is None else ":" + quote(password, safe="")
    return f"{quote(user or '', safe='')}{secret}@"


def refused_label(options: Callable[..., object], **labels: str) -> str:
    """The label that the first error of `options(**labels)` names; fails where they are taken."""
    with pytest.raises(ValidationError) as caught:
        options(**labels)
    (label,) = caught.value.errors()[0]["loc"]
    return str(label)


def taken(options: Callable[..., T], labels: Mapping[str, str]) -> T | None:
    """`options(**labels)`, or None where they are refused, by an error naming one `metric.`
    label (else the test fails)."""
    try:
        return options(**labels)
    except ValidationError as exc:
        loc = exc.errors()[0]["loc"]
        if len(loc) != 1 or not str(loc[0]).startswith("metric."):
            pytest.fail(f"an error naming no one label: {loc}: {exc}")
        return None


def said(answer: Answer, words: str | None) -> Answer:
    """A source's answer, its reason shortened to `words` where it says them: to compare with
    (value, words)."""
    value, why = answer
    return value, words if words is not None and why is not None and words in why else why


def fault(answer: Answer, reason: str = "metric.") -> str | None:
    """What is wrong with a source's answer, or None: a finite count (never negative) and no
    reason, or no value and a reason that begins with `reason` (naming its label)."""
    value, why = answer
    if (value is None) == (why is None):
        return f"a value and a reason, or neither: {answer}"
    if value is not None and not (math.isfinite(value) and value >= 0):
        return f"not a count: {value}"
    if why is not None and not why.startswith(reason):
        return f"a reason not beginning {reason!r}: {why}"
    return None
