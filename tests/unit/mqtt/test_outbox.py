"""The outbox: bounded, ordered, and journalled to a file that a restart reads back."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from autoscaler.errors import BrokerError
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


def drain(box: Outbox) -> list[Message]:
    """Publish everything queued, oldest first, each acknowledged."""
    sent = []
    while (message := box.first()) is not None:
        sent.append(message)
        box.delivered()
    return sent


def test_an_acknowledgement_with_nothing_handed_out_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    box = Outbox(10, path)
    box.append(event(0))
    box.delivered()  # nothing was handed out
    assert path.read_text().count("\n") == 1  # event 0 queued; nothing gone
    assert box.first() == event(0)
    box.append(event(1))
    box.delivered()
    box.delivered()  # acknowledged already: it does not take another one with it
    assert path.read_text().count("\n") == 3  # events 0 and 1 queued, event 0 gone
    box.close()
    again = Outbox(10, path)
    assert drain(again) == [event(1)]
    again.close()


def test_the_outbox_file_s_folders_are_made_when_missing(tmp_path: Path) -> None:
    path = tmp_path / "state" / "mqtt" / "outbox.jsonl"
    box = Outbox(10, path)
    box.append(event(0))
    box.close()
    again = Outbox(10, path)
    assert again.first() == event(0)
    again.close()


def test_an_outbox_file_that_cannot_be_read_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    path.mkdir()  # a folder where the file should be
    with pytest.raises(BrokerError, match=f"cannot use MQTT outbox file {path}: "):
        Outbox(10, path)


def test_an_outbox_file_that_cannot_be_rewritten_is_refused_at_start_naming_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.jsonl"
    (tmp_path / "outbox.jsonl.new").mkdir()  # where the fresh journal is written
    with pytest.raises(BrokerError, match=f"cannot use MQTT outbox file {path}: "):
        Outbox(10, path)


def test_a_restart_with_a_smaller_bound_keeps_the_newest_and_counts_and_logs_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "outbox.jsonl"
    box = Outbox(5, path)
    for n in range(5):
        box.append(event(n))
    box.close()
    again = Outbox(3, path)
    assert again.dropped == 2
    assert drain(again) == [event(2), event(3), event(4)]
    again.close()
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert said == [f"outbox {path}: 2 events beyond the bound dropped"]


def test_a_restart_with_a_full_queue_drops_nothing_and_warns_of_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "outbox.jsonl"
    box = Outbox(3, path)
    for n in range(3):
        box.append(event(n))
    box.close()
    caplog.set_level(logging.INFO, logger="autoscaler.mqtt.outbox")
    again = Outbox(3, path)
    assert again.dropped == 0
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert [r.getMessage() for r in caplog.records] == [
        f"outbox {path}: 3 undelivered events from before"
    ]
    again.close()


def test_events_queued_after_a_restart_go_after_those_from_before(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    box = Outbox(10, path)
    for n in range(3):
        box.append(event(n))
    box.close()
    again = Outbox(10, path)
    again.append(event(3))
    again.append(event(4))
    again.close()
    third = Outbox(10, path)  # what the second run journalled reads back too
    assert drain(third) == [event(n) for n in range(5)]
    third.close()


def test_a_journal_of_an_earlier_release_is_read_back_in_order(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    path.write_text("".join(f'{{"topic": "t", "payload": "{{\\"n\\": {n}}}"}}\n' for n in range(3)))
    box = Outbox(10, path)
    assert drain(box) == [event(0), event(1), event(2)]
    box.close()


def test_a_restart_after_drops_reads_back_the_event_in_flight_and_the_newest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.jsonl"
    box = Outbox(2, path)
    box.append(event(0))
    assert box.first() == event(0)  # in flight when the process dies
    for n in (1, 2, 3):
        box.append(event(n))  # each drops the oldest not in flight
    assert box.dropped == 2
    box.close()
    again = Outbox(2, path)
    assert drain(again) == [event(0), event(3)]
    again.close()


def test_a_damaged_line_is_logged_with_its_file_and_line_number(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "outbox.jsonl"
    path.write_text('{"topic": "t", "payload": "{\\"n\\": 5}"}\nnot json\n')
    Outbox(10, path).close()
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert said == [f"outbox {path} line 2 is not an event; skipped"]


def test_the_journal_is_appended_to_up_to_its_bound_then_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    box = Outbox(10, path)
    box.append(event(-1))  # one event always waits
    lines = []
    for n in range(200):
        box.append(event(n))
        box.first()
        box.delivered()
        lines.append(path.read_text().count("\n"))
    box.close()
    # Two lines a round (queued, gone): it grows to twice the bound and a slack, not beyond,
    # and is then rewritten with just the queue.
    assert 2 * 10 + 64 - 1 <= max(lines) <= 2 * 10 + 64
    assert min(lines[100:]) <= 3


class _FullDisk:
    """A journal on a disk with no room left: what is written stays buffered, and every flush
    and the close fail as a full disk does."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        raise OSError(28, "No space left on device")

    def close(self) -> None:
        raise OSError(28, "No space left on device")

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def test_a_full_disk_stops_neither_queueing_nor_delivery_and_the_file_is_whole_once_freed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "outbox.jsonl"
    box = Outbox(10, path)
    box.append(event(1))
    box.append(event(2))
    full = _FullDisk()
    monkeypatch.setattr(box, "_journal", full)
    monkeypatch.setattr(Path, "open", lambda *_, **__: full)
    box.append(event(3))  # not written: the disk is full
    assert box.first() == event(1)
    box.delivered()  # acknowledged: its record not written either
    assert [box.first()] == [event(2)] and len(box) == 2
    monkeypatch.undo()  # room again: the next event has the file rewritten whole
    box.append(event(4))
    assert _replayed(path) == [event(2), event(3), event(4)]


def _replayed(path: Path) -> list[Message]:
    again = Outbox(10, path)
    out = []
    while (first := again.first()) is not None:
        out.append(first)
        again.delivered()
    return out


def _disk_full(_: int) -> None:
    raise OSError(28, "No space left on device")


def test_a_rewrite_on_a_full_disk_leaves_no_new_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "outbox.jsonl"
    box = Outbox(10, path)
    box.append(event(1))
    monkeypatch.setattr("autoscaler.mqtt.outbox.os.fsync", _disk_full)
    assert box.first() == event(1)
    box.delivered()  # the queue is empty: the journal is rewritten, and the disk is full
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outbox.jsonl"]
    box.close()


def test_after_a_failed_rewrite_the_old_journal_is_never_appended_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "outbox.jsonl"
    box = Outbox(10, path)
    box.append(event(1))
    monkeypatch.setattr("autoscaler.mqtt.outbox.os.fsync", _disk_full)
    assert box.first() == event(1)
    box.delivered()  # its `gone` was to be the rewrite, which failed: the old journal lacks it
    monkeypatch.undo()  # room again: the next event has the file rewritten whole
    box.append(event(2))
    box.close()
    # Event 1 was acknowledged: a restart does not send it again.
    assert _replayed(path) == [event(2)]
