"""Accepted command ids on flash: read back after a restart, bounded, damage skipped."""

import json
import os

from agent.commands import Commands, sign
from agent.replay_guard import ReplayIds

KEY = b"r" * 32


def _commands(path, now, ran):
    return Commands(KEY, "d", {"collect": lambda args: ran.append(1) or {}}, window=300.0,
                    clock=lambda: now, ids=ReplayIds(path, 1024, 300.0))


def test_an_id_accepted_before_a_restart_is_refused_after_it_within_the_window(tmp_path):
    path = str(tmp_path / "replay-ids")
    ran = []
    command = sign({"id": "c1", "cmd": "collect", "args": {}, "ts": 1000.0}, KEY)
    payload = json.dumps(command).encode()
    assert _commands(path, 1000.0, ran).handle(payload)["ok"] is True
    again = _commands(path, 1100.0, ran).handle(payload)          # a new process, same flash
    assert again["error"].startswith("replayed") and ran == [1]
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"


def test_the_file_stays_bounded_and_keeps_the_newest(tmp_path):
    path = str(tmp_path / "replay-ids")
    ids = ReplayIds(path, 10, 300.0)
    for n in range(1000):
        ids.add("id%d" % n, 1000.0 + n * 0.01, 1000.0 + n * 0.01)
    with open(path) as handle:
        assert len(handle.read().splitlines()) < 20
    assert ReplayIds(path, 10, 300.0).load(1010.0) == ["id%d" % n for n in range(990, 1000)]


def test_old_damaged_or_oversize_lines_are_skipped(tmp_path):
    path = tmp_path / "replay-ids"
    path.write_bytes(b'1000.0 "good"\n1.0 "too old"\nnot a line\n1000.0 "' + b"x" * 500 + b'"\n'
                     b'1000.0 17\n\xff\xfe\n1000.0 "also good"')
    assert ReplayIds(str(path), 10, 300.0).load(1000.0) == ["good", "also good"]


def test_a_folder_that_cannot_be_written_counts_errors_and_never_raises(tmp_path):
    ids = ReplayIds(str(tmp_path / "missing" / "replay-ids"), 10, 300.0)
    assert ids.load(1000.0) == []
    ids.add("x", 1000.0, 1000.0)
    assert ids.errors == 1


def test_any_id_a_command_may_carry_is_remembered(tmp_path):
    path = str(tmp_path / "replay-ids")
    odd = ["\U0001f600" * 64, 'quote " and \\ and\nnewline', "é" * 64]
    ids = ReplayIds(path, 10, 300.0)
    for ident in odd:
        ids.add(ident, 1000.0, 1000.0)
    assert ReplayIds(path, 10, 300.0).load(1000.0) == odd


def test_an_overgrown_file_is_read_from_its_newest_entries(tmp_path):
    path = tmp_path / "replay-ids"
    path.write_text("".join('1000.0 "id%d"\n' % n for n in range(5000)))
    assert ReplayIds(str(path), 10, 300.0).load(1000.0)[-1] == "id4999"
