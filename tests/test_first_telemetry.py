"""The first telemetry leaves at once, whatever the profile's interval and batch; the
shortest run still reports one sample."""

import json
import os
import signal
import subprocess
import sys
import time

from agent.probes import Sample
from agent.telemetry import TelemetryBatch
from tests.conftest import REPO
from tests.test_runtime import make_agent, sent


def sample(ts: float) -> Sample:
    return Sample(ts, ts, 200000, 262144, 20000, 65536, 0.0, True, (1, 0, 0), (5, 1, 0), 10, 0,
                  0.5, 0.25)


def test_a_cellular_batch_sends_its_first_sample_at_once_then_twelve_at_a_time():
    batch = TelemetryBatch(interval=300.0, size=12, start=0.0)
    sent_at = []
    for minute in range(0, 24 * 60 + 1):   # a tick a minute for a day
        now = minute * 60.0
        if batch.add(sample(now), now) and batch.full():
            sent_at.append((now, len(batch.take())))
    assert sent_at[0] == (0.0, 1)                 # not an hour later
    assert sent_at[1] == (12 * 300.0, 12)         # then the profile's own rhythm
    assert all(n == 12 for _, n in sent_at[1:])


def test_stopped_before_the_first_tick_still_reports_one_sample(tmp_path):
    agent, _, _, link = make_agent(tmp_path, "short")
    agent.start = lambda: None   # the agent thread never got to its first tick
    agent.stop()
    telemetry = [m for m in sent(link) if m["type"] == "telemetry"]
    assert len(telemetry) == 1 and len(telemetry[0]["samples"]) == 1
    assert telemetry[0]["samples"][0]["rss_kb"] == 20 * 1024


def test_the_stock_cellular_profile_reports_within_seconds_of_start(tmp_path):
    out = tmp_path / "m.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "agent", "run", "--profile",
                             os.path.join(REPO, "device_profiles", "ix20.ini"), "--report",
                             "file://%s" % out], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        telemetry = []
        while not telemetry and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            lines = out.read_text().splitlines() if out.exists() else []
            telemetry = [m for m in map(json.loads, lines) if m["type"] == "telemetry"]
        assert telemetry, "no telemetry before stop; stderr: %s" % proc.stderr.read1(4096)
        assert telemetry[0]["samples"][0]["rss_kb"] > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_a_sample_already_sent_is_not_sent_again_at_stop(tmp_path):
    agent, _, _, link = make_agent(tmp_path, "once")
    agent.start = lambda: None
    agent._tick()   # the first sample leaves at once
    agent.stop()    # nothing newer: nothing more to send
    stamps = [s["ts"] for m in sent(link) if m["type"] == "telemetry" for s in m["samples"]]
    assert stamps == [1000.0]
