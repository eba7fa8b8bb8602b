"""The outbox: bounded, ordered, and journalled to a file that a restart reads back."""

from __future__ import annotations

from pathlib import Path

from autoscaler.outbox import Message, Outbox


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
    box.delivered()  # event 0 reached the broker; then the process dies
    box.close()
    again = Outbox(10, path)
    # At least once: the journal is only emptied when everything was delivered.
    assert [again.first()] == [event(0)]
    assert len(again) == 3
    again.close()


def test_the_journal_is_emptied_once_everything_is_delivered(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    box = Outbox(10, path)
    box.append(event(1))
    box.delivered()
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
