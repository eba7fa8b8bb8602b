"""Whatever labels a container carries, the parser answers with a spec or its own LabelError."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.errors import LabelError
from autoscaler.labels import ServiceKey, service_key
from autoscaler.spec import parse

KNOWN = [
    "enable", "service", "min", "max", "policy", "paused", "cpu.target", "memory.target",
    "memory.mode", "scale-up.tolerance", "scale-down.tolerance", "noise-band", "warmup",
    "scale-up.stabilization", "scale-down.stabilization", "scale-up.period",
    "scale-up.max-replicas", "scale-up.max-percent", "scale-down.period",
    "scale-down.max-replicas", "scale-down.max-percent", "scale-up.cooldown",
    "scale-down.cooldown", "step", "clone-of",
]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(["true", "false", "0", "1", "-1", "50", "1e9", "nan", "inf", "5m", "0.5",
                     "", " ", "target", "guard", "hpa", "step", "target-tracking", "10s", "x"]),
    st.text(max_size=12),
)  # fmt: skip
KEYS = st.one_of(
    st.sampled_from(KNOWN).map(lambda k: f"autoscaler.{k}"),
    st.text(max_size=20).map(lambda k: f"autoscaler.{k}"),
    st.sampled_from(["com.docker.compose.project", "com.docker.compose.service", "other"]),
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=12))
def test_random_labels_give_a_spec_or_a_label_error_naming_an_autoscaler_label(
    labels: dict[str, str],
) -> None:
    labels = {"autoscaler.enable": "true", **labels}
    key = service_key(labels, "fuzzed-1")
    try:
        spec = parse(key, labels)
    except LabelError as exc:
        assert exc.label.startswith("autoscaler.")
        assert str(exc).startswith(f"service {key}: label {exc.label}")
    else:
        assert 1 <= spec.minimum <= spec.maximum


def test_nan_and_infinity_are_not_targets() -> None:
    base = {"autoscaler.enable": "true", "autoscaler.service": "s", "autoscaler.max": "3"}
    for value in ("nan", "inf", "-inf"):
        try:
            parse(ServiceKey("standalone", "s"), base | {"autoscaler.cpu.target": value})
        except LabelError as exc:
            assert exc.label == "autoscaler.cpu.target"
        else:
            raise AssertionError(f"cpu.target={value} was accepted")
