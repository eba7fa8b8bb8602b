"""Settings: one lease per set of managed projects, so that two stacks on one engine both act."""

from __future__ import annotations

from autoscaler.settings import LeaseSettings, Settings, lease_name


def test_the_lease_is_named_after_the_projects_an_instance_manages() -> None:
    assert lease_name(frozenset()) == "autoscaler-lease"
    assert lease_name(frozenset({"shop"})) == "autoscaler-lease-shop"
    several = lease_name(frozenset({"shop", "blog"}))
    assert several == lease_name(frozenset({"blog", "shop"}))
    assert several.startswith("autoscaler-lease-") and several != lease_name(frozenset({"shop"}))


def test_a_lease_name_given_is_kept_for_the_engine_and_derived_for_the_cluster() -> None:
    settings = Settings(projects=frozenset({"shop"}), lease=LeaseSettings(name="mine"))
    assert (settings.engine_lease, settings.cluster_lease) == ("mine", "autoscaler-lease-shop")
