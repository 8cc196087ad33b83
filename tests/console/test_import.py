"""`gc-console import`: file:// reports and `agent decode` output into the database, once."""

import io
import json
import os
import subprocess
import sys

from agent import framing, messages
from agent.decode import Decoder
from tests.conftest import REPO
from tests.console.fleetdata import Clock, Device
from tools.console.importer import import_files
from tools.console.store import Store


def history(clock: Clock, device: str = "ix20-hist", n: int = 50) -> list:
    """A boot's worth of messages, a minute apart, as a file:// report would hold them."""
    dev = Device(device, clock)
    out = [dev.status()]
    for i in range(n):
        clock.advance(60)
        out.append(dev.telemetry(30000 + 100 * i))
        if i % 10 == 9:
            out.append(dev.collect(30000 + 100 * i, 30000))
    return out


def write_lines(path, lines) -> str:
    with open(str(path), "wb") as handle:
        for line in lines:
            handle.write(line if isinstance(line, bytes) else messages.encode(line))
            handle.write(b"\n")
    return str(path)


def test_import_records_a_history_once_and_names_bad_lines(tmp_path):
    clock = Clock(1_700_000_000.0)
    sent = history(clock)
    bad = [b"not json", json.dumps({"v": 1, "type": "telemetry", "device": "x", "boot": "b",
                                    "seq": 2 ** 63, "ts": 1.0, "samples": [], "buffered": 0,
                                    "dropped": 0}).encode(), b'{"v": 2}']
    lines = sent[:10] + [bad[0]] + sent[10:30] + [bad[1], b""] + sent[30:] + [bad[2]]
    path = write_lines(tmp_path / "messages.jsonl", lines)
    store = Store(str(tmp_path / "c.db"))
    said = []
    counts = import_files([path], store, on_refused=lambda *a: said.append(a))
    assert counts["new"] == len(sent) and counts["refused"] == 3 and counts["duplicates"] == 0
    assert [(line, reason) for _, line, reason, _ in said] == [(11, "not_json"), (32, "range"),
                                                               (len(lines), "schema")]
    assert all(p == path for p, _, _, _ in said)
    assert len(store.messages("ix20-hist")) == len(sent)
    assert len(store.samples("ix20-hist")) == 50
    device = store.device("ix20-hist")
    assert device["rules"] == {"low-memory": 5} and device["missing"] == 0
    assert device["last_seen"] == sent[-1]["ts"]        # the history's own time, not the import's
    again = import_files([path, path], store)           # idempotent
    assert again["new"] == 0 and again["duplicates"] == 2 * len(sent)
    assert len(store.messages()) == len(sent)


def test_import_takes_agent_decode_output_and_serial_captures(tmp_path):
    clock = Clock(1_700_000_000.0)
    sent = history(clock, "tx64-serial", 20)
    capture = b"".join(framing.frame(messages.encode(m)) for m in sent)
    capture += framing.ack([1, 2], sent[0]["boot"])     # the console's side of the line
    raw = write_lines(tmp_path / "capture.txt", [capture.rstrip(b"\n")])
    decoded = io.StringIO()
    with open(raw, "rb") as stream:
        Decoder(decoded, io.StringIO()).run(stream)
    (tmp_path / "decoded.jsonl").write_text(decoded.getvalue())
    store = Store(str(tmp_path / "c.db"))
    counts = import_files([str(tmp_path / "decoded.jsonl")], store)
    assert counts["new"] == len(sent) and counts["refused"] == 0 and counts["skipped"] == 1
    counts = import_files([raw], store)                  # the raw frames: all already there
    assert counts["duplicates"] == len(sent) and counts["new"] == 0 and counts["refused"] == 0
    frame = framing.frame(messages.encode(Device("garbled").status())).rstrip(b"\n")
    damaged = write_lines(tmp_path / "damaged.txt", [b"\xef\xbb\xbf" + frame,
                                                      frame.replace(b"garbled", b"garbles")])
    counts = import_files([damaged], store)              # a BOM is fine; a bad CRC is named
    assert counts["new"] == 1 and counts["by_reason"] == {"crc": 1}


def test_import_command_reports_progress_exit_status_and_a_missing_file(tmp_path):
    clock = Clock(1_700_000_000.0)
    lines = []
    for d in range(30):
        lines += history(clock, "dev-%02d" % d, 400)     # ~12,500 lines: progress is shown
    good = write_lines(tmp_path / "fleet.jsonl", lines)
    db = str(tmp_path / "c.db")
    env = dict(os.environ, PYTHONPATH=REPO)
    run = [sys.executable, "-m", "tools.console", "import", good, "--db", db]
    first = subprocess.run(run, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "import: %s: 10000 lines" % good in first.stderr            # progress, on stderr
    assert "%d new messages" % len(lines) in first.stderr
    second = subprocess.run(run, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0 and "0 new messages, %d already" % len(lines) in second.stderr
    bad = write_lines(tmp_path / "bad.jsonl", [b"{", messages.encode(Device("late").status())])
    third = subprocess.run(run[:4] + [bad, str(tmp_path / "nope.jsonl"), "--db", db], cwd=REPO,
                           env=env, capture_output=True, text=True, timeout=60)
    assert third.returncode == 1
    assert "%s:1: not_json" % bad in third.stderr and "nope.jsonl: unreadable" in third.stderr
    assert "1 new messages" in third.stderr
    store = Store(db)
    assert len(store.devices()) == 31
