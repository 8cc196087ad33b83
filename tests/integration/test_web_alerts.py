"""`gc-console serve`: alert delivery by webhook (real agents through mosquitto); a serial line.

The receiver goes away and comes back on the same port: the alert raised
while it was away arrives once it is back, exactly once. A device stopped
cleanly raises no alert.
"""

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.integration.test_console import profile, start_agent
from tests.integration.test_web_console import stop_agents
from tests.integration.web import Serve, wait
from tools.mosquitto import free_port


class Receiver(object):
    """A webhook receiver on a fixed port that records what it is posted."""

    def __init__(self, port: int, got: list) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                got.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_webhook_gets_each_alert_once_across_its_restart(broker, tmp_path):
    port = free_port()
    config = tmp_path / "console.ini"
    config.write_text("[webhook]\nurl = http://127.0.0.1:%d/hook\nbackoff = 250ms\n"
                      "retry_for = 1m\n" % port)
    got: list = []
    receiver = Receiver(port, got)
    serve = Serve(str(tmp_path / "console.db"), "--broker", broker.url, "--default-interval",
                  "2s", "--ceiling-margin", "95%", "--config", str(config)).start()
    first = second = None
    try:
        first = start_agent(profile(tmp_path, broker.port, "hook-a", "IX20"))
        wait(lambda: any(a["device"] == "hook-a" and a["state"] == "raised" for a in got),
             timeout=30, what="hook-a's ceiling alert at the receiver")
        receiver.stop()   # the receiver goes away ...
        second = start_agent(profile(tmp_path, broker.port, "hook-b", "TX64"))
        wait(lambda: any(a["device"] == "hook-b" for a in
                         json.loads(serve.get("/api/fleet"))["alerts"]),
             timeout=30, what="hook-b's alert raised in the console")
        time.sleep(1.5)   # several attempts fail while it is away
        receiver = Receiver(port, got)   # ... and comes back on the same port
        wait(lambda: any(a["device"] == "hook-b" for a in got), timeout=20,
             what="hook-b's alert delivered after the receiver's restart")
        stop_agents([first])   # a clean stop: hook-a is `stopped`, its ceiling alert clears
        first = None
        wait(lambda: any(a["device"] == "hook-a" and a["state"] == "cleared" for a in got),
             timeout=20, what="hook-a's alert cleared")
        fleet = json.loads(serve.get("/api/fleet"))
        row = next(r for r in fleet["rows"] if r["device"] == "hook-a")
        assert row["state"] == "stopped" and row["alerts"] == {}
    finally:
        stop_agents([p for p in (first, second) if p is not None])
        serve.stop()
        receiver.stop()
    raised = [(a["device"], a["alert"]) for a in got if a["state"] == "raised"]
    assert raised.count(("hook-b", "ceiling")) == 1, got
    assert raised.count(("hook-a", "ceiling")) == 1, got
    assert ("hook-a", "offline") not in raised, "a clean stop raised an alert: %s" % got
    assert len({a["id"] for a in got}) == len(got)
    assert all(a["source"] == "gc-console" and a["detail"] for a in got)


def test_serve_on_a_serial_line_shows_the_device_and_its_metrics(tmp_path):
    """serve --serial (a real pty; the test plays the agent's side): the device in /api/fleet
    and /metrics as soon as its frames arrive."""
    from agent import framing, messages
    from tests.console.fleetdata import Device
    from tests.integration.test_console_serial import frames, pty_pair
    master, slave = pty_pair()
    serve = Serve(str(tmp_path / "c.db"), "--serial", os.ttyname(slave)).start()
    try:
        dev = Device("ix15-serial-web", model="IX15")
        sent = [dev.status(), dev.telemetry(20000), dev.collect(30000, 21000, rule="idle")]
        os.write(master, b"".join(framing.frame(messages.encode(m)) for m in sent))
        assert frames(master, 1), "serve did not acknowledge the frames"
        wait(lambda: any(r["device"] == "ix15-serial-web" and r["rules"] == {"idle": 1}
                         for r in json.loads(serve.get("/api/fleet"))["rows"]),
             what="the serial device on the fleet")
        text = serve.get("/metrics").decode()
        assert 'gcagent_collections_total{device="ix15-serial-web",rule="idle"} 1.0' in text
        assert 'gcagent_reclaimed_bytes_total{device="ix15-serial-web"} 9.216e+06' in text   # 9000K
    finally:
        serve.stop()
        os.close(master)
        os.close(slave)
