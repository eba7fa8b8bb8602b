"""What a step found before deciding is kept for the next (control/checked.py): given the very
same settled replicas, a step does not check them again; a replica that changed, one that is
not settled, or new bounds in force bring the checks back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from autoscaler.control import controller as controller_module
from autoscaler.control.checked import Checked, settled
from autoscaler.control.controls import Control
from autoscaler.control.replicas import Replica
from autoscaler.control.spec import ServiceSpec, parse
from autoscaler.labels import ServiceKey
from autoscaler.sources.registry import OPTIONS
from tests.unit.control.test_controller import KEY, service


def checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times the steps looked for the template so far (replicas.template_of: the
    labels' spec and the repairs read it)."""
    seen = [0]
    real = controller_module.template_of

    def counted(key: ServiceKey, replicas: Sequence[Replica]) -> Replica:
        seen[0] += 1
        return real(key, replicas)

    monkeypatch.setattr(controller_module, "template_of", counted)
    return seen


async def test_the_same_settled_replicas_are_not_checked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    web = service()
    seen = checks(monkeypatch)
    assert await web.round(cpu=50.0) == "holding"
    first = seen[0]
    assert first > 0
    assert await web.round(cpu=50.0) == "holding"
    assert await web.round(cpu=50.0) == "holding"
    assert seen[0] == first


async def test_a_replica_that_changed_is_checked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    web = service()
    seen = checks(monkeypatch)
    await web.round(cpu=50.0)
    first = seen[0]
    (template,) = web.running()
    web.fake.stop(template.id)  # a new inspect of it: another object
    assert await web.round(cpu=50.0) == "stopped"
    assert seen[0] > first


async def test_a_bound_lowered_over_the_same_replicas_lowers_the_decided_count() -> None:
    web = service()
    await web.round(cpu=150.0)  # 1 replica at three times the target: 3
    assert len(web.running()) == 3 and web.controller.decided == 3
    await web.round(cpu=50.0)
    await web.round(cpu=50.0)  # the same replicas: kept
    # An operator holds it at 2: the max in force falls, the replicas are the same objects.
    hold = Control("hold", since=web.time.wall, replicas=2)
    web.controller._ctx.control = lambda key: hold
    await web.round(cpu=50.0)
    scaling = [s for s in web.told.states if s["phase"] == "scaling"]
    assert scaling and scaling[-1]["decided"] == 2  # capped before the decision, not after it
    assert len(web.running()) == 2


def labelled() -> tuple[Replica, ServiceSpec]:
    """A service's one container of the user's, and the spec its labels give."""
    (template,) = service().fake.view(KEY)
    return template, parse(KEY, template.labels, OPTIONS)


def test_only_settled_replicas_are_kept() -> None:
    template, spec = labelled()
    assert settled(template)
    assert Checked.of([template], spec, spec, 1) is not None
    for unsettled in (
        replace(template, status="exited"),
        replace(template, stopping_since=5.0),
        replace(template, removing=True),
        replace(template, health="starting"),
        replace(template, health="unhealthy"),
        replace(template, unseen="not in the engine's listing"),
    ):
        assert not settled(unsettled)
        assert Checked.of([template, unsettled], spec, spec, 1) is None
    assert Checked.of([template], None, spec, 1) is None  # no labels' spec read


def test_the_same_objects_hold_and_equal_copies_do_not() -> None:
    template, spec = labelled()
    kept = Checked.of([template], spec, spec, 1)
    assert kept is not None
    assert kept.holds([template])
    assert not kept.holds([replace(template)])  # a new inspect, even of the same facts
    assert not kept.holds([template, template])
    assert not kept.holds([])
