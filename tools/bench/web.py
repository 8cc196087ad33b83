"""`make bench` rows for the web console (`gc-console serve`), measured in headless Chromium.

- fleet: 1,000 emulated devices report through a real mosquitto (status once,
  then telemetry every 2 s each: 500 messages a second); the fleet page is
  open; probe messages give one device a new RSS, and the page records when
  the row shows it (a MutationObserver, the same clock as the publisher: both
  on this machine). Reported: median and worst of those latencies, and
  serve's RSS (VmRSS and VmHWM) with the 1,000 devices.
- device: a synthetic device with 30 days of one-minute samples
  (`python -m tools.console.synth`); the device page's "30 d" button is pressed and the
  time until the chart is drawn again is measured, with the points shipped a
  series.

Needs Debian's chromium and chromium-driver (Selenium downloads nothing).
`python -m tools.bench.web [--devices N]` prints the rows as JSON.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from typing import Any, Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

WATCH_ROW = """
const [device, marker] = arguments;
window.benchSeen = window.benchSeen || {};
if (!window.benchObserver) {
  window.benchObserver = new MutationObserver(() => {
    for (const [name, want] of Object.entries(window.benchWant || {})) {
      const row = document.querySelector('#fleet tr[data-device="' + name + '"]');
      if (row && row.textContent.includes(want) && !window.benchSeen[name + want])
        window.benchSeen[name + want] = Date.now();
    }
  });
  window.benchObserver.observe(document.querySelector('#fleet tbody'),
                               {childList: true, subtree: true, characterData: true});
}
window.benchWant = {}; window.benchWant[device] = marker;
"""


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            raise RuntimeError("%s is missing: apt-get install chromium chromium-driver" % path)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _serve(db: str, broker: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "tools.console", "serve", "--db", db,
                             "--broker", broker, "--listen", "127.0.0.1:%d" % port,
                             "--default-interval", "10s"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, PYTHONPATH=REPO))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/robots.txt" % port, timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("serve did not start")


def _status_kb(pid: int) -> Dict[str, int]:
    out = {}
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


class Fleet(object):
    """N devices publishing through one MQTT connection: status, then telemetry every `period`."""

    def __init__(self, port: int, count: int, period: float = 2.0) -> None:
        import paho.mqtt.client as mqtt

        from agent import messages
        self.messages = messages
        self.count, self.period = count, period
        self.names = ["bench-%04d" % i for i in range(count)]
        self.envelopes = {n: messages.Envelope(n) for n in self.names}
        self.rss = {n: 20000 + (i * 37) % 30000 for i, n in enumerate(self.names)}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-fleet")
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.sent = 0

    def publish(self, name: str, kind: str, **fields: Any) -> None:
        with self.lock:
            message = self.envelopes[name].make(kind, **fields)
        self.client.publish("gcagent/%s/%s" % (name, kind), self.messages.encode(message), qos=1,
                            retain=kind == "status")
        self.sent += 1

    def telemetry(self, name: str) -> None:
        sample = {"ts": round(time.time(), 3), "mem_free_kb": 150000, "mem_total_kb": 262144,
                  "rss_kb": self.rss[name], "gc_count": [1, 2, 3], "gc_collections": [4, 5, 6],
                  "gc_collected": 0, "gc_uncollectable": 0, "gc_pause_ms_total": 0.5,
                  "gc_pause_ms_max": 0.3}
        self.publish(name, "telemetry", samples=[sample], buffered=0, dropped=0)

    def start(self) -> "Fleet":
        for name in self.names:
            self.publish(name, "status", state="online", agent="0.1", python="3.10.13",
                         gc_flavour="generational-700", model="IX20", profile="bench.ini",
                         profile_sha256="0" * 64, ceiling_kb=65536, uptime_s=1.0)
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        step = self.period / self.count
        i = 0
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            self.telemetry(self.names[i % self.count])
            i += 1
            next_at += step
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def stop(self) -> None:
        self.stop_event.set()
        self.client.loop_stop()
        self.client.disconnect()


def fleet_page(devices: int = 1000, probes: int = 10) -> Dict[str, Any]:
    from tools.mosquitto import Mosquitto, free_port
    with tempfile.TemporaryDirectory(prefix="gc-bench-web-") as tmp, \
            Mosquitto(tmp, extra="allow_anonymous true\nmax_queued_messages 100000\n") as broker:
        port = free_port()
        serve = _serve(os.path.join(tmp, "console.db"), broker.url, port)
        fleet = driver = None
        try:
            fleet = Fleet(broker.port, devices).start()
            driver = _browser()
            driver.get("http://127.0.0.1:%d/" % port)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                shown = int(driver.execute_script("return document.body.dataset.devices || 0"))
                if shown >= devices:
                    break
                time.sleep(0.5)
            time.sleep(3.0)   # every device has sent telemetry: the steady state
            latencies: List[float] = []
            for k in range(probes):
                name = fleet.names[(k * 97) % devices]
                marker = "%dM / 64M" % round((40000 + k * 1024) / 1024.0)
                driver.execute_script(WATCH_ROW, name, marker)
                # Timed from when the new value exists: the fleet's own reporting thread
                # may publish it before the probe below does (timed after, it read < 0).
                sent_ms = time.time() * 1000
                fleet.rss[name] = 40000 + k * 1024   # shows as "39M / 64M" ...
                fleet.telemetry(name)
                seen = None
                limit = time.monotonic() + 10
                while seen is None and time.monotonic() < limit:
                    time.sleep(0.05)
                    seen = driver.execute_script("return window.benchSeen[arguments[0]]",
                                                 name + marker)
                latencies.append((seen - sent_ms) / 1000.0 if seen else float("inf"))
                time.sleep(0.3)
            memory = _status_kb(serve.pid)
            rows = int(driver.execute_script("return document.body.dataset.devices || 0"))
            rate = fleet.sent
        finally:
            if driver is not None:
                driver.quit()
            if fleet is not None:
                fleet.stop()
            serve.terminate()
            serve.wait(20)
    return {"devices": rows, "latency_median_s": statistics.median(latencies),
            "latency_max_s": max(latencies), "rss_kb": memory.get("VmRSS"),
            "hwm_kb": memory.get("VmHWM"), "messages": rate}


def device_page(days: float = 30.0) -> Dict[str, Any]:
    from tools.mosquitto import Mosquitto, free_port
    with tempfile.TemporaryDirectory(prefix="gc-bench-web-") as tmp, Mosquitto(tmp) as broker:
        db = os.path.join(tmp, "console.db")
        # made by the console's own code, in a process of its own (the bench measures from outside)
        made = subprocess.run([sys.executable, "-m", "tools.console.synth", db, "ix20-month",
                               str(days)], cwd=REPO, capture_output=True, text=True, check=True,
                              env=dict(os.environ, PYTHONPATH=REPO))
        counts = json.loads(made.stdout)
        port = free_port()
        serve = _serve(db, broker.url, port)
        driver = None
        try:
            driver = _browser()
            driver.get("http://127.0.0.1:%d/device/ix20-month" % port)
            deadline = time.monotonic() + 30
            while not driver.execute_script("return document.body.dataset.drawn") and \
                    time.monotonic() < deadline:
                time.sleep(0.05)
            times = []
            points = 0
            for _ in range(3):
                before = driver.execute_script("return document.body.dataset.drawn")
                clicked = driver.execute_script(
                    "const t = Date.now(); document.querySelector('button[data-range=\"2592000\"]')"
                    ".click(); return t;")
                limit = time.monotonic() + 30
                drawn = before
                while drawn == before and time.monotonic() < limit:
                    time.sleep(0.02)
                    drawn = driver.execute_script("return document.body.dataset.drawn")
                times.append((int(drawn) - clicked) / 1000.0)
                points = int(driver.execute_script("return document.body.dataset.points"))
            api = urllib.request.urlopen(
                "http://127.0.0.1:%d/api/device/ix20-month/history?since=0&until=%d"
                % (port, time.time() + 60), timeout=30).read()
        finally:
            if driver is not None:
                driver.quit()
            serve.terminate()
            serve.wait(20)
    return {"samples": counts["samples"], "render_s": statistics.median(times),
            "render_max_s": max(times), "points": points, "bytes": len(api)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    args = parser.parse_args(argv)
    print(json.dumps({"fleet": fleet_page(args.devices), "device": device_page()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
