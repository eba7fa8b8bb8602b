"""Policies by name, including a third party's, found through the entry-point group."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, model_validator

from autoscaler.control.spec import parse
from autoscaler.errors import LabelError
from autoscaler.labels import ServiceKey
from autoscaler.sources.registry import OPTIONS
from policies import registry


@pytest.fixture
def third_party(tmp_path: Path) -> Iterator[None]:
    """A real installed distribution (dist-info on sys.path) that registers policy `always-two`."""
    (tmp_path / "always_two.py").write_text(
        "from typing import ClassVar\n"
        "from pydantic import Field\n"
        "from policies.base import Proposal\n"
        "from policies.options import PolicyOptions\n"
        "class Options(PolicyOptions):\n"
        "    count: int = Field(default=2, alias='count', ge=1)\n"
        "class AlwaysTwo:\n"
        "    name: ClassVar[str] = 'always-two'\n"
        "    Options = Options\n"
        "    def __init__(self, options): self.options = options\n"
        "    def propose(self, inputs):\n"
        "        return Proposal(self.options.count, 'always')\n"
    )
    info = tmp_path / "always_two-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: always-two\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[autoscaler.policies]\nalways-two = always_two:AlwaysTwo\nbroken = broken_plugin:Nope\n"
    )
    (tmp_path / "broken_plugin.py").write_text("raise ImportError('a dependency is missing')\n")
    sys.path.insert(0, str(tmp_path))
    registry._registered.cache_clear()
    registry.lookup.cache_clear()
    try:
        yield
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("always_two", None)
        sys.modules.pop("broken_plugin", None)
        registry._registered.cache_clear()
        registry.lookup.cache_clear()


def test_the_built_ins() -> None:
    assert {"target-tracking", "hpa", "step"} <= set(registry.names())


def test_a_third_party_policy_is_found_by_its_entry_point_and_takes_its_own_labels(
    third_party: None,
) -> None:
    assert "always-two" in registry.names()
    labels = {
        "autoscaler.service": "w",
        "autoscaler.enable": "true",
        "autoscaler.max": "5",
        "autoscaler.policy": "always-two",
        "autoscaler.count": "3",
    }
    spec = parse(ServiceKey("standalone", "w"), labels, OPTIONS)
    assert spec.policy_name == "always-two"
    with pytest.raises(LabelError, match=r"autoscaler\.cpu\.target.*unknown label"):
        parse(ServiceKey("standalone", "w"), labels | {"autoscaler.cpu.target": "50"}, OPTIONS)
    with pytest.raises(LabelError, match=r"autoscaler\.count='0'"):
        parse(ServiceKey("standalone", "w"), labels | {"autoscaler.count": "0"}, OPTIONS)
    # The behaviour labels are every policy's, a plugin's too.
    tuned = parse(
        ServiceKey("standalone", "w"), labels | {"autoscaler.scale-up.cooldown": "1m"}, OPTIONS
    )
    assert tuned.behavior.up_cooldown == 60


def test_a_policy_may_default_the_behaviour_labels_and_a_label_still_wins() -> None:
    base = {"autoscaler.service": "w", "autoscaler.enable": "true", "autoscaler.max": "5",
            "autoscaler.policy": "step", "autoscaler.cpu.target": "50"}  # fmt: skip
    assert parse(ServiceKey("standalone", "w"), base, OPTIONS).behavior.down_stabilization == 0
    window = base | {"autoscaler.scale-down.stabilization": "2m"}
    assert parse(ServiceKey("standalone", "w"), window, OPTIONS).behavior.down_stabilization == 120


@pytest.mark.parametrize(
    ("cpu", "current", "desired"),
    [
        pytest.param(80.0, 3, 4, id="above-target-adds-one"),
        pytest.param(40.0, 3, 3, id="between-half-and-target-holds"),
        pytest.param(20.0, 3, 2, id="below-half-removes-one"),
    ],
)
def test_the_step_policy(cpu: float, current: int, desired: int) -> None:
    from policies.base import PolicyInput, ReplicaSample

    policy = registry.create("step", {"cpu.target": "50"})
    samples = tuple(ReplicaSample(f"c{i}", cpu) for i in range(current))
    assert policy.propose(PolicyInput(current, 1, 10, samples, now=0.0)).count == desired


def test_a_plugin_that_does_not_load_is_an_error_of_the_services_that_chose_it(
    third_party: None,
) -> None:
    labels = {"autoscaler.service": "w", "autoscaler.enable": "true", "autoscaler.max": "5"}
    with pytest.raises(LabelError, match=r"autoscaler\.policy='broken'.*a dependency is missing"):
        parse(ServiceKey("standalone", "w"), labels | {"autoscaler.policy": "broken"}, OPTIONS)
    # The other policies, the plugin beside it included, are unaffected.
    assert parse(
        ServiceKey("standalone", "w"), labels | {"autoscaler.policy": "always-two"}, OPTIONS
    )
    assert parse(ServiceKey("standalone", "w"), labels | {"autoscaler.cpu.target": "50"}, OPTIONS)


def test_an_option_error_names_the_label_its_value_and_why() -> None:
    with pytest.raises(registry.PolicyError) as caught:
        registry.create("target-tracking", {"cpu.target": "lots"})
    error = caught.value
    assert (error.key, error.value) == ("cpu.target", "lots")
    assert (
        str(error)
        == "cpu.target='lots': Input should be a valid number, unable to parse string as a number"
    )


def test_a_rule_over_several_labels_names_the_one_it_is_about() -> None:
    with pytest.raises(registry.PolicyError) as caught:
        registry.create("target-tracking", {})
    error = caught.value
    assert (error.key, error.value, error.reason) == (
        "cpu.target",
        None,
        "required (or metric.target, with a metric source)",
    )
    assert str(error) == "cpu.target: required (or metric.target, with a metric source)"


def test_a_rule_that_names_no_label_is_the_policys() -> None:
    class Picky(BaseModel):
        @model_validator(mode="after")
        def _never(self) -> Picky:
            raise ValueError("no options please")

    with pytest.raises(registry.PolicyError) as caught:
        registry.validate(Picky, {})
    assert (caught.value.key, caught.value.reason) == ("policy", "Value error, no options please")
