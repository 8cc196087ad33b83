"""`python -m agent decode` as a person watching a port uses it: resent frames once, Ctrl-C ends
with the summary and no traceback."""

import json
import os
import signal
import subprocess
import sys
import time

from agent import framing, messages
from tests.conftest import REPO


def frame(seq: int, device: str = "d") -> bytes:
    return framing.frame(messages.encode({"v": 1, "type": "event", "device": device, "boot": "b",
                                          "seq": seq, "ts": 1.0, "event": "collect"}))


def test_resent_frames_are_written_once_and_counted(tmp_path):
    capture = tmp_path / "capture.txt"
    # a sender resends 1 and 2 until they are acknowledged; another device's seq 1 is not a resend
    capture.write_bytes(frame(1) + frame(2) + frame(1) + frame(2) + frame(2) + frame(1, "e"))
    done = subprocess.run([sys.executable, "-m", "agent", "decode", str(capture)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    got = [(m["device"], m["seq"]) for m in map(json.loads, done.stdout.splitlines())]
    assert got == [("d", 1), ("d", 2), ("e", 1)]
    assert "3 messages, 0 refused, 3 duplicates dropped" in done.stderr, done.stderr
    assert done.returncode == 0


def test_ctrl_c_on_a_live_stream_prints_the_summary_and_no_traceback():
    read, write = os.pipe()
    proc = subprocess.Popen([sys.executable, "-m", "agent", "decode"], cwd=REPO, stdin=read,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    os.close(read)
    try:
        os.write(write, frame(1) + frame(1) + frame(2))
        assert json.loads(proc.stdout.readline())["seq"] == 1   # decoding, and waiting for more
        assert json.loads(proc.stdout.readline())["seq"] == 2
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        os.close(write)
    assert "Traceback" not in err, err
    assert "decode: 2 messages, 0 refused, 1 duplicate dropped" in err and "interrupted" in err, err
    assert proc.returncode == 130
