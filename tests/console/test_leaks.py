"""The console's leak verdict from recorded telemetry: the alert, `devices --json`, the order."""

import json
import subprocess
import sys

from agent import messages
from tests.conftest import REPO
from tests.console.fleetdata import Clock, Device
from tools.console.ingest import Ingestor
from tools.console.store import Store

HOUR = 3600.0
CEILING = 64 * 1024


def report(ingest, dev, clock, hours, floor, period=300.0, batch=12):
    """`hours` of 5-minute samples (floor(t) plus a 30-minute sawtooth), in batches of 12."""
    samples = []
    start = clock.now
    full = 0
    while clock.now - start < hours * HOUR:
        t = clock.now
        since = t % 1800
        if since < period:
            full += 1
        sample = dev.sample(int(floor(t) + 3000 * since / 1800), ts=t)
        sample["gc_collections"] = [50 * full, 5 * full, full]
        samples.append(sample)
        if len(samples) == batch:
            ingest.accept(messages.encode(dev.telemetry(0, samples=samples)))
            samples = []
        clock.advance(period)
        ingest.tick()


def fleet(tmp_path):
    clock = Clock(1.7e9)
    store = Store(str(tmp_path / "console.db"))
    raised = []
    ingest = Ingestor(store, clock=clock, on_alert=raised.append)
    return clock, store, ingest, raised


def devices_json(db):
    out = subprocess.run([sys.executable, "-m", "tools.console", "devices", "--db", db, "--json"],
                         cwd=REPO, capture_output=True, text=True, timeout=60, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_a_leak_is_alerted_once_with_rate_and_time_left_then_cleared(tmp_path):
    clock, store, ingest, alerts = fleet(tmp_path)
    dev = Device("leaky", clock=clock, ceiling_kb=CEILING)
    ingest.accept(messages.encode(dev.status()))
    start = clock.now
    report(ingest, dev, clock, 30, lambda t: 20000 + 1024 * (t - start) / HOUR)   # 1 MB an hour
    ingest.flush()
    leak_alerts = [a for a in alerts if a["alert"] == "leak"]
    assert [a["state"] for a in leak_alerts] == ["raised"]
    assert "MB/h" in leak_alerts[0]["detail"] and "ceiling in" in leak_alerts[0]["detail"]
    device = ingest.devices["leaky"]
    assert abs(device["leak_kb_per_hour"] - 1024) < 256
    true_left = (CEILING - (20000 + 1024 * (clock.now - start) / HOUR)) / 1024 * HOUR
    assert abs(device["ceiling_eta_s"] - true_left) / true_left < 0.25

    [row] = devices_json(store.path)
    assert abs(row["leak_kb_per_hour"] - 1024) < 256
    assert row["ceiling_eta_s"] > 0 and "leak" in row["alerts"]

    # The rise stops (the cache was pruned): the alert is cleared, once, and the fields go null.
    stopped = clock.now
    report(ingest, dev, clock, 30, lambda t: 20000 + 1024 * (stopped - start) / HOUR)
    ingest.flush()
    assert [a["state"] for a in alerts if a["alert"] == "leak"] == ["raised", "cleared"]
    [row] = devices_json(store.path)
    assert row["leak_kb_per_hour"] is None and row["ceiling_eta_s"] is None
    assert "leak" not in (row["alerts"] or {})


def test_devices_sort_soonest_to_ceiling_first_and_healthy_devices_have_null_fields(tmp_path):
    clock, store, ingest, alerts = fleet(tmp_path)
    fleet_devices = {"slow": 600, "fast": 2000, "ok": 0}
    devs = {name: Device(name, clock=clock, ceiling_kb=CEILING) for name in fleet_devices}
    for dev in devs.values():
        ingest.accept(messages.encode(dev.status()))
    start = clock.now
    for _ in range(36):   # the three devices report side by side, an hour at a time
        hour_start = clock.now
        for name, rate in fleet_devices.items():
            clock.now = hour_start
            report(ingest, devs[name], clock, 1, lambda t, r=rate: 20000 + r * (t - start) / HOUR)
    ingest.flush()
    rows = devices_json(store.path)
    assert [r["device"] for r in rows][:2] == ["fast", "slow"]
    by_name = {r["device"]: r for r in rows}
    assert by_name["ok"]["leak_kb_per_hour"] is None and by_name["ok"]["ceiling_eta_s"] is None
    assert by_name["fast"]["ceiling_eta_s"] < by_name["slow"]["ceiling_eta_s"]
    assert not any(a["alert"] == "leak" and a["device"] == "ok" for a in alerts)


def test_a_database_filled_by_another_tool_is_judged_from_its_telemetry(tmp_path):
    clock, store, ingest, _ = fleet(tmp_path)
    dev = Device("imported", clock=clock, ceiling_kb=CEILING)
    ingest.accept(messages.encode(dev.status()))
    start = clock.now
    report(ingest, dev, clock, 30, lambda t: 20000 + 1024 * (t - start) / HOUR)
    ingest.flush()
    store.db.execute("DROP TABLE leaks")   # as a database without the console's verdicts
    store.db.commit()
    [row] = devices_json(store.path)
    assert abs(row["leak_kb_per_hour"] - 1024) < 256


def test_a_restarted_console_carries_on_judging_the_same_boot(tmp_path):
    clock, store, ingest, alerts = fleet(tmp_path)
    dev = Device("leaky", clock=clock, ceiling_kb=CEILING)
    ingest.accept(messages.encode(dev.status()))
    start = clock.now
    report(ingest, dev, clock, 30, lambda t: 20000 + 1024 * (t - start) / HOUR)
    ingest.flush()
    again = Ingestor(store, clock=clock, on_alert=alerts.append)
    report(again, dev, clock, 2, lambda t: 20000 + 1024 * (t - start) / HOUR)
    assert again.devices["leaky"]["leak_kb_per_hour"] is not None
    assert [a["state"] for a in alerts if a["alert"] == "leak"] == ["raised"]   # not raised again


def test_absurd_sample_values_are_skipped_not_raised(tmp_path):
    clock, _store, ingest, _ = fleet(tmp_path)
    dev = Device("odd", clock=clock, ceiling_kb=CEILING)
    ingest.accept(messages.encode(dev.status()))
    odd = [dict(dev.sample(20000), gc_collections=["x", None])]   # in range, but no counts
    outcome = ingest.accept(messages.encode(dev.telemetry(0, samples=odd)))
    assert outcome.status == "new"
    assert ingest.devices["odd"]["leak_kb_per_hour"] is None
    # Out of range (a negative RSS, an integer past 64 bits): refused at decode and counted
    # (agent/bounds.py), so the judge never sees them.
    absurd = [dict(dev.sample(-5)), dict(dev.sample(20000), gc_collections=[1, 2, 10 ** 400])]
    outcome = ingest.accept(messages.encode(dev.telemetry(0, samples=absurd)))
    assert outcome.status == "bad" and outcome.reason == "range"
    assert ingest.devices["odd"]["leak_kb_per_hour"] is None


def test_the_fleet_table_lists_the_leaking_device_first_with_its_time_left(tmp_path):
    import io

    from rich.console import Console

    from tools.console import leaks, view
    clock, store, ingest, _ = fleet(tmp_path)
    ok, leaky = (Device("aaa-ok", clock=clock, ceiling_kb=CEILING),
                 Device("zzz-leaky", clock=clock, ceiling_kb=CEILING))
    for dev in (ok, leaky):
        ingest.accept(messages.encode(dev.status()))
    start = clock.now
    report(ingest, leaky, clock, 30, lambda t: 20000 + 1024 * (t - start) / HOUR)
    clock.now = start
    report(ingest, ok, clock, 30, lambda t: 20000)
    ingest.flush()
    devices = leaks.annotate(store, store.devices())
    console = Console(width=80, record=True, file=io.StringIO(), color_system=None)
    console.print(view.fleet_table(devices, clock.now))
    rows = console.export_text().splitlines()[1:]
    assert rows[0].split()[0] == "zzz-leaky" and "leak:" in rows[0] and "h" in rows[0].split("leak:")[1]
    assert rows[1].split()[0] == "aaa-ok" and "leak" not in rows[1]
