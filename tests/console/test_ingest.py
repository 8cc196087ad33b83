"""The ingestor: one record per message, gaps, bad input, silence, alerts (real SQLite files)."""

import json
import sqlite3
import tracemalloc
import zlib

import pytest

from agent import messages
from tests.console.fleetdata import Clock, Device
from tools.console.ingest import Ingestor
from tools.console.store import Store


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "console.db"))
    yield s
    s.close()


def test_every_message_is_recorded_once_and_gaps_show_until_filled(store):
    ingest = Ingestor(store)
    dev = Device("ix20-1")
    sent = [dev.status(), dev.telemetry(30000), dev.collect(40000, 20000), dev.telemetry(31000)]
    skipped = dev.telemetry(32000)               # never delivered (for now)
    sent.append(dev.telemetry(33000))
    for m in sent + sent[:3]:                    # three duplicates, as a resending agent makes
        ingest.accept(messages.encode(m))
    ingest.accept(messages.encode(sent[-1], compress=True))   # zlib copy is a duplicate too
    ingest.flush()
    rows = store.messages("ix20-1")
    assert sorted(m["seq"] for m in rows) == [1, 2, 3, 4, 6]
    assert ingest.stats["duplicates"] == 4
    assert store.devices()[0]["missing"] == 1
    ingest.accept(messages.encode(skipped))      # a replay arrives late: the gap closes
    ingest.flush()
    assert store.devices()[0]["missing"] == 0


def test_duplicates_are_recognised_after_a_restart_of_the_console(store, tmp_path):
    dev = Device("ix20-1")
    sent = [dev.status(), dev.telemetry(30000)]
    first = Ingestor(store)
    for m in sent:
        first.accept(messages.encode(m))
    first.flush()
    again = Ingestor(Store(store.path))
    assert [again.accept(messages.encode(m)).status for m in sent] == ["duplicate", "duplicate"]
    assert again.accept(messages.encode(dev.telemetry(1))).status == "new"


def _zlib_bomb(megabytes: int = 50) -> bytes:
    """~50 KB that inflate to `megabytes` of JSON whitespace, built a megabyte at a time.

    (Compressing one 50 MB string would raise this test process's peak RSS, and
    other tests measure children's peak RSS, which Linux carries over from the
    parent at fork.)
    """
    packer = zlib.compressobj(9)
    parts = [packer.compress(b"{")]
    chunk = b" " * (1024 * 1024)
    parts += [packer.compress(chunk) for _ in range(megabytes)]
    parts.append(packer.compress(b"}") + packer.flush())
    return b"".join(parts)


ZLIB_BOMB = _zlib_bomb()


def malformed(i: int) -> bytes:
    """Ten kinds of junk, each a way a payload can be wrong."""
    good = messages.encode(Device("x").telemetry(1000))
    kinds = [
        b"\x00\xffnot json at all",
        b'{"v":1,"type":"telemetry"',                                       # cut short
        json.dumps({"v": 2, "type": "status", "device": "d", "boot": "b", "seq": 1, "ts": 1}).encode(),
        json.dumps({"v": 1, "type": "telemetry", "device": 5, "boot": "b", "seq": "1",
                    "ts": "now", "samples": "many", "buffered": 0, "dropped": 0}).encode(),
        b"[" * 100000,                                                      # deep nesting
        b"x" * (300 * 1024),                                                # over the size cap
        ZLIB_BOMB,                                                          # inflates to 50 MB
        b"\x78\x9c garbage that is not zlib",
        json.dumps({"v": 1, "type": "shell", "device": "d", "boot": "b", "seq": 1,
                    "ts": 1}).encode(),
        good.replace(b'"seq":', b'"seq":-') .replace(b'"ts":', b'"ts":"x",  "t":'),
    ]
    return kinds[i % len(kinds)]


def test_a_thousand_malformed_payloads_are_counted_refused_and_memory_stays_bounded(store):
    ingest = Ingestor(store)
    junk = [malformed(i) for i in range(10)]
    tracemalloc.start()
    try:
        for i in range(1000):
            outcome = ingest.accept(junk[i % 10])
            assert outcome.status == "bad"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ingest.stats["bad"] == 1000 and ingest.stats["recorded"] == 0
    assert set(k for k, n in ingest.bad.items() if n) == {"not_json", "schema", "too_large", "zlib"}
    assert peak < 8 * 1024 * 1024, "refusing junk held %d bytes" % peak   # a 50 MB bomb never inflates
    dev = Device("after-junk")
    assert ingest.accept(messages.encode(dev.status())).status == "new"   # still working
    ingest.flush()
    assert store.messages() and store.messages()[0]["device"] == "after-junk"


def test_a_message_on_another_devices_topic_is_refused(store):
    ingest = Ingestor(store)
    m = Device("ix20-1").status()
    assert ingest.accept(messages.encode(m), "gcagent/ix20-2/status").status == "bad"
    assert ingest.bad["topic"] == 1
    assert ingest.accept(messages.encode(m), "gcagent/ix20-1/status").status == "new"


def test_offline_by_its_status_by_its_will_and_by_silence(store):
    clock = Clock()
    alerts = []
    ingest = Ingestor(store, clock=clock, on_alert=alerts.append)
    a, b, c = Device("a", clock), Device("b", clock), Device("c", clock)
    for dev in (a, b, c):
        ingest.accept(messages.encode(dev.status()))
    for _ in range(4):                                  # telemetry every 10 s: period learnt
        for dev in (a, b, c):
            ingest.accept(messages.encode(dev.telemetry(1000)))
        clock.advance(10)
    ingest.accept(messages.encode(a.status("offline")))
    ingest.accept(messages.encode(b.will()))
    clock.advance(15)
    ingest.tick()
    assert ingest.devices["c"]["state"] == "online"     # silent 25 s: under 3 x its 10 s
    clock.advance(10)
    ingest.tick()
    states = {d: (ingest.devices[d]["state"], ingest.devices[d]["reason"]) for d in "abc"}
    assert states == {"a": ("offline", "stopped"), "b": ("offline", "lost"),
                      "c": ("offline", "silent")}
    # a stopped cleanly: stopped, no alert; b vanished, c went silent: alerts
    assert sorted(x["device"] for x in alerts if x["alert"] == "offline") == ["b", "c"]
    ingest.accept(messages.encode(c.telemetry(1000)))   # c speaks again
    assert ingest.devices["c"]["state"] == "online"
    assert [x["state"] for x in alerts if x["device"] == "c"] == ["raised", "cleared"]


def test_the_will_of_an_old_boot_does_not_mark_a_restarted_device_offline(store):
    ingest = Ingestor(store)
    old = Device("a")
    ingest.accept(messages.encode(old.status()))
    new = Device("a")                                   # restarted: new boot
    ingest.accept(messages.encode(new.status()))
    ingest.accept(messages.encode(old.will()))          # the broker noticed the old session late
    assert ingest.devices["a"]["state"] == "online"


def test_alerts_for_ceiling_escalation_and_drops_are_raised_and_recorded(store):
    alerts = []
    ingest = Ingestor(store, on_alert=alerts.append, ceiling_margin=0.10)
    dev = Device("a", ceiling_kb=65536)
    for m in (dev.status(), dev.telemetry(62000), dev.event("alert", rule="low-memory"),
              dev.collect(62000, 62100), dev.collect(62100, 62100), dev.collect(62100, 62200),
              dev.telemetry(62000, dropped=4)):
        ingest.accept(messages.encode(m))
    ingest.flush()
    raised = {a["alert"] for a in alerts if a["state"] == "raised"}
    # collections that gave back no RSS are no leak (tests/console/test_leaks.py has leaks)
    assert raised == {"ceiling", "escalated", "dropped"}
    recorded = {(a["kind"], a["state"]) for a in store.alerts("a")}
    assert {("ceiling", "raised"), ("escalated", "raised")} <= recorded
    ingest.accept(messages.encode(dev.event("recovered", rule="low-memory")))
    assert set(ingest.devices["a"]["alerts"]) == {"ceiling", "dropped"}


def test_a_console_started_mid_boot_counts_no_gap_for_what_came_before_it(store):
    ingest = Ingestor(store)
    dev = Device("a")
    status = dev.status()                          # seq 1, retained at the broker
    for _ in range(40):
        dev.telemetry(1000)                        # sent before the console started
    ingest.accept(messages.encode(status), retained=True)
    for _ in range(3):
        ingest.accept(messages.encode(dev.telemetry(1000)))
    dev.telemetry(1000)                            # this one is lost
    ingest.accept(messages.encode(dev.telemetry(1000)))
    ingest.flush()
    assert store.devices()[0]["missing"] == 1


def test_retain_prunes_old_rows_and_keeps_recent_ones(store):
    clock = Clock(1_000_000.0)
    ingest = Ingestor(store, clock=clock)
    dev = Device("a", clock)
    ingest.accept(messages.encode(dev.telemetry(1000)))
    clock.advance(40 * 86400)
    ingest.accept(messages.encode(dev.telemetry(2000)))
    ingest.flush()
    assert store.prune(clock() - 30 * 86400) >= 2          # the old message and its sample
    assert [s["rss_kb"] for s in store.samples("a")] == [2000]
    assert len(store.messages("a")) == 1


def test_a_store_that_cannot_be_written_keeps_the_batch_for_the_next_try(store):
    ingest = Ingestor(store)
    dev = Device("a")
    blocker = sqlite3.connect(store.path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")                 # another writer holds the database
    store.db.execute("PRAGMA busy_timeout=100")
    for _ in range(3):
        assert ingest.accept(messages.encode(dev.telemetry(1000))).status == "new"
    with pytest.raises(sqlite3.OperationalError):
        ingest.flush()
    blocker.rollback()
    blocker.close()
    assert ingest.flush() == 3
    assert sorted(m["seq"] for m in store.messages("a")) == [1, 2, 3]
