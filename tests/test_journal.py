"""The journal: records survive restarts and crashes; damage is skipped and counted."""

import os
import struct
import zlib

import pytest

from agent.errors import AgentError
from agent.journal import Journal, JournalError


class FakeClock(object):
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def payload(i, size=100):
    return (b"record-%05d:" % i).ljust(size, b".")


def frame(data):
    return struct.pack(">II", len(data), zlib.crc32(data) & 0xFFFFFFFF) + data


def drain(journal):
    out = []
    while True:
        head = journal.oldest()
        if head is None:
            return out
        name, records = head
        out.extend(records)
        journal.remove(name)


def segments(directory):
    return sorted(n for n in os.listdir(str(directory)) if n.startswith("seg-"))


def write_segment(directory, number, data):
    directory.mkdir(exist_ok=True)
    (directory / ("seg-%012d.log" % number)).write_bytes(data)


# --- order, segments, restarts -------------------------------------------------


def test_records_come_back_in_order_across_several_segments(tmp_path):
    journal = Journal(str(tmp_path / "j"), segment_bytes=1000)
    expected = [payload(i) for i in range(50)]
    for p in expected:
        journal.append(p)
    assert len(segments(tmp_path / "j")) > 3
    assert journal.pending() == 50
    assert journal.bytes == 50 * 108
    assert drain(journal) == expected
    assert journal.pending() == 0 and journal.bytes == 0
    assert journal.dropped == 0 and journal.corrupt == 0
    assert segments(tmp_path / "j") == []


def test_records_survive_a_close_and_reopen(tmp_path):
    directory = str(tmp_path / "j")
    journal = Journal(directory, segment_bytes=1000)
    for i in range(30):
        journal.append(payload(i))
    journal.close()
    journal.close()   # safe twice

    again = Journal(directory, segment_bytes=1000)
    assert again.pending() == 30
    assert again.bytes == 30 * 108
    again.append(payload(30))   # continues in a new segment, after the old ones
    assert drain(again) == [payload(i) for i in range(31)]
    assert again.corrupt == 0


def test_segment_names_continue_from_the_highest_existing_one(tmp_path):
    directory = tmp_path / "j"
    write_segment(directory, 41, frame(b"old"))
    journal = Journal(str(directory))
    journal.append(b"new")
    journal.close()
    assert segments(directory) == ["seg-000000000041.log", "seg-000000000042.log"]
    assert drain(Journal(str(directory))) == [b"old", b"new"]


def test_oldest_closes_the_segment_being_written_so_appends_start_a_new_one(tmp_path):
    journal = Journal(str(tmp_path / "j"))
    journal.append(b"one")
    name, records = journal.oldest()
    assert records == [b"one"]
    journal.append(b"two")   # must not land in the segment being delivered
    journal.remove(name)
    name2, records2 = journal.oldest()
    assert name2 > name and records2 == [b"two"]


def test_remove_then_oldest_moves_on(tmp_path):
    journal = Journal(str(tmp_path / "j"), segment_bytes=300)
    for i in range(6):
        journal.append(payload(i))   # 3 records of 108 bytes, then the segment passes 300
    first, records = journal.oldest()
    assert journal.oldest()[0] == first   # not delivered yet: same segment again
    journal.remove(first)
    second, more = journal.oldest()
    assert second > first
    assert records + more == [payload(i) for i in range(len(records + more))]
    journal.remove("seg-000000000999.log")   # unknown: nothing happens
    assert journal.pending() == 6 - len(records)


def test_empty_journal_has_nothing(tmp_path):
    journal = Journal(str(tmp_path / "j"))
    assert journal.oldest() is None
    assert journal.pending() == 0 and journal.bytes == 0


# --- crashes and damage ----------------------------------------------------------


def damaged(tmp_path, data):
    """A journal reopened on one segment holding `data`, and what it delivers."""
    write_segment(tmp_path / "j", 1, data)
    journal = Journal(str(tmp_path / "j"))
    return journal, drain(journal)


def test_a_record_torn_in_its_payload_is_skipped_and_counted(tmp_path):
    good = [payload(i) for i in range(5)]
    data = b"".join(frame(p) for p in good) + frame(payload(5))[:50]
    journal, records = damaged(tmp_path, data)
    assert records == good
    assert journal.corrupt == 1


def test_a_record_torn_in_its_header_is_skipped_and_counted(tmp_path):
    good = [payload(i) for i in range(5)]
    data = b"".join(frame(p) for p in good) + frame(payload(5))[:5]
    journal, records = damaged(tmp_path, data)
    assert records == good
    assert journal.corrupt == 1


def test_zeros_after_a_power_loss_are_not_read_as_records(tmp_path):
    good = [payload(i) for i in range(3)]
    journal, records = damaged(tmp_path, b"".join(frame(p) for p in good) + bytes(4096))
    assert records == good
    assert journal.corrupt == 1


def test_flipped_bytes_in_a_middle_record_skip_only_that_record(tmp_path):
    good = [payload(i) for i in range(10)]
    data = bytearray(b"".join(frame(p) for p in good))
    data[4 * 108 + 8 + 20] ^= 0xFF   # in record 4's payload
    data[4 * 108 + 8 + 60] ^= 0x01
    journal, records = damaged(tmp_path, bytes(data))
    assert records == good[:4] + good[5:]   # never a damaged payload
    assert journal.corrupt == 1


def test_a_damaged_header_in_the_middle_resynchronises_on_the_next_record(tmp_path):
    good = [payload(i) for i in range(10)]
    data = bytearray(b"".join(frame(p) for p in good))
    data[3 * 108:3 * 108 + 4] = b"\x00\x00\x00\x30"   # record 3 claims 48 bytes
    data[7 * 108 + 5] ^= 0x10                          # record 7's CRC
    journal, records = damaged(tmp_path, bytes(data))
    assert records == good[:3] + good[4:7] + good[8:]
    assert journal.corrupt == 2


def test_a_garbage_length_allocates_nothing_and_is_skipped(tmp_path):
    tail = frame(b"after")
    data = frame(b"before") + struct.pack(">II", 0xFFFFFFFF, 0) + b"junk" + tail
    journal, records = damaged(tmp_path, data)
    assert records == [b"before", b"after"]
    assert journal.corrupt == 1


def test_corruption_is_counted_once_however_often_the_segment_is_read(tmp_path):
    write_segment(tmp_path / "j", 1, frame(b"a") + b"\x01\x02\x03" + frame(b"b"))
    journal = Journal(str(tmp_path / "j"))
    assert journal.pending() == 2
    assert journal.oldest()[1] == [b"a", b"b"]
    assert journal.oldest()[1] == [b"a", b"b"]
    assert journal.corrupt == 1


# --- bounds ----------------------------------------------------------------------


def test_over_max_bytes_the_oldest_segments_go_and_their_records_are_counted(tmp_path):
    directory = tmp_path / "j"
    journal = Journal(str(directory), max_bytes=2000, segment_bytes=500)   # 5 records a segment
    for i in range(40):
        journal.append(payload(i))
        assert journal.bytes <= 2000
    kept = drain(journal)
    assert journal.dropped + len(kept) == 40
    assert journal.dropped % 5 == 0 and journal.dropped > 0   # whole segments only
    assert kept == [payload(i) for i in range(journal.dropped, 40)]   # the newest survive
    assert journal.corrupt == 0


def test_segments_from_before_a_restart_are_dropped_and_counted_too(tmp_path):
    directory = tmp_path / "j"
    write_segment(directory, 1, b"".join(frame(payload(i)) for i in range(7)))
    journal = Journal(str(directory), max_bytes=1000, segment_bytes=400)
    for i in range(3):
        journal.append(payload(100 + i))   # 756 + 324 > 1000: the old segment goes
    assert journal.dropped == 7
    assert drain(journal) == [payload(100 + i) for i in range(3)]


def test_a_record_too_large_is_refused(tmp_path):
    journal = Journal(str(tmp_path / "j"), max_bytes=10000, segment_bytes=4096)
    with pytest.raises(JournalError):
        journal.append(b"x" * 4096)   # over segment_bytes with its header
    small = Journal(str(tmp_path / "k"), max_bytes=1000, segment_bytes=4096)
    with pytest.raises(JournalError):
        small.append(b"x" * 600)   # over max_bytes / 2
    with pytest.raises(JournalError):
        small.append(b"")   # a zero length means damage on read
    small.append(b"x" * 400)
    assert small.pending() == 1 and journal.pending() == 0


# --- fsync -----------------------------------------------------------------------


def test_fsync_is_batched_by_the_clock(tmp_path, monkeypatch):
    calls = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd) or real_fsync(fd))
    clock = FakeClock()
    journal = Journal(str(tmp_path / "j"), sync_every=5.0, clock=clock)
    for i in range(100):
        journal.append(payload(i))
    assert len(calls) <= 1   # at most the directory, when the segment was created
    before = len(calls)
    clock.now += 5.0
    journal.append(payload(100))
    assert len(calls) == before + 1
    journal.append(payload(101))   # the interval starts again
    assert len(calls) == before + 1
    journal.sync()
    assert len(calls) == before + 2


# --- errors ----------------------------------------------------------------------


def test_a_directory_that_cannot_be_created_raises_with_its_path(tmp_path):
    (tmp_path / "afile").write_bytes(b"")
    path = str(tmp_path / "afile" / "journal")
    with pytest.raises(JournalError) as caught:
        Journal(path)
    assert path in str(caught.value)
    assert isinstance(caught.value, AgentError)


def test_a_failed_append_raises_and_the_journal_stays_usable(tmp_path):
    directory = tmp_path / "j"
    journal = Journal(str(directory))
    journal.append(b"one")
    journal.close()
    directory.rename(tmp_path / "moved")
    directory.write_bytes(b"")   # the directory is now a regular file
    with pytest.raises(JournalError) as caught:
        journal.append(b"lost")
    assert str(directory) in str(caught.value)
    directory.unlink()
    (tmp_path / "moved").rename(directory)
    journal.append(b"two")
    assert drain(journal) == [b"one", b"two"]
