"""The `drm:` transport against the emulated digidevice package (tools/emulator/onboard).

Real parts: the Reporter and Outbox the agent uses, the emulated
digidevice.datapoint writing the file the emulator reads, and its outage
flag (`drm_down`) that makes uploads fail as a dead link does.
"""

import json
import os
import sys
import time

import pytest

from agent import messages
from agent.errors import TransportError
from agent.outbox import Outbox, outgoing
from agent.reporter import Reporter
from agent.transports import check_url, open_transport
from agent.transports.digi import DigiTransport, parse_drm_url
from tests.conftest import REPO

ONBOARD = os.path.join(REPO, "tools", "emulator", "onboard")


class Clock(object):
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def device(tmp_path, monkeypatch):
    """The emulated digidevice importable, with this test's folder as the device's."""
    monkeypatch.syspath_prepend(ONBOARD)
    for name in [n for n in sys.modules if n == "digidevice" or n.startswith("digidevice.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setenv("GCEMU_DEVICE_DIR", str(tmp_path))
    return tmp_path


def _uploaded(folder):
    try:
        with open(os.path.join(str(folder), "datapoints.jsonl")) as handle:
            return [json.loads(line) for line in handle]
    except FileNotFoundError:
        return []


def _pump_until(reporter, clock, done, step=1.0, limit=10.0):
    """Pump, moving the fake clock on by `step`, until done(): uploads run on the
    transport's own thread, so their results arrive on a later pump."""
    said = []
    deadline = time.monotonic() + limit
    while not done():
        assert time.monotonic() < deadline, "still waiting after %ss" % limit
        said += reporter.pump(clock())
        clock.now += step
        time.sleep(0.002)
    return said


def _poll_until(transport, done, limit=10.0):
    said = []
    deadline = time.monotonic() + limit
    while not done(said):
        assert time.monotonic() < deadline, "still waiting after %ss" % limit
        said += transport.poll()
        time.sleep(0.002)
    return said


def _queue(outbox, envelope, n, type_="event"):
    for i in range(n):
        outbox.put(outgoing(envelope.make(type_, event="app", name="n%d" % i)))


def test_messages_go_up_in_batches_and_leave_the_outbox_when_uploaded(device):
    clock = Clock()
    transport = DigiTransport("drm:?batch=2&flush=0s", clock=clock)
    outbox = Outbox(64 * 1024)
    reporter = Reporter(transport, outbox)
    envelope = messages.Envelope("ix20-01")
    _queue(outbox, envelope, 5)
    _pump_until(reporter, clock, lambda: reporter.acked == 5)
    points = _uploaded(device)
    assert [json.loads(p["data"])["seq"] for p in points] == [1, 2, 3, 4, 5]
    assert {p["stream_id"] for p in points} == {"gcagent/event"}
    assert all(p["data_type"] == "JSON" for p in points)
    assert reporter.acked == 5 and reporter.buffered == 0 and reporter.dropped == 0
    assert transport.uploads == 3   # 2 + 2 + 1


def test_telemetry_also_becomes_numeric_streams(device):
    transport = DigiTransport("drm:?batch=1&stream=fleet/gc")
    transport.open()
    sample = {"ts": 5.0, "rss_kb": 1234, "mem_free_kb": 99}
    item = outgoing(messages.Envelope("d").make("telemetry", samples=[sample], buffered=0, dropped=0))
    assert transport.send(item) is False
    said = _poll_until(transport, lambda said: any(e.kind == "ack" for e in said))
    assert [e.kind for e in said] == ["link", "ack"]
    streams = {p["stream_id"]: p for p in _uploaded(device)}
    assert set(streams) == {"fleet/gc/telemetry", "fleet/gc/rss_kb", "fleet/gc/mem_free_kb"}
    assert streams["fleet/gc/rss_kb"]["data"] == "1234" and streams["fleet/gc/rss_kb"]["timestamp"] == 5.0


def test_a_status_message_goes_at_once_with_what_waits_before_it(device):
    transport = DigiTransport("drm:?batch=20&flush=1h")
    transport.open()
    envelope = messages.Envelope("d")
    transport.send(outgoing(envelope.make("event", event="app", name="x")))
    assert not _uploaded(device)
    transport.send(outgoing(envelope.make("status", state="offline")))
    _poll_until(transport, lambda said: sum(e.kind == "ack" for e in said) == 2)
    assert [json.loads(p["data"])["seq"] for p in _uploaded(device)] == [1, 2]


def test_a_stalled_upload_never_holds_up_the_agent_thread(device):
    # Over a cellular link that stops answering, upload_multiple hangs until its
    # timeout (20 s); the agent thread must go on sampling and collecting meanwhile.
    transport = DigiTransport("drm:?batch=20&flush=0s")
    transport.open()
    envelope = messages.Envelope("d")
    (device / "drm_stall").write_text("")
    transport.send(outgoing(envelope.make("status", state="online")))   # the upload starts and hangs
    transport.send(outgoing(envelope.make("event", event="app", name="meanwhile")))
    said = transport.poll() + transport.poll()
    # Had send() waited for the upload, it would have timed out: an error, link down.
    assert [(e.kind, e.value) for e in said] == [("link", True)]
    assert (device / "drm_stall").exists() and not _uploaded(device)
    os.unlink(str(device / "drm_stall"))   # Remote Manager answers again
    _poll_until(transport, lambda said: sum(e.kind == "ack" for e in said) == 2)
    assert [json.loads(p["data"])["seq"] for p in _uploaded(device)] == [1, 2]
    assert transport.uploads == 2   # the status, then what came while it hung
    transport.close()


def test_an_outage_keeps_every_message_and_delivers_it_after(device):
    clock = Clock()
    transport = DigiTransport("drm:?batch=3&flush=0s", clock=clock)
    outbox = Outbox(64 * 1024)
    reporter = Reporter(transport, outbox)
    envelope = messages.Envelope("ix20-01")
    (device / "drm_down").write_text("")
    said = []
    _queue(outbox, envelope, 4)
    said += _pump_until(reporter, clock, lambda: reporter.link_up is False)
    for _ in range(5):   # retries keep failing while more messages come
        said += _pump_until(reporter, clock, lambda: transport._inflight == 0, step=0.0)
        said += reporter.pump(clock())
        clock.now += 1
        _queue(outbox, envelope, 2)
    assert not _uploaded(device)
    assert reporter.link_up is False and reporter.acked == 0
    errors = [e for e in said if e.kind == "error"]
    assert len(errors) == 1 and "Remote Manager" in errors[0].value   # said once, not every retry
    assert reporter.buffered == 14
    os.unlink(str(device / "drm_down"))
    _pump_until(reporter, clock, lambda: reporter.acked == 14, step=5.0)
    seqs = [json.loads(p["data"])["seq"] for p in _uploaded(device)]
    assert seqs == list(range(1, 15))
    assert reporter.buffered == 0 and reporter.dropped == 0 and reporter.link_up is True


def test_without_digidevice_the_error_says_what_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "digidevice", None)   # import fails, as on a desktop
    with pytest.raises(TransportError, match="digidevice"):
        open_transport("drm:").open()


@pytest.mark.parametrize("url, wrong", [("drm://drm.digi.com", "no host"), ("drm:?batch=0", "batch"),
                                        ("drm:?every=5s", "unknown option"), ("drm:x", "no path")])
def test_bad_drm_urls_are_refused_with_the_reason(url, wrong):
    with pytest.raises(ValueError, match=wrong):
        check_url(url)


def test_defaults():
    assert parse_drm_url("drm:") == (20, 5.0, None)
    check_url("drm:?batch=5&flush=1s")


def test_emulated_runt_follows_digis_stubs(device):
    (device / "runt.json").write_text(json.dumps({"system.ram.available": 1048576}))
    from digidevice import runt
    with pytest.raises(runt.RuntException, match="start"):
        runt.get("system.ram.available")
    runt.start()
    try:
        assert runt.get("system.ram.available") == "1048576"
        assert runt.get("system.nothing") is None
        with runt.edit():
            runt.set("app.state", "ok")
        assert runt.get("app.state") == "ok"
    finally:
        runt.stop()
