"""`drm:` within Remote Manager's limits: 250 points and 2 MB an upload, `rate` uploads
a minute, one at a time; the emulated digidevice refuses and throttles as the server does.

Pure decisions (agent/drmlimits.py) with synthetic inputs; the transport with the
Reporter and Outbox the agent uses, against the emulated digidevice package.
"""

import json
import os
import sys

import pytest

from agent import messages
from agent.drmlimits import RateLimit, classify, plan
from agent.outbox import Outbox, outgoing
from agent.reporter import Reporter
from agent.transports import check_url
from agent.transports.digi import DigiTransport
from tests.test_transport_digi import ONBOARD, Clock, _pump_until


@pytest.fixture
def device(tmp_path, monkeypatch):
    """The emulated digidevice importable, with this test's folder as the device's."""
    monkeypatch.syspath_prepend(ONBOARD)
    for name in [n for n in sys.modules if n == "digidevice" or n.startswith("digidevice.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setenv("GCEMU_DEVICE_DIR", str(tmp_path))
    yield tmp_path
    for name in [n for n in sys.modules if n == "digidevice" or n.startswith("digidevice.")]:
        del sys.modules[name]   # imported here: gone again, as on a desktop without it


def _jsonl(folder, name):
    try:
        with open(os.path.join(str(folder), name)) as handle:
            return [json.loads(line) for line in handle]
    except FileNotFoundError:
        return []


def test_plan_takes_whole_messages_while_they_fit_and_splits_a_big_one():
    assert plan([[10] * 100, [10] * 100, [10] * 100]) == (250, 2, 50)
    assert plan([[10] * 261]) == (250, 0, 250)                 # one telemetry of 130 samples
    assert plan([[10] * 11], 0, max_points=250) == (11, 1, 0)
    assert plan([[1024 * 1024 + 1] * 3]) == (1, 0, 1)          # two would pass 2 MB
    assert plan([[1024 * 1024] * 3]) == (2, 0, 2)              # exactly 2 MB is allowed
    assert plan([[10], [10]], max_points=1) == (1, 1, 0)
    assert plan([[5 * 1024 * 1024]]) == (1, 1, 0)              # never wedged: at least one point


def test_the_rate_limit_holds_any_rolling_minute_to_its_count():
    limit = RateLimit(12)
    starts = []
    now = 0.0
    while len(starts) < 40:
        now = limit.next_at(now)
        limit.started(now)
        starts.append(now)
        now += 0.1
    assert max(sum(1 for t in starts if s <= t < s + 60) for s in starts) == 12


@pytest.mark.parametrize("text, kind", [
    ("Remote Manager refused the upload: throttled: more than 60 uploads in 60 seconds", "throttled"),
    ("HTTP 429 Too Many Requests", "throttled"),
    ("Remote Manager refused the upload: too many data points in one upload: 261, at most 250",
     "refused"),
    ("Remote Manager is not reachable (no connection)", "link"),
    ("[Errno 101] Network is unreachable", "link"),
])
def test_errors_are_told_apart(text, kind):
    assert classify(RuntimeError(text)) == kind


def test_rate_is_a_url_option():
    check_url("drm:?rate=12")
    for bad in ("drm:?rate=0", "drm:?rate=61", "drm:?rate=x"):
        with pytest.raises(ValueError, match="rate"):
            check_url(bad)


def _telemetry(envelope, samples):
    batch = [{"ts": 1000.0 + i, "rss_kb": 30000 + i, "mem_free_kb": 90000} for i in range(samples)]
    return outgoing(envelope.make("telemetry", samples=batch, buffered=0, dropped=0))


def test_large_batches_through_an_outage_stay_under_the_limits_and_lose_nothing(device):
    """Telemetry of 130 samples (261 points each) and events, some queued during an outage:
    every upload within 250 points, none refused, every message up exactly once."""
    clock = Clock()
    transport = DigiTransport("drm:?batch=20&flush=0s", clock=clock)
    outbox = Outbox(4 * 1024 * 1024)
    reporter = Reporter(transport, outbox)
    envelope = messages.Envelope("ix20-01")
    for i in range(3):
        outbox.put(_telemetry(envelope, 130))
        outbox.put(outgoing(envelope.make("event", event="app", name="e%d" % i)))
    _pump_until(reporter, clock, lambda: reporter.acked >= 2)
    (device / "drm_down").write_text("")
    _pump_until(reporter, clock, lambda: reporter.link_up is False)
    for i in range(20):   # 20 queued messages: ~2,700 points waiting
        outbox.put(_telemetry(envelope, 130) if i % 2 else
                   outgoing(envelope.make("event", event="app", name="q%d" % i)))
    os.unlink(str(device / "drm_down"))
    _pump_until(reporter, clock, lambda: reporter.acked == 26, step=5.0, limit=30.0)
    uploads = _jsonl(device, "drm_uploads.jsonl")
    assert uploads and max(u["points"] for u in uploads) <= 250
    assert max(u["bytes"] for u in uploads) <= 2 * 1024 * 1024
    assert _jsonl(device, "drm_refused.jsonl") == []
    points = _jsonl(device, "datapoints.jsonl")
    seqs = [json.loads(p["data"])["seq"] for p in points if p["data_type"] == "JSON"]
    assert seqs == list(range(1, 27))                        # each message once, in order
    assert sum(1 for p in points if p["stream_id"] == "gcagent/rss_kb") == 13 * 130
    assert reporter.buffered == 0 and reporter.dropped == 0


def test_the_transport_spaces_uploads_at_the_accounts_rate(device):
    clock = Clock()
    transport = DigiTransport("drm:?batch=1&flush=0s&rate=12", clock=clock)
    started = []
    real = transport._limit.started
    transport._limit.started = lambda now: (started.append(now), real(now))
    reporter = Reporter(transport, Outbox(1024 * 1024))
    envelope = messages.Envelope("d")
    for i in range(30):
        reporter.outbox.put(outgoing(envelope.make("event", event="app", name="n%d" % i)))
    _pump_until(reporter, clock, lambda: reporter.acked == 30, step=1.0, limit=30.0)
    assert max(sum(1 for t in started if s <= t < s + 60) for s in started) <= 12
    assert clock.now - started[0] >= 120   # 30 uploads at 12 a minute: over two minutes


def test_the_emulated_server_refuses_and_throttles_as_remote_manager_does(device, monkeypatch):
    monkeypatch.setenv("GCEMU_DRM_RATE", "3")
    from digidevice import datapoint
    assert str(datapoint.DataType.INT) == "INT" and int(datapoint.DataType.JSON) == 6
    with pytest.raises(datapoint.DataPointException, match="at most 250"):
        datapoint.upload_multiple([datapoint.DataPoint("s", i) for i in range(251)])
    for i in range(3):
        datapoint.upload("s", i)
    with pytest.raises(datapoint.DataPointException, match="throttled"):
        datapoint.upload("s", 4)
    assert len(_jsonl(device, "drm_uploads.jsonl")) == 3
    assert [r["why"][:8] for r in _jsonl(device, "drm_refused.jsonl")] == ["too many", "throttle"]


def test_a_throttled_upload_is_a_back_off_not_a_lost_link(device, monkeypatch):
    monkeypatch.setenv("GCEMU_DRM_RATE", "1")   # the server allows less than we were told
    clock = Clock()
    transport = DigiTransport("drm:?batch=1&flush=0s", clock=clock)
    reporter = Reporter(transport, Outbox(1024 * 1024))
    envelope = messages.Envelope("d")
    for i in range(2):
        reporter.outbox.put(outgoing(envelope.make("event", event="app", name="n%d" % i)))
    said = _pump_until(reporter, clock, lambda: transport.throttled >= 1)
    assert reporter.link_up is True
    assert not any(e.kind == "link" and e.value is False for e in said)
    assert reporter.acked == 1 and reporter.buffered == 1
