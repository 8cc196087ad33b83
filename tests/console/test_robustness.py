"""Issue 14, the console's defects: absurd values, hostile strings, a huge fleet (real SQLite)."""

import contextlib
import csv
import io
import json
import sqlite3
import tracemalloc

import pytest
from rich.console import Console

from agent import messages
from tests.console.fleetdata import Clock, Device
from tools.console import view
from tools.console.__main__ import main
from tools.console.ingest import Ingestor
from tools.console.store import Store


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "console.db"))
    yield s
    s.close()


def raw(message: dict, **replace: str) -> bytes:
    """`message` as JSON with some fields' values replaced by raw JSON text (1e999, 2**63...)."""
    body = dict(message)
    marks = {}
    for i, field in enumerate(replace):
        body[field] = "@@%d@@" % i
        marks['"@@%d@@"' % i] = replace[field]
    text = json.dumps(body)
    for mark, value in marks.items():
        text = text.replace(mark, value)
    return text.encode()


def absurd_payloads() -> list:
    dev = Device("absurd")
    return [
        raw(dev.telemetry(1000), seq=str(2 ** 63)),                       # the example
        raw(dev.telemetry(1000), seq=str(10 ** 30)),
        raw(dev.status(), ceiling_kb=str(-(2 ** 70))),
        raw(dev.telemetry(1000), ts="1e999"),                             # parses as inf
        raw(dev.telemetry(1000), ts="1e300"),                             # finite, but no time
        raw(dev.event("collect"), rss_before_kb=str(2 ** 64), rss_after_kb="0", rule='"x"'),
        raw(dev.event("collect"), rule="[1, 2]"),                         # a list as a rule name
        raw(dev.event("app"), data="[" * 40 + "]" * 40),                  # deep nesting
        raw(dev.status(), model='"\\ud800"'),                             # a lone surrogate
        raw(dev.status(), device=json.dumps("d" * 5000)),                 # a giant device id
        raw(dev.status(), model=json.dumps("m" * 100000)),                # a giant model
        raw(dev.telemetry(1000), seq="-5"),
    ]


def test_one_absurd_message_is_refused_and_counted_and_healthy_devices_keep_being_recorded(store):
    ingest = Ingestor(store)
    healthy = Device("healthy")
    absurd = absurd_payloads()
    sent = 0
    for i in range(600):                                   # more than one write batch (500)
        if i % 50 == 0 and absurd:
            assert ingest.accept(absurd.pop()).status == "bad"
        assert ingest.accept(messages.encode(healthy.telemetry(1000 + i))).status == "new"
        sent += 1
    ingest.flush()
    assert len(store.messages("healthy")) == sent
    assert store.messages("absurd") == []
    assert ingest.bad["range"] == len(absurd_payloads())   # refused and counted as such
    assert ingest.stats["unwritten"] == 0 and ingest.stats["store_refused"] == 0


def test_a_row_the_database_refuses_is_dropped_alone_and_counted(store):
    # A real refusal by SQLite itself, for one device's rows only, inside a batch of others.
    store.db.execute("CREATE TRIGGER refuse_poison BEFORE INSERT ON messages "
                     "WHEN NEW.device = 'poison' BEGIN SELECT RAISE(ABORT, 'refused'); END")
    ingest = Ingestor(store)
    healthy, poison = Device("healthy"), Device("poison")
    for i in range(40):
        ingest.accept(messages.encode(healthy.telemetry(1000 + i)))
        if i == 17:
            ingest.accept(messages.encode(poison.telemetry(5)))
    assert ingest.flush() == 40                            # the batch is written, less one row
    assert len(store.messages("healthy")) == 40 and store.messages("poison") == []
    assert ingest.stats["store_refused"] == 1 and ingest.stats["unwritten"] == 1
    assert ingest.accept(messages.encode(healthy.telemetry(1))).status == "new"
    assert ingest.flush() == 1                             # nothing stuck behind it
    line = view.summary(store.devices(), 0, None)          # the table's header counts devices
    assert line.startswith("2 devices")
    from tools.console.fleet import Fleet, summary
    assert "1 unwritten" in summary(Fleet([], 0, 0, 0), ingest.stats)


HOSTILE = ["[/]", "[bold red]x[/bold red", "\x1b]0;pwned\x07", "\x1b[2J\x1b[H", "a\x9bb\u202ec",
           "=cmd|' /C calc'!A0", "[link=http://x]y"]


def hostile_fleet(path: str) -> Store:
    clock = Clock()
    store = Store(path)
    ingest = Ingestor(store, clock=clock)
    for i, name in enumerate(HOSTILE):
        dev = Device("dev-%d" % i, clock, model=name)
        ingest.accept(messages.encode(dev.status()))
        ingest.accept(messages.encode(dev.telemetry(1000)))
        ingest.accept(messages.encode(dev.event("collect", rule=name, rss_before_kb=10,
                                                rss_after_kb=5, error=name, step=name)))
        ingest.accept(messages.encode(dev.event("leak_suspected", rule=name)))
    odd = Device("[/]\x1b[31m", clock, model="[/]")         # a device id that is markup itself
    ingest.accept(messages.encode(odd.status()))
    ingest.flush()
    return store


def terminal(renderable, width=200) -> str:
    out = io.StringIO()
    Console(file=out, width=width, force_terminal=True, color_system="truecolor").print(renderable)
    return out.getvalue()


def test_device_strings_are_shown_as_text_and_terminal_controls_never_reach_the_terminal(tmp_path):
    store = hostile_fleet(str(tmp_path / "c.db"))
    devices = store.devices()
    for width in (80, 200):
        table = terminal(view.fleet_table(devices, width=width, title="t"), width)
        assert "[/]" in table                              # the text itself, not a markup error
    table = terminal(view.fleet_table(devices, width=200))
    for device in devices:
        detail = terminal(view.device_detail(device, store.samples(device["device"]),
                                             store.events(device["device"]),
                                             store.alerts(device["device"])))
        table += detail
    assert "\x1b]" not in table and "\x1b[2J" not in table and "\x07" not in table
    assert "\x9b" not in table and "\u202e" not in table
    assert "\\x1b]0;pwned\\x07" in table and "\\u202e" in table   # visible, escaped
    assert "[bold red]x[/bold red" in table and "[link=http://x]y" in table


def test_devices_and_export_survive_hostile_strings(tmp_path, capsys):
    db = str(tmp_path / "c.db")
    hostile_fleet(db).close()
    assert main(["devices", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "[/]" in out and "\x1b]" not in out and "8 devices" in out
    assert main(["export", "dev-5", "--csv", "--events", "--db", db]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    rules = [r["rule"] for r in rows]
    assert rules and all(r == "'=cmd|' /C calc'!A0" for r in rules)   # a spreadsheet shows text
    assert main(["export", "dev-2", "--csv", "--events", "--db", db]) == 0
    assert "\x1b" not in capsys.readouterr().out


def test_the_device_table_is_bounded_and_an_evicted_device_carries_on_from_the_store(store):
    clock = Clock()
    ingest = Ingestor(store, clock=clock, max_devices=50)
    first = Device("first", clock)
    ingest.accept(messages.encode(first.status()))
    ingest.accept(messages.encode(first.collect(2000, 1000, rule="periodic")))
    for i in range(500):
        clock.advance(1)
        ingest.accept(messages.encode(Device("crowd-%03d" % i, clock).status()))
        assert len(ingest.devices) <= 50
    ingest.flush()
    assert "first" not in ingest.devices and ingest.stats["evicted"] == 451
    assert len(store.devices()) == 501                     # every one is in the database
    ingest.accept(messages.encode(first.collect(2000, 1000, rule="periodic")))
    assert ingest.devices["first"]["rules"] == {"periodic": 2}   # its counts came back
    ingest.accept(messages.encode(first.status()))         # same boot: not a duplicate of seq 1
    ingest.flush()
    assert len(store.messages("first")) == 4 and store.device("first")["missing"] == 0
    restarted = Ingestor(Store(store.path), max_devices=50)   # a restart loads the newest 50
    assert len(restarted.devices) == 50 and "first" in restarted.devices


def test_devices_on_a_large_fleet_lists_the_riskiest_in_bounded_memory(tmp_path, capsys):
    db = str(tmp_path / "big.db")
    store = Store(db)
    rows = [{"device": "dev-%05d" % i, "state": "online", "model": "IX20", "ceiling_kb": 65536,
             "last_seen": 2e9, "rss_kb": 1000 + i, "rules": {"low-memory": 1}, "alerts": {},
             "status": {}} for i in range(20000)]
    rows[12345]["state"] = "offline"                        # the riskiest of all
    store.write_batch([], [], rows, [])
    store.close()
    del rows
    tracemalloc.start()
    try:
        assert main(["devices", "--db", db, "--limit", "30"]) == 0
        _, table_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        with open(str(tmp_path / "listing"), "w") as out, contextlib.redirect_stdout(out):
            assert main(["devices", "--db", db, "--json"]) == 0
        _, json_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    table = capsys.readouterr().out
    with open(str(tmp_path / "listing")) as handle:
        listing = handle.read()
    assert table.startswith("20000 devices: 19999 online, 1 offline")
    assert "the 30 riskiest shown; 19970 more not shown" in table
    assert table.count("dev-") == 30 and table.index("dev-12345") < table.index("dev-19999")
    assert listing.count("\n") == 20000
    # Every row at once took ~2.5 KB a device (72 s and 285 MB for 100,000 before issue 14).
    assert table_peak < 8 * 1024 * 1024 and json_peak < 8 * 1024 * 1024, (table_peak, json_peak)


def test_a_device_inventing_rule_names_does_not_grow_the_console(store):
    ingest = Ingestor(store)
    dev = Device("inventive")
    for i in range(200):
        ingest.accept(messages.encode(dev.collect(2000, 1000, rule="r%d" % i)))
    rules = ingest.devices["inventive"]["rules"]
    assert len(rules) == 33 and rules["other"] == 168


def test_a_store_error_that_is_not_a_rows_fault_keeps_the_whole_batch(store):
    ingest = Ingestor(store)
    dev = Device("a")
    for _ in range(3):
        ingest.accept(messages.encode(dev.telemetry(1000)))
    blocker = sqlite3.connect(store.path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")
    store.db.execute("PRAGMA busy_timeout=50")
    with pytest.raises(sqlite3.OperationalError):
        ingest.flush()
    blocker.rollback()
    blocker.close()
    assert ingest.flush() == 3 and ingest.stats["store_refused"] == 0


def test_plot_draws_a_device_whose_strings_are_mathtext(tmp_path):
    from tools.console.plot import plot
    clock = Clock()
    store = Store(str(tmp_path / "c.db"))
    ingest = Ingestor(store, clock=clock)
    dev = Device("dev-1", clock, model="$\\frac{$")
    ingest.accept(messages.encode(dev.status()))
    for i in range(5):
        clock.advance(1)
        ingest.accept(messages.encode(dev.telemetry(1000 + i)))
        ingest.accept(messages.encode(dev.collect(2000, 1000, rule="$x^{$\x1b")))
    ingest.flush()
    drawn = plot(store, "dev-1", str(tmp_path / "p.png"))   # mathtext would raise while drawing
    assert drawn["samples"] == 5 and drawn["collections"] == 5
    assert (tmp_path / "p.png").stat().st_size > 1000
