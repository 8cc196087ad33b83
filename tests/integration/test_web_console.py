"""`gc-console serve` in a real browser (headless Chromium) and scraped by a real Prometheus.

Real agents report through a real mosquitto; the browser watches them appear
on the fleet page without reloading, opens a device page and finds the chart
drawn, and acknowledges an alert. Screenshots go to tests/artifacts/.
"""

import json
import os
import subprocess
import time
import urllib.parse
import urllib.request

from tests.integration.test_console import profile, start_agent
from tests.integration.web import CANVAS_INK, Serve, browser, screenshot, wait
from tools.mosquitto import free_port


def stop_agents(agents) -> None:
    for proc in agents:
        proc.terminate()
    for proc in agents:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def shown(driver) -> list:
    """The devices the fleet table shows, top to bottom."""
    return driver.execute_script("return Array.from(document.querySelectorAll('#fleet tbody tr'))"
                                 ".map(r => r.dataset.device)")


def click(driver, selector: str) -> None:
    assert driver.execute_script("const e = document.querySelector(arguments[0]); "
                                 "if (e) e.click(); return !!e;", selector), selector


def test_fleet_page_live_device_chart_and_acknowledge(broker, tmp_path):
    # A margin of 95% of the ceiling raises a `ceiling` alert on every device: one to acknowledge.
    serve = Serve(str(tmp_path / "console.db"), "--broker", broker.url, "--default-interval",
                  "2s", "--ceiling-margin", "95%").start()
    driver = browser()
    agents = []
    try:
        driver.get(serve.url + "/")
        wait(lambda: driver.find_element("id", "live").text == "live", what="the live stream")
        assert driver.find_elements("css selector", "#fleet tbody tr") == []
        first_update = int(driver.execute_script("return document.body.dataset.updates || 0"))
        agents = [start_agent(profile(tmp_path, broker.port, name, model))
                  for name, model in (("web-ix20", "IX20"), ("web-tx64", "TX64"))]
        # No reload: the rows arrive through the page's event stream. (The table is redrawn
        # on every update, so the page is read and clicked in single scripts, never through
        # element handles that a redraw makes stale.)
        rows = wait(lambda: len(shown(driver)) == 2 and shown(driver), timeout=30,
                    what="both agents on the fleet page")
        assert int(driver.execute_script("return document.body.dataset.updates")) > first_update
        assert set(rows) == {"web-ix20", "web-tx64"}
        wait(lambda: "2 devices: 2 online" in driver.find_element("id", "counts").text,
             what="the counts")
        wait(lambda: driver.find_elements("css selector",
                                          '#alerts button.ack[data-device="web-ix20"]'),
             what="a ceiling alert of web-ix20 in the alert list")
        screenshot(driver, "web-fleet.png")

        # The model filter narrows the table.
        driver.find_element("id", "f-state").send_keys("online")
        driver.find_element("id", "f-text").send_keys("tx64")
        wait(lambda: shown(driver) == ["web-tx64"], what="the filter to leave web-tx64 alone")
        driver.find_element("id", "f-text").clear()

        # Acknowledge: the alert stays listed, marked with who acknowledged it.
        click(driver, '#alerts button.ack[data-device="web-ix20"][data-alert="ceiling"]')
        acked = wait(lambda: driver.execute_script(
            "const r = document.querySelector(arguments[0]); return r && r.textContent;",
            '#alerts tr.acked[data-device="web-ix20"][data-alert="ceiling"]'),
            what="the alert marked acknowledged")
        assert "acknowledged by local" in acked
        fleet = json.loads(serve.get("/api/fleet"))
        ack = [a for a in fleet["alerts"] if a["device"] == "web-ix20" and a["alert"] == "ceiling"]
        assert ack and ack[0]["acked"] and ack[0]["acked_by"] == "local"

        # The device page: status fields and a drawn chart.
        time.sleep(2.0)   # a few telemetry batches and periodic collections to draw
        click(driver, '#fleet a[href="/device/web-ix20"]')
        wait(lambda: driver.current_url.endswith("/device/web-ix20"), what="the device page")
        wait(lambda: int(driver.execute_script("return document.body.dataset.points || 0")) > 3,
             what="the chart's data")
        ink = wait(lambda: driver.execute_script(CANVAS_INK, "#chart-memory canvas") > 0.01
                   and driver.execute_script(CANVAS_INK, "#chart-memory canvas"),
                   what="a drawn memory chart")
        assert ink > 0.01
        assert driver.execute_script(
            "return document.querySelector('[data-field=\"model\"]').textContent") == "IX20"
        wait(lambda: "collect" in driver.find_element("id", "events").text,
             what="collections among the recent events")
        assert "collect: periodic" in driver.find_element("id", "legend").text
        screenshot(driver, "web-device.png")
    finally:
        stop_agents(agents)
        driver.quit()
        out = serve.stop()
    assert "Traceback" not in out, out


PROMETHEUS_CONFIG = """
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: gc-console
    static_configs:
      - targets: ['127.0.0.1:{port}']
"""


def test_prometheus_scrapes_metrics(broker, tmp_path):
    serve = Serve(str(tmp_path / "console.db"), "--broker", broker.url, "--default-interval",
                  "2s").start()
    agents = [start_agent(profile(tmp_path, broker.port, name, "IX20"))
              for name in ("prom-a", "prom-b")]
    prom = None
    try:
        def both() -> bool:
            text = serve.get("/metrics").decode()
            return all('gcagent_collections_total{device="%s",rule="periodic"}' % d in text
                       for d in ("prom-a", "prom-b"))
        wait(both, timeout=30, what="both devices' collections in /metrics")
        text = serve.get("/metrics").decode()
        check = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                               capture_output=True, timeout=30)
        assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
        for line in text.splitlines():
            if line and not line.startswith("#"):
                assert line.startswith("gcagent_") and 'device="' in line, line
        for name in ("online", "rss_bytes", "ceiling_bytes", "headroom_bytes", "gc_pause_seconds_total",
                     "reclaimed_bytes_total", "buffered_messages", "dropped_messages", "alerts"):
            assert 'gcagent_%s{device="prom-a"}' % name in text, name

        config = tmp_path / "prometheus.yml"
        config.write_text(PROMETHEUS_CONFIG.format(port=serve.port))
        port = free_port()
        prom = subprocess.Popen(["prometheus", "--config.file=%s" % config,
                                 "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
                                 "--web.listen-address=127.0.0.1:%d" % port],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def query() -> list:
            url = "http://127.0.0.1:%d/api/v1/query?%s" % (
                port, urllib.parse.urlencode({"query": "gcagent_rss_bytes"}))
            answer = json.loads(urllib.request.urlopen(url, timeout=5).read())
            devices = sorted(r["metric"]["device"] for r in answer["data"]["result"])
            return devices if devices == ["prom-a", "prom-b"] else None
        assert wait(query, timeout=40, what="Prometheus to return both devices' series")
    finally:
        stop_agents(agents)
        if prom is not None:
            prom.terminate()
            prom.wait(10)
        serve.stop()


def test_signed_in_operator_sends_a_command_from_the_device_page(broker, tmp_path):
    from tests.integration.test_console import KEY
    auth = tmp_path / "users"
    auth.write_text("alice:correct-horse-battery\n")
    os.chmod(auth, 0o600)
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "cmd-ix20.key").write_bytes(KEY)
    serve = Serve(str(tmp_path / "console.db"), "--broker", broker.url, "--default-interval",
                  "2s", "--auth", str(auth), "--keys", str(keys)).start()
    agent = start_agent(profile(tmp_path, broker.port, "cmd-ix20", "IX20"))
    driver = browser()
    try:
        driver.get(serve.url + "/device/cmd-ix20")
        wait(lambda: "/login" in driver.current_url, what="the sign-in page")
        driver.find_element("name", "name").send_keys("alice")
        driver.find_element("name", "secret").send_keys("correct-horse-battery")
        driver.find_element("css selector", "button[type=submit]").click()
        wait(lambda: driver.current_url.endswith("/device/cmd-ix20"), what="back on the device page")
        form = wait(lambda: driver.find_element("id", "command-form").is_displayed()
                    and driver.find_element("id", "command-form"), timeout=30,
                    what="the command form (signed in, key on the server)")
        form.find_element("id", "cmd-args").send_keys('{"generation": 1}')
        form.find_element("css selector", "button[type=submit]").click()
        wait(lambda: "as alice" in driver.find_element("id", "cmd-result").text, what="sent")
        row = wait(lambda: [r.text for r in driver.find_elements("css selector",
                                                                 "#commands tbody tr")
                            if "alice" in r.text and r.text.endswith("ok")], timeout=20,
                   what="the agent's answer, with who sent the command")
        assert "collect" in row[0]
        screenshot(driver, "web-command.png")
        # A script without the session's CSRF token is refused, even with the right cookie.
        answer = driver.execute_script("""
            const r = await fetch('/api/device/cmd-ix20/command', {method: 'POST',
              headers: {'Content-Type': 'application/json'}, body: '{"cmd": "collect"}'});
            return r.status;""")
        assert answer == 403
    finally:
        stop_agents([agent])
        driver.quit()
        serve.stop()
