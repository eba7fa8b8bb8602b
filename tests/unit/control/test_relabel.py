"""A service's labels are read again when its template changes them (control/controller.py,
`_spec_for`), and only then: the spec of the labels read last round is kept, with what its
policy carries from round to round."""

from __future__ import annotations

from tests.unit.control.test_controller import KEY, WEB, service


async def test_new_labels_on_a_recreated_template_take_effect_at_the_next_round() -> None:
    web = service()
    await web.round(cpu=50.0)
    before = web.controller.state
    assert before is not None and (before.maximum, before.targets) == (6, {"cpu": 50.0})
    old = web.running()[0]
    # `docker compose up` recreates the container with the labels the user changed.
    web.fake.remove(old.id)
    web.fake.add(KEY, labels=WEB | {"autoscaler.max": "3", "autoscaler.cpu.target": "70"})
    await web.round(cpu=50.0)
    after = web.controller.state
    assert after is not None and (after.maximum, after.targets) == (3, {"cpu": 70.0})


async def test_the_same_labels_read_again_keep_the_spec_and_its_policy() -> None:
    web = service()
    await web.round(cpu=50.0)
    spec = web.controller.spec
    old = web.running()[0]
    web.fake.remove(old.id)
    web.fake.add(KEY, labels=dict(old.labels))  # equal labels, another inspect's mapping
    await web.round(cpu=50.0)
    await web.round(cpu=50.0)
    assert web.controller.spec is spec
