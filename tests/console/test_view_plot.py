"""The fleet table at 80 columns, the device detail, `plot` pixels and `export` CSV."""

import csv
import io
import os
import subprocess
import sys

from PIL import Image
from rich.console import Console

from agent import messages
from tests.conftest import REPO
from tests.console.fleetdata import Clock, Device
from tools.console import view
from tools.console.__main__ import main
from tools.console.ingest import Ingestor
from tools.console.store import Store


def fleet_db(path: str, clock: Clock) -> Store:
    """Three devices: one near its ceiling, one stopped, one fine; two minutes of history."""
    store = Store(path)
    ingest = Ingestor(store, clock=clock)
    near, stopped, fine = (Device("ix20-near", clock), Device("tx64-stopped", clock, "TX64", 262144),
                           Device("ex15-fine", clock, "EX15", 131072))
    for dev in (near, stopped, fine):
        ingest.accept(messages.encode(dev.status()))
    for i in range(120):
        rss = 30000 + (i % 20) * 1500
        ingest.accept(messages.encode(near.telemetry(rss if i < 110 else 62000)))
        if i % 20 == 19:
            ingest.accept(messages.encode(near.collect(rss, 30000)))
        ingest.accept(messages.encode(stopped.telemetry(50000)))
        ingest.accept(messages.encode(fine.telemetry(20000 + i)))
        clock.advance(40 if i == 60 else 1)   # one outage of 40 s in the middle
    ingest.accept(messages.encode(stopped.status("offline")))
    ingest.flush()
    return store


def render(renderable, width=80) -> str:
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


def test_fleet_table_fits_80_columns_and_puts_the_riskiest_first(tmp_path):
    clock = Clock()
    store = fleet_db(str(tmp_path / "c.db"), clock)
    devices = store.devices()
    text = render(view.fleet_table(devices, clock(), view.summary(devices, clock())))
    lines = text.rstrip("\n").splitlines()
    assert all(len(line.rstrip()) <= 80 for line in lines), text
    assert "3 devices: 2 online, 1 offline" in lines[0]
    rows = [line.split()[0] for line in lines[2:]]
    assert rows == ["tx64-stopped", "ix20-near", "ex15-fine"], text
    assert "stopped" in lines[2] and "ceil" in lines[3] and "low6" in lines[3]


def test_device_detail_shows_events_and_a_memory_sparkline(tmp_path):
    clock = Clock()
    store = fleet_db(str(tmp_path / "c.db"), clock)
    device = next(d for d in store.devices() if d["device"] == "ix20-near")
    text = render(view.device_detail(device, store.samples("ix20-near", limit=60),
                                     store.events("ix20-near", 10), store.alerts("ix20-near"),
                                     clock()))
    assert "ix20-near online" in text and "ALERT ceiling" in text
    spark = next(line for line in text.splitlines() if line.startswith("rss "))
    assert len(set(spark) & set(view.SPARK)) >= 4        # a curve, not a flat line
    assert text.count("collect") >= 5


def test_plot_draws_curves_markers_and_outages(tmp_path):
    clock = Clock()
    db = str(tmp_path / "c.db")
    fleet_db(db, clock).close()
    out = str(tmp_path / "near.png")
    # in a subprocess, as users run it (and matplotlib stays out of the test process)
    drawn = subprocess.run([sys.executable, "-m", "tools.console", "plot", "ix20-near", "--db", db,
                            "--out", out], cwd=REPO, capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, PYTHONPATH=REPO))
    assert drawn.returncode == 0, drawn.stderr
    assert "120 samples, 6 collections, 1 outages" in drawn.stdout
    assert 20000 < os.path.getsize(out) < 2000000
    image = Image.open(out).convert("RGB")
    assert image.size == (1100, 550)
    colours = image.getcolors(1 << 20)   # (count, rgb) per distinct colour: small, unlike per pixel
    coloured = [(n, p) for n, p in colours if max(p) - min(p) > 60]   # not white, grey or black
    assert sum(n for n, _ in coloured) > 2000, "the curves are missing: %d coloured pixels" % sum(
        n for n, _ in coloured)
    blue = sum(n for n, (r, g, b) in coloured if b > 150 and r < 80)   # RSS, tab:blue
    red = sum(n for n, (r, g, b) in coloured if r > 180 and g < 80 and b < 80)   # the ceiling line
    assert blue > 300 and red > 200, (blue, red)
    nothing = subprocess.run([sys.executable, "-m", "tools.console", "plot", "nope", "--db", db,
                              "--out", out], cwd=REPO, capture_output=True, text=True, timeout=120,
                             env=dict(os.environ, PYTHONPATH=REPO))
    assert nothing.returncode == 2 and "no samples of device 'nope'" in nothing.stderr


def test_export_writes_samples_and_events_as_csv(tmp_path, capsys):
    clock = Clock()
    db = str(tmp_path / "c.db")
    fleet_db(db, clock).close()
    assert main(["export", "ix20-near", "--csv", "--db", db]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 120 and rows[-1]["rss_kb"] == "62000" and rows[0]["time"].endswith("Z")
    out = str(tmp_path / "events.csv")
    assert main(["export", "ix20-near", "--csv", "--events", "--db", db, "--out", out]) == 0
    with open(out) as handle:
        events = list(csv.DictReader(handle))
    assert [e["event"] for e in events] == ["collect"] * 6


def test_devices_lists_the_fleet_as_json(tmp_path, capsys):
    import json
    clock = Clock()
    db = str(tmp_path / "c.db")
    fleet_db(db, clock).close()
    assert main(["devices", "--db", db, "--json"]) == 0
    got = {d["device"]: d for d in map(json.loads, capsys.readouterr().out.splitlines())}
    assert got["tx64-stopped"]["state"] == "offline" and got["ix20-near"]["rules"] == {"low-memory": 6}
    assert main(["devices", "--db", str(tmp_path / "missing.db")]) == 2
