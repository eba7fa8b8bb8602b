"""What a lease says of its holder: the projects it manages, and where two leases overlap."""

from __future__ import annotations

from autoscaler.backends.compose.lease import _managed, _managing, _shared


def test_a_lease_names_the_projects_its_holder_manages() -> None:
    assert _managing(frozenset()) == "*"
    assert _managing(frozenset({"shop", "blog"})) == '["blog", "shop"]'
    assert _managed("*") is None
    assert _managed('["blog", "shop"]') == {"blog", "shop"}
    assert _managed("not json") is None


def test_overlapping_leases_name_the_projects_both_act_on() -> None:
    assert _shared({"shop"}, {"blog"}) == ""
    assert _shared({"shop", "blog"}, {"shop"}) == "shop"
    assert _shared(None, {"shop"}) == "shop"
    assert _shared({"shop"}, None) == "shop"
    assert _shared(None, None) == "every project"
