"""gc-emulator while it runs and when it is stopped: progress on stderr, the table of the run so
far on Ctrl-C, and a `buf` column that counts what the device really still holds."""

import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

from agent.journal import Journal
from tests.conftest import EMULATOR_PROFILE, REPO
from tools.emulator.summary import device_report


def test_progress_lines_then_the_run_so_far_on_ctrl_c(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "tools.emulator", "run", "--profile",
                             EMULATOR_PROFILE, "--workload", "cycles", "--duration", "60",
                             "--workdir", str(tmp_path / "run")],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        progress = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if "device(s) running" in line:
                progress = line
                break
        assert "1 of 1 device(s) running" in progress and "collection" in progress, progress
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "interrupted at" in err and "Traceback" not in err, err
    assert "emulator-01  survived" in out, out
    assert "1 of 1 device(s) survived" in out


def fake_device(folder) -> SimpleNamespace:
    return SimpleNamespace(id="gw-01", folder=str(folder), kills=[], exits=[], boot=1, starts=[0.0],
                           backoffs=0, peak_rss_kb=1000, model=SimpleNamespace(kill_at_kb=65536),
                           console_path="")


def test_buf_counts_what_is_left_in_the_journal_not_a_depth_since_delivered(tmp_path):
    # The last telemetry said 7 were waiting: all of them were delivered right after.
    telemetry = {"v": 1, "type": "telemetry", "device": "gw-01", "boot": "b", "seq": 1, "ts": 1.0,
                 "samples": [], "buffered": 7, "dropped": 0}
    (tmp_path / "messages.jsonl").write_text(json.dumps(telemetry) + "\n")
    assert device_report(fake_device(tmp_path))["buffered"] == 0
    # What the agent spilled to flash at stop and has not sent is still buffered.
    journal = Journal(os.path.join(str(tmp_path), "flash", "mqtt___broker_1883"))
    for n in range(3):
        journal.append(b'{"seq":%d}' % n)
    journal.close()
    assert device_report(fake_device(tmp_path))["buffered"] == 3
