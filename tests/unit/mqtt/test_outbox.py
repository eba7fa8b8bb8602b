"""The outbox: bounded, ordered, and journalled to a file that a restart reads back."""

from __future__ import annotations

from pathlib import Path

from autoscaler.mqtt.outbox import Message, Outbox


def event(n: int) -> Message:
    return Message("t", f'{{"n": {n}}}'.encode(), False)


def test_past_its_bound_the_oldest_are_dropped_and_counted() -> None:
    box = Outbox(3)
    for n in range(5):
        box.append(event(n))
    assert len(box) == 3
    assert box.dropped == 2
    assert box.first() == event(2)


def test_a_restart_reads_back_what_was_not_delivered(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    box = Outbox(10, path)
    for n in range(3):
        box.append(event(n))
    assert box.first() == event(0)
    box.delivered()  # event 0 reached the broker
    assert box.first() == event(1)  # event 1 is being published; then the process dies
    box.close()
    again = Outbox(10, path)
    # At least once: what was not acknowledged is sent again, nothing that was.
    assert [again.first()] == [event(1)]
    assert len(again) == 2
    again.close()


def test_the_journal_is_emptied_once_everything_is_delivered(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    box = Outbox(10, path)
    box.append(event(1))
    box.first()
    box.delivered()
    assert path.read_text() == ""
    box.append(event(2))
    box.close()
    assert path.read_text().count("\n") == 1
    again = Outbox(10, path)
    assert again.first() == event(2)
    again.close()


def test_a_damaged_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    path.write_text('not json\n{"topic": "t", "payload": "{\\"n\\": 5}"}\n')
    box = Outbox(10, path)
    assert len(box) == 1
    assert box.first() == event(5)
    box.close()


def test_the_event_being_published_is_never_dropped_and_each_drop_is_counted_once() -> None:
    box = Outbox(3)
    for n in range(3):
        box.append(event(n))
    assert box.first() == event(0)  # handed to the broker; its acknowledgement is awaited
    box.append(event(3))  # full: the oldest that is not in flight goes
    assert box.dropped == 1
    box.delivered()  # event 0 was acknowledged
    remaining = []
    while (message := box.first()) is not None:
        remaining.append(message)
        box.delivered()
    assert remaining == [event(2), event(3)]
    assert box.dropped == 1


def test_at_a_bound_of_one_the_event_in_flight_stays_and_the_newest_waits_behind_it() -> None:
    box = Outbox(1)
    box.append(event(0))
    assert box.first() == event(0)  # in flight: it cannot be dropped
    box.append(event(1))  # nothing else to drop: for now the queue holds two
    box.append(event(2))  # event 1 is the oldest not in flight
    assert box.dropped == 1
    box.delivered()
    assert box.first() == event(2)
    box.delivered()
    assert box.first() is None


def test_the_journal_stays_bounded_while_the_queue_never_drains(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    box = Outbox(10, path)
    box.append(event(-1))  # one event always waits
    for n in range(1000):
        box.append(event(n))
        assert box.first() is not None
        box.delivered()
        assert path.read_text().count("\n") <= 2 * 10 + 64 + 1
    box.close()
    again = Outbox(10, path)
    assert len(again) == 1
    assert again.first() == event(999)
    again.close()


def test_drops_are_not_counted_again_by_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    box = Outbox(3, path)
    for n in range(5):
        box.append(event(n))
    assert box.dropped == 2
    box.close()
    again = Outbox(3, path)
    assert again.dropped == 0
    assert [again.first()] == [event(2)]
    assert len(again) == 3
    again.close()
