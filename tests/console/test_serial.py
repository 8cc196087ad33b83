"""Serial ingest over a real pty: the test plays the agent's side of the line."""

import json
import os
import select
import time

from agent import framing, messages
from tests.console.fleetdata import Device
from tools.console.ingest import Ingestor
from tools.console.serial_link import SerialLink
from tools.console.store import Store


def read_frames(fd: int, want: int, timeout: float = 10.0) -> list:
    """Frames the console wrote back (acks, commands), decoded."""
    reader = framing.LineReader()
    got, deadline = [], time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            got += [json.loads(b) for b in reader.feed(os.read(fd, 65536))]
    return got


def raw_pty():
    import tty
    master, slave = os.openpty()
    tty.setraw(slave)   # a serial line, not a terminal: no echo, no CR/LF translation
    return master, slave


def test_serial_messages_are_recorded_acknowledged_and_deduplicated(tmp_path):
    master, slave = raw_pty()
    store = Store(str(tmp_path / "c.db"))
    ingest = Ingestor(store)
    link = SerialLink(os.ttyname(slave), ingest.accept).start()
    try:
        dev = Device("tx64-serial")
        sent = [dev.status(), dev.telemetry(30000), dev.collect(40000, 20000)]
        wire = b"".join(framing.frame(messages.encode(m)) for m in sent)
        wire += b"garbage line without a check\n" + b"x" * 70000 + b"\n"   # counted, skipped
        wire += framing.frame(messages.encode(sent[1]))                   # a resend
        os.write(master, wire)
        acked, deadline = set(), time.monotonic() + 10
        while (acked != {1, 2, 3} or ingest.stats["received"] < 4) and time.monotonic() < deadline:
            for ack in read_frames(master, 1, 0.2):
                assert ack["type"] == "ack" and ack["boot"] == dev.env.boot
                acked.update(ack["seq"])
        assert acked == {1, 2, 3}                                          # the resend acked too
        assert ingest.stats["recorded"] == 3 and ingest.stats["duplicates"] == 1
        assert link.reader.bad == {"crc": 0, "too_long": 1, "malformed": 1}
        link.send_command({"id": "c-1", "cmd": "status", "args": {}, "ts": 1.0, "sig": "ab"})
        later = read_frames(master, 1)
        while later and later[-1].get("type") == "ack":   # the resend's ack may come just now
            later += read_frames(master, 1)
        assert later[-1] == {"id": "c-1", "cmd": "status", "args": {}, "ts": 1.0, "sig": "ab"}
    finally:
        link.stop()
        os.close(master)
        os.close(slave)
    ingest.flush()
    assert sorted(m["seq"] for m in store.messages()) == [1, 2, 3]
