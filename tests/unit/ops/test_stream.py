"""The page's event stream: everything once, then only the services that changed and the new
events, per page, so that a page that missed a round is still told all that changed."""

from __future__ import annotations

from dataclasses import replace

from autoscaler.control.state import Phase, ServiceState
from autoscaler.mqtt.journal import Journal
from autoscaler.ops.stream import FIRST_EVENTS, Follower, Snapshot

BAND = 5.0


def state(service: str, **changes: object) -> ServiceState:
    base = ServiceState(
        project="p", service=service, phase=Phase.HOLDING, replicas=2, containers=("a", "b"),
        reason="holding", time=1000.0, instance=None, dry_run=False, cpu=40.0,
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def snapshot(*states: ServiceState) -> Snapshot:
    return Snapshot({"ready": True}, {f"{s.project}/{s.service}": s for s in states})


def event(service: str, action: str) -> dict[str, object]:
    return {"Action": action, "Actor": {"ID": f"p/{service}"}, "timeNano": 0}


def test_the_first_message_has_every_service_and_the_newest_events() -> None:
    journal = Journal()
    for _ in range(FIRST_EVENTS + 5):
        journal.add(event("web", "scale_up"))
    first = Follower(journal, BAND).message(snapshot(state("web"), state("api")))
    assert first["full"] is True and first["ready"] is True
    assert sorted(first["services"]) == ["p/api", "p/web"]
    assert first["services"]["p/web"]["state"]["replicas"] == 2
    assert [e["seq"] for e in first["events"]] == list(range(6, FIRST_EVENTS + 6))


def test_services_that_hold_are_not_sent_again() -> None:
    follower = Follower(Journal(), BAND)
    follower.message(snapshot(state("web"), state("api")))
    # A new round: times and reasons move, CPU within the band.
    later = follower.message(
        snapshot(state("web", time=1005.0, cpu=43.0), state("api", time=1005.0))
    )
    assert later["services"] == {} and later["gone"] == [] and later["events"] == []
    assert "full" not in later and later["ready"] is True


def test_a_service_that_changed_is_sent_whole() -> None:
    follower = Follower(Journal(), BAND)
    follower.message(snapshot(state("web"), state("api")))
    later = follower.message(snapshot(state("web", replicas=3), state("api", cpu=60.0)))
    assert sorted(later["services"]) == ["p/api", "p/web"]
    assert later["services"]["p/web"]["state"]["replicas"] == 3


def test_drift_is_measured_from_what_the_page_was_sent() -> None:
    # 4 points a round, each within the band, add up past it on the second round.
    follower = Follower(Journal(), BAND)
    follower.message(snapshot(state("web", cpu=40.0)))
    assert follower.message(snapshot(state("web", cpu=44.0)))["services"] == {}
    assert list(follower.message(snapshot(state("web", cpu=48.0)))["services"]) == ["p/web"]


def test_a_new_service_is_sent_and_a_gone_one_is_named() -> None:
    follower = Follower(Journal(), BAND)
    follower.message(snapshot(state("web"), state("api")))
    later = follower.message(snapshot(state("web"), state("db")))
    assert list(later["services"]) == ["p/db"] and later["gone"] == ["p/api"]
    again = follower.message(snapshot(state("web"), state("db")))
    assert again["gone"] == [] and again["services"] == {}


def test_only_new_events_follow_and_each_page_keeps_its_own_place() -> None:
    journal = Journal()
    slow, quick = Follower(journal, BAND), Follower(journal, BAND)
    slow.message(snapshot(state("web")))
    quick.message(snapshot(state("web")))
    journal.add(event("web", "scale_up"))
    assert [e["Action"] for e in quick.message(snapshot(state("web")))["events"]] == ["scale_up"]
    journal.add(event("web", "scale_down"))
    assert [e["Action"] for e in quick.message(snapshot(state("web")))["events"]] == ["scale_down"]
    # The slow page missed a round: it gets both.
    assert [e["Action"] for e in slow.message(snapshot(state("web")))["events"]] == [
        "scale_up", "scale_down",
    ]  # fmt: skip


def test_the_journal_is_bounded_and_finds_one_service_s_events() -> None:
    journal = Journal(size=3)
    for service in ("web", "api", "web", "web"):
        journal.add({**event(service, "scale_up"), "timeNano": 2_000_000_000})
    assert journal.last == 4 and [e["seq"] for e in journal.after(0)] == [2, 3, 4]
    assert [e["seq"] for e in journal.of("p/web", since=1.0)] == [3, 4]
    assert journal.of("p/web", since=3.0) == []
