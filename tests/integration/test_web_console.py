"""`gc-console serve` in a real browser (headless Chromium) and scraped by a real Prometheus.

Real agents report through a real mosquitto; the browser watches them appear
on the fleet page without reloading, opens a device page and finds the chart
drawn, and acknowledges an alert. Screenshots go to tests/artifacts/.
"""

import json
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
        # No reload: the rows arrive through the page's event stream.
        rows = wait(lambda: len(driver.find_elements("css selector", "#fleet tbody tr")) == 2
                    and driver.find_elements("css selector", "#fleet tbody tr"),
                    timeout=30, what="both agents on the fleet page")
        assert int(driver.execute_script("return document.body.dataset.updates")) > first_update
        assert {r.get_attribute("data-device") for r in rows} == {"web-ix20", "web-tx64"}
        wait(lambda: "2 devices: 2 online" in driver.find_element("id", "counts").text,
             what="the counts")
        wait(lambda: driver.find_elements("css selector",
                                          '#alerts button.ack[data-device="web-ix20"]'),
             what="a ceiling alert of web-ix20 in the alert list")
        screenshot(driver, "web-fleet.png")

        # The model filter narrows the table.
        driver.find_element("id", "f-state").send_keys("online")
        driver.find_element("id", "f-text").send_keys("tx64")
        wait(lambda: [r.get_attribute("data-device") for r in
                      driver.find_elements("css selector", "#fleet tbody tr")] == ["web-tx64"],
             what="the filter to leave web-tx64 alone")
        driver.find_element("id", "f-text").clear()

        # Acknowledge: the alert stays listed, marked with who acknowledged it.
        driver.find_element("css selector", '#alerts button.ack[data-device="web-ix20"]').click()
        acked = wait(lambda: driver.find_elements(
            "css selector", '#alerts tr.acked[data-device="web-ix20"][data-alert="ceiling"]'),
            what="the alert marked acknowledged")
        assert "acknowledged by local" in acked[0].text
        fleet = json.loads(serve.get("/api/fleet"))
        ack = [a for a in fleet["alerts"] if a["device"] == "web-ix20" and a["alert"] == "ceiling"]
        assert ack and ack[0]["acked"] and ack[0]["acked_by"] == "local"

        # The device page: status fields and a drawn chart.
        time.sleep(2.0)   # a few telemetry batches and periodic collections to draw
        driver.find_element("link text", "web-ix20").click()
        wait(lambda: driver.current_url.endswith("/device/web-ix20"), what="the device page")
        wait(lambda: int(driver.execute_script("return document.body.dataset.points || 0")) > 3,
             what="the chart's data")
        ink = wait(lambda: driver.execute_script(CANVAS_INK, "#chart-memory canvas") > 0.01
                   and driver.execute_script(CANVAS_INK, "#chart-memory canvas"),
                   what="a drawn memory chart")
        assert ink > 0.01
        assert driver.find_element("css selector", '[data-field="model"]').text == "IX20"
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
