"""gc-emulator's `buf` column counts what the device really still holds at the end."""

import json
import os
from types import SimpleNamespace

from agent.journal import Journal
from tools.emulator.summary import device_report


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
