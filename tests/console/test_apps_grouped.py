"""Applications under their device (DEVICE@APP ids): one device row, its applications beneath."""

import io

from rich.console import Console

from tools.console import view
from tools.console.apps import grouped, split_id


def test_split_id_takes_the_agents_application_names_only():
    assert split_id("gw-1@modbus_bridge") == ("gw-1", "modbus_bridge")
    assert split_id("ops@site@logger") == ("ops@site", "logger")
    for plain in ("gw-1", "@logger", "gw-1@", "gw-1@bad/app", "gw-1@" + "x" * 33):
        assert split_id(plain) == (None, None), plain


def test_a_device_comes_once_where_its_riskiest_row_comes_with_its_apps_beneath():
    rows = [{"device": d} for d in ("gw-2@logger", "solo", "gw-1", "gw-2@modbus", "gw-1@app")]
    assert [(label, r and r["device"]) for label, r in grouped(rows)] == [
        ("gw-2", None), ("  @logger", "gw-2@logger"), ("  @modbus", "gw-2@modbus"),
        ("solo", "solo"), ("gw-1", "gw-1"), ("  @app", "gw-1@app")]


def test_the_fleet_table_and_its_key_order_show_the_device_once():
    now = 1000.0
    rows = [{"device": d, "model": "IX20", "state": "online", "last_seen": now, "interval_s": 60}
            for d in ("gw-1@modbus_bridge", "gw-1@logger", "ix20-7")]
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(view.fleet_table(rows, now, width=100))
    lines = [line for line in out.getvalue().splitlines()[1:] if line.strip()]
    assert [line.split()[0] for line in lines] == ["gw-1", "@logger", "@modbus_bridge", "ix20-7"]
    assert lines[1].startswith("  @logger") and "IX20" in lines[1] and "IX20" not in lines[0]
    assert view.shown_order(rows, now) == ["gw-1@logger", "gw-1@modbus_bridge", "ix20-7"]
