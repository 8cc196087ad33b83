"""The web console's parts without a browser: downsampling, live diffs, security, delivery, metrics."""

import argparse
import json
import os
import re
import time

import pytest
from starlette.testclient import TestClient

from agent import messages
from tests.conftest import REPO
from tests.console.fleetdata import Clock, Device
from tools.console.__main__ import main
from tools.console.ingest import Ingestor
from tools.console.store import Store
from tools.console.synth import history
from tools.console.web import fleet, series
from tools.console.web.delivery import Delivery, Sender
from tools.console.web.metrics import FleetCollector, Tally, registry, render
from tools.console.web.security import AuthError, Guard, is_loopback, load_users
from tools.console.web.serve import build

DAY = 86400.0


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    """30 days of one-minute samples of one device (43,200 minutes less a 6 h outage)."""
    path = str(tmp_path_factory.mktemp("month") / "c.db")
    end = 1.7e9
    counts = history(path, "ix20-0001", days=30, end=end)
    return path, end, counts


def test_a_month_ships_at_most_2000_points_a_series_and_keeps_its_peaks(month):
    path, end, counts = month
    db = series.connect(path)
    started = time.perf_counter()
    found = series.history(db, "ix20-0001", end - 30 * DAY, end, 65536)
    took = time.perf_counter() - started
    line = found["series"]
    assert line["raw"] == counts["samples"] > 40000
    assert all(len(line[k]) <= series.MAX_POINTS for k in ("t", "rss_kb", "free_kb", "pause_ms"))
    peak = db.execute("SELECT MAX(rss_kb), MIN(mem_free_kb), MAX(pause_ms_max) FROM samples").fetchone()
    assert max(v for v in line["rss_kb"] if v is not None) == peak[0]     # the worst case survives
    assert min(v for v in line["free_kb"] if v is not None) == peak[1]
    assert max(v for v in line["pause_ms"] if v is not None) == peak[2]
    kinds = {p["kind"] for p in found["points"]}
    assert {"oom", "alert", "leak_suspected"} <= kinds, kinds
    outages = [s for s in found["spans"] if s["kind"] == "outage" and s["label"] == "no samples"]
    assert len(outages) == 1 and 5.5 * 3600 < outages[0]["to"] - outages[0]["from"] < 6.8 * 3600
    assert len(found["collections"]) == counts["collections"]
    on_line = [c for c in found["collections"] if c["y_kb"] is not None]
    assert len(on_line) >= 0.9 * len(found["collections"])
    assert {c["colour"] for c in found["collections"] if c["rule"] == "periodic"} == {"#1f77b4"}
    assert took < 2.0


def test_a_narrow_range_ships_the_raw_samples(month):
    path, end, _ = month
    db = series.connect(path)
    found = series.history(db, "ix20-0001", end - 3600, end, 65536)
    assert found["series"]["bucket_s"] == 0.0 and 55 <= len(found["series"]["t"]) <= 61


def test_changes_send_only_rows_that_differ():
    changes = fleet.Changes()
    rows = [{"device": "a", "rss_kb": 1}, {"device": "b", "rss_kb": 2}]
    assert changes.update(rows) == {"full": True, "rows": rows, "removed": []}
    assert changes.update([{"device": "a", "rss_kb": 1}, {"device": "b", "rss_kb": 3}]) == {
        "full": False, "rows": [{"device": "b", "rss_kb": 3}], "removed": []}
    assert changes.update([{"device": "b", "rss_kb": 3}])["removed"] == ["a"]
    assert fleet.matches({"device": "ix20-7", "model": "IX20", "state": "online", "alerts": {}},
                         "ix20-*", "IX20", "online")
    assert not fleet.matches({"device": "tx64-1", "model": "TX64", "state": "online",
                              "alerts": {}}, "ix20")


def test_auth_file_must_be_private_and_secrets_long(tmp_path):
    path = tmp_path / "auth"
    path.write_text("alice:correct-horse-battery\nbob:short\n")
    os.chmod(path, 0o644)
    with pytest.raises(AuthError, match="chmod 600"):
        load_users(str(path))
    os.chmod(path, 0o600)
    with pytest.raises(AuthError, match="shorter than 12"):
        load_users(str(path))
    path.write_text("alice:correct-horse-battery\nsingle-token-0123456789\n")
    assert load_users(str(path)) == {"alice": "correct-horse-battery",
                                     "operator": "single-token-0123456789"}
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")


def test_serve_refuses_to_listen_beyond_loopback_without_auth(tmp_path, capsys):
    code = main(["serve", "--db", str(tmp_path / "c.db"), "--listen", "0.0.0.0:8080"])
    assert code == 2
    assert "beyond loopback: give --auth FILE" in capsys.readouterr().err


class Flaky(Sender):
    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures, self.got = failures, []

    def send(self, alert):
        if self.failures:
            self.failures -= 1
            raise OSError("connection refused")
        self.got.append(alert)


def _alert(device="a", kind="ceiling"):
    return {"device": device, "alert": kind, "state": "raised", "detail": "d", "ts": 1.0}


def test_delivery_retries_until_delivered_once_and_bounds_its_queue():
    clock = Clock(0.0)
    sender = Flaky(failures=2)
    delivery = Delivery([sender], queue=3, retry_for=60, backoff=1.0, clock=clock)
    delivery.offer(_alert())
    for _ in range(3):
        delivery._round()
        clock.advance(5)
    delivery._round()
    assert [a["device"] for a in sender.got] == ["a"]
    assert delivery.stats["attempts"] == 3 and delivery.stats["delivered"] == 1
    for i in range(5):   # a receiver gone for good: the queue keeps the newest 3
        delivery.offer(_alert("d%d" % i))
    assert delivery.stats["dropped"] == 2
    delivery.silenced = lambda device, kind: device == "quiet"
    delivery.offer(_alert("quiet"))
    assert delivery.stats["silenced"] == 1 and len(delivery.queues["flaky"]) == 3


def test_delivery_gives_an_alert_up_after_retry_for():
    clock = Clock(0.0)
    sender = Flaky(failures=100)
    delivery = Delivery([sender], retry_for=10, backoff=1.0, clock=clock)
    delivery.offer(_alert())
    for _ in range(20):
        delivery._round()
        clock.advance(2)
    assert delivery.stats["gave_up"] == 1 and not delivery.queues["flaky"]


def small_fleet(path: str):
    clock = Clock()
    store = Store(path)
    ingest = Ingestor(store, clock=clock, default_interval=60)
    a, b = Device("ix20-a", clock), Device("tx64-b", clock, "TX64", 131072)
    for dev in (a, b):
        ingest.accept(messages.encode(dev.status()))
    for i in range(20):
        ingest.accept(messages.encode(a.telemetry(30000 + i * 1700)))   # ends near its ceiling
        ingest.accept(messages.encode(b.telemetry(40000)))
        if i % 5 == 4:
            ingest.accept(messages.encode(a.collect(40000, 36000, rule="periodic")))
        clock.advance(10)
    ingest.flush()
    return store, ingest, clock


def test_metrics_are_gcagent_series_per_device_and_feed_the_grafana_dashboard(tmp_path):
    store, ingest, clock = small_fleet(str(tmp_path / "c.db"))
    tally = Tally(store.path)
    devices = list(ingest.devices.values())
    text = render(registry(FleetCollector(lambda: devices, tally, 60, clock))).decode()
    names = set()
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        assert line.startswith("gcagent_") and re.search(r'device="(ix20-a|tx64-b)"', line), line
        labels = set(re.findall(r'(\w+)="', line))
        assert labels <= {"device", "rule", "alert"}, line
        names.add(line.split("{")[0])
    assert 'gcagent_collections_total{device="ix20-a",rule="periodic"} 4.0' in text
    assert 'gcagent_reclaimed_bytes_total{device="ix20-a"} 1.6384e+07' in text   # 4 x 4000K
    assert 'gcagent_alert{alert="ceiling",device="ix20-a"} 1.0' in text
    with open(os.path.join(REPO, "deploy", "grafana", "gcagent-fleet.json")) as handle:
        dashboard = json.load(handle)
    used = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= set(re.findall(r"gcagent_\w+", target["expr"]))
    assert used and used <= names, used - names


def client(tmp_path, auth=None, keys=None, sent=None):
    store, ingest, _clock = small_fleet(str(tmp_path / "c.db"))

    class Session(object):
        pass
    session = Session()
    session.store, session.ingestor, session.mqtt = store, ingest, None

    class Line(object):   # stands for the serial line the command would go down
        def send_command(self, command):
            sent.append((command["device"], command))
    session.serial = Line()
    users = {"alice": "correct-horse-battery"} if auth else None
    args = argparse.Namespace(default_interval=60.0, keys=keys)
    app = build(session, args, Guard(users))
    return TestClient(app, base_url="http://127.0.0.1:8080"), app


def test_loopback_console_acks_with_csrf_and_sends_no_commands(tmp_path):
    http, _app = client(tmp_path)
    page = http.get("/").text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    fleet_now = http.get("/api/fleet").json()
    assert next(r["device"] for r in fleet_now["rows"]) == "ix20-a"   # riskiest first
    body = {"device": "ix20-a", "alert": "ceiling"}
    assert http.post("/api/alerts/ack", json=body).status_code == 403            # no token
    assert http.post("/api/alerts/ack", json=body, headers={
        "X-CSRF-Token": token, "Origin": "http://evil.example"}).status_code == 403
    assert http.post("/api/alerts/ack", json=body, headers={"X-CSRF-Token": token}).json()["ok"]
    alert = next(a for a in http.get("/api/fleet").json()["alerts"]
                 if a["device"] == "ix20-a" and a["alert"] == "ceiling")
    assert alert["acked"] and alert["acked_by"] == "local"
    answer = http.post("/api/device/ix20-a/command", json={"cmd": "collect"},
                       headers={"X-CSRF-Token": token})
    assert answer.status_code == 403 and "read-only" in answer.json()["error"]
    assert http.get("/api/fleet", headers={"Host": "rebind.example:8080"}).status_code == 401


def test_with_auth_pages_need_sign_in_and_commands_record_who(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "ix20-a.key").write_bytes(b"k" * 32)
    sent = []
    http, _app = client(tmp_path, auth=True, keys=str(keys), sent=sent)
    assert http.get("/", follow_redirects=False).headers["location"].startswith("/login")
    assert http.get("/api/fleet").status_code == 401
    assert http.get("/metrics", headers={"Authorization": "Bearer correct-horse-battery"}).status_code == 200
    assert http.post("/login", data={"name": "alice", "secret": "wrong"}).status_code == 401
    signed = http.post("/login", data={"name": "alice", "secret": "correct-horse-battery"},
                       follow_redirects=False)
    assert signed.status_code == 303 and "samesite=strict" in signed.headers["set-cookie"].lower()
    token = re.search(r'name="csrf-token" content="([^"]+)"', http.get("/").text).group(1)
    answer = http.post("/api/device/ix20-a/command", json={"cmd": "collect", "args": {"generation": 2}},
                       headers={"X-CSRF-Token": token})
    assert answer.status_code == 200, answer.text
    assert sent and sent[0][0] == "ix20-a" and sent[0][1]["sig"]
    listed = http.get("/api/device/ix20-a").json()["commands"]
    assert listed[0]["who"] == "alice" and listed[0]["cmd"] == "collect"
    refused = http.post("/api/device/tx64-b/command", json={"cmd": "collect"},
                        headers={"X-CSRF-Token": token})
    assert refused.status_code == 403 and "no command key" in refused.json()["error"]


def test_mail_delivery_speaks_smtp_to_a_server(tmp_path):
    """A minimal SMTP server on a socket: the alert arrives as a mail with its device and kind."""
    import socket
    import threading

    from tools.console.web.delivery import load_delivery
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    got = []

    def serve_one():
        conn, _ = listener.accept()
        stream = conn.makefile("rwb")

        def say(line):
            stream.write(line.encode() + b"\r\n")
            stream.flush()
        say("220 test ESMTP")
        data = False
        for raw in stream:
            line = raw.decode().rstrip("\r\n")
            if data:
                if line == ".":
                    data = False
                    say("250 queued")
                else:
                    got.append(line)
                continue
            verb = line.split(" ")[0].upper()
            if verb == "DATA":
                data = True
                say("354 go on")
            elif verb == "QUIT":
                say("221 bye")
                break
            else:
                say("250 ok")
        conn.close()
    threading.Thread(target=serve_one, daemon=True).start()
    config = tmp_path / "console.ini"
    config.write_text("[mail]\nhost = 127.0.0.1\nport = %d\nstarttls = no\nfrom = c@example\n"
                      "to = ops@example\n" % listener.getsockname()[1])
    delivery = load_delivery(str(config))
    delivery.offer(_alert("ix20-9", "ceiling"))
    delivery._round()
    listener.close()
    assert delivery.stats["delivered"] == 1
    assert any(line.startswith("Subject: [gc-agent] ix20-9 raised: ceiling") for line in got), got


def test_plot_draws_a_month_downsampled_and_a_day_of_it_with_until(tmp_path):
    import subprocess
    import sys

    from PIL import Image
    db = str(tmp_path / "c.db")
    history(db, "ix20-0001", days=30)   # ends now: --since and --until are ages

    def plot(*extra):
        out = str(tmp_path / ("p%d.png" % len(extra)))
        done = subprocess.run([sys.executable, "-m", "tools.console", "plot", "ix20-0001", "--db", db,
                               "--out", out, *extra], cwd=REPO, capture_output=True, text=True,
                              timeout=120, env=dict(os.environ, PYTHONPATH=REPO))
        assert done.returncode == 0, done.stderr
        return done.stdout, out
    text, out = plot()
    assert re.search(r": 42840 samples, \d+ collections, 1 outages", text), text
    assert Image.open(out).size == (1100, 550)
    text, _ = plot("--since", "5d", "--until", "4d", "--utc")
    day = int(re.search(r": (\d+) samples", text).group(1))
    assert 1439 <= day <= 1441, text   # one day of one-minute samples
    refused = subprocess.run([sys.executable, "-m", "tools.console", "plot", "ix20-0001", "--db", db,
                              "--out", out, "--since", "1d", "--until", "2d"], cwd=REPO,
                             capture_output=True, text=True, timeout=120,
                             env=dict(os.environ, PYTHONPATH=REPO))
    assert refused.returncode == 2 and "--until must be later" in refused.stderr


def test_forget_removes_a_device_from_the_database_and_a_running_console(tmp_path, capsys):
    http, app = client(tmp_path)
    token = re.search(r'name="csrf-token" content="([^"]+)"', http.get("/").text).group(1)
    assert http.post("/api/device/tx64-b/forget", json={}).status_code == 403   # no token
    assert http.post("/api/device/tx64-b/forget", json={}, headers={"X-CSRF-Token": token}).json()["ok"]
    assert [r["device"] for r in http.get("/api/fleet").json()["rows"]] == ["ix20-a"]
    db = app.state.backend.db_path
    app.state.backend.ingestor.flush()   # the running console does not write it back
    assert [d["device"] for d in Store(db).devices()] == ["ix20-a"]
    assert main(["forget", "ix20-a", "--db", db]) == 0
    assert "forgot ix20-a:" in capsys.readouterr().out
    store = Store(db)
    assert store.devices() == [] and store.samples("ix20-a") == [] and store.events("ix20-a") == []
    assert main(["forget", "ix20-a", "--db", db]) == 2
    assert "no device 'ix20-a'" in capsys.readouterr().err


def test_pages_forbid_framing_and_foreign_scripts(tmp_path):
    http, _app = client(tmp_path)
    headers = http.get("/").headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert http.get("/static/vendor/uPlot.iife.min.js").status_code == 200
