"""gc-console on a serial line (a real pty); the test plays the agent's side."""

import json
import os
import select
import subprocess
import sys
import time
import tty

from agent import framing, messages
from agent.commands import Commands
from tests.conftest import REPO
from tests.console.fleetdata import Device

KEY = b"serial-test-key-0123456789abcdef"


def pty_pair():
    master, slave = os.openpty()
    tty.setraw(slave)
    return master, slave


def frames(fd: int, want: int, timeout: float = 15.0) -> list:
    reader, got = framing.LineReader(), []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            got += [json.loads(b) for b in reader.feed(os.read(fd, 65536))]
    return got


def console(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tools.console", *args], cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=REPO), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def test_ingest_from_a_serial_port_records_acknowledges_and_counts_bad_lines(tmp_path):
    master, slave = pty_pair()
    db = str(tmp_path / "c.db")
    proc = console("ingest", "--serial", os.ttyname(slave), "--db", db, "--exit-after", "3",
                   "--stats", "--duration", "30s")
    try:
        assert "recording from" in proc.stderr.readline().decode()
        dev = Device("ix15-serial")
        sent = [dev.status(), dev.telemetry(20000), dev.collect(30000, 21000)]
        os.write(master, b"line noise\n" + b"".join(framing.frame(messages.encode(m)) for m in sent))
        acked = {s for f in frames(master, 1) for s in f["seq"]}
        while acked != {1, 2, 3}:
            more = frames(master, 1, 5.0)
            assert more, "acks stopped at %s" % sorted(acked)
            acked |= {s for f in more for s in f["seq"]}
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
        os.close(slave)
    stats = json.loads(err.decode().strip().splitlines()[-1])
    assert stats["recorded"] == 3 and stats["serial_bad_lines"]["malformed"] == 1


def test_send_over_serial_is_verified_by_the_agents_own_code_and_prints_the_answer(tmp_path):
    master, slave = pty_pair()
    key = tmp_path / "key"
    key.write_bytes(KEY)
    dev = Device("ix15-serial")
    verifier = Commands(KEY, "ix15-serial", {"collect": lambda args: {"generation": args["generation"],
                                                                      "collected": 42}})
    proc = console("send", "ix15-serial", "collect", "generation=1", "--serial", os.ttyname(slave),
                   "--key", str(key), "--db", str(tmp_path / "c.db"), "--timeout", "20s")
    try:
        command = frames(master, 1)[0]
        answer = verifier.handle(json.dumps(command).encode())    # what the agent would run
        os.write(master, framing.frame(messages.encode(dev.env.make("resp", **answer))))
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
        os.close(slave)
    assert proc.returncode == 0, err.decode()
    resp = json.loads(out)
    assert resp["ok"] is True and resp["result"] == {"generation": 1, "collected": 42}
    assert resp["id"] == command["id"] and command["device"] == "ix15-serial"
