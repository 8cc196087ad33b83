"""The web fleet page shows each device once with its applications (DEVICE@APP) beneath it:
a real mosquitto, `gc-console serve` and a headless Chromium."""

import json

from agent import messages
from tests.console.fleetdata import Device
from tests.integration.broker import Subscriber
from tests.integration.web import Serve, browser, wait

ROWS = ("return Array.from(document.querySelectorAll('#fleet tbody tr')).map(r => "
        "[r.className.includes('host') ? 'host' : r.className.includes('app') ? 'app' : 'row', "
        "r.querySelector('td').textContent.trim(), r.dataset.device || null])")


def test_the_fleet_page_shows_a_device_row_with_its_application_rows(broker, tmp_path):
    serve = Serve(str(tmp_path / "console.db"), "--broker", broker.url,
                  "--default-interval", "10s").start()
    sub = Subscriber(broker.port)
    driver = browser()
    try:
        for name in ("gw-9@logger", "gw-9@modbus_bridge", "solo-1"):
            status = Device(name).status()
            sub.publish("gcagent/%s/status" % name, messages.encode(status))
        driver.get(serve.url + "/")
        wait(lambda: len(driver.execute_script(ROWS)) == 4, what="three entries and a device row")
        rows = driver.execute_script(ROWS)
        at = rows.index(["host", "gw-9", None])
        assert sorted(rows[at + 1:at + 3]) == [["app", "@logger", "gw-9@logger"],
                                               ["app", "@modbus_bridge", "gw-9@modbus_bridge"]]
        assert ["row", "solo-1", "solo-1"] in rows
        api = {r["device"]: r for r in json.loads(serve.get("/api/fleet"))["rows"]}
        assert (api["gw-9@logger"]["host"], api["gw-9@logger"]["app"]) == ("gw-9", "logger")
        assert (api["solo-1"]["host"], api["solo-1"]["app"]) == (None, None)
    finally:
        driver.quit()
        sub.close()
        serve.stop()
