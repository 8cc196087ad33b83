"""Device-supplied strings on the web console's pages are shown as text, never read as markup.

A device (or anyone who can publish on its topics) chooses its id, its model,
its rule names and the fields of its events. The fleet and device pages must
show each of them literally: a real mosquitto, `gc-console serve` and a real
headless Chromium, which looks for elements the strings would have made.
"""

import json
import urllib.parse

from agent import messages
from tests.console.fleetdata import Device
from tests.integration.broker import Subscriber
from tests.integration.web import Serve, browser, screenshot, wait

MARKUP = '<b class="injected">bold</b>'
TEMPLATE_ID = "dev-{{auth}}"
BRACKET_ID = "lab[1"   # the page template's own placeholder syntax, as a device id

INJECTED = "return document.querySelectorAll('.injected').length"


def _publish(sub: Subscriber, message: dict) -> None:
    sub.publish("gcagent/%s/%s" % (message["device"], message["type"]), messages.encode(message))


def _events_text(driver) -> str:
    return driver.execute_script("return document.querySelector('#events tbody').textContent")


def test_markup_from_a_device_is_text_on_the_fleet_and_device_pages(broker, tmp_path):
    serve = Serve(str(tmp_path / "console.db"), "--broker", broker.url,
                  "--default-interval", "10s").start()
    sub = Subscriber(broker.port)
    driver = browser()
    try:
        device = Device("evil-01", model=MARKUP)
        for message in (device.status(), device.telemetry(30000),
                        device.event("collect", rule=MARKUP, generation=2, collected=1,
                                     duration_ms=MARKUP, rss_before_kb=40000,
                                     rss_after_kb=30000),
                        device.event("error", part="probe", error=MARKUP)):
            _publish(sub, message)
        for name in (TEMPLATE_ID, BRACKET_ID):
            _publish(sub, Device(name).status())

        driver.get(serve.url + "/")
        wait(lambda: len(driver.find_elements("css selector", "#fleet tbody tr")) == 3,
             what="the three devices on the fleet page")
        assert driver.execute_script(INJECTED) == 0
        model = driver.execute_script(
            "return document.querySelector('#fleet tr[data-device=\"evil-01\"] td:nth-child(2)')"
            ".textContent")
        assert model == MARKUP
        # A filter with an unclosed "[" (half-typed, or part of an id) still filters and redraws.
        driver.execute_script("const f = document.getElementById('f-text'); f.value = 'lab['; "
                              "f.dispatchEvent(new Event('input'));")
        wait(lambda: driver.execute_script("return document.getElementById('shown').textContent")
             == "1 of 3 shown", timeout=5, what="the filtered table")
        assert [r.get_attribute("data-device") for r in
                driver.find_elements("css selector", "#fleet tbody tr")] == [BRACKET_ID]

        driver.get(serve.url + "/device/evil-01")
        wait(lambda: "probe" in _events_text(driver) or MARKUP in _events_text(driver),
             what="the device's events")
        screenshot(driver, "adversarial-web-markup.png")
        assert driver.execute_script(INJECTED) == 0
        events = _events_text(driver)
        assert events.count(MARKUP) >= 3, events   # rule, pause and error, each as written

        # The page template's placeholders are not read inside a device id either.
        page = serve.get("/device/" + urllib.parse.quote(TEMPLATE_ID)).decode()
        assert 'data-device="%s"' % TEMPLATE_ID in page, page[:600]
        api = json.loads(serve.get("/api/device/" + urllib.parse.quote(TEMPLATE_ID)))
        assert api["row"]["device"] == TEMPLATE_ID
    finally:
        driver.quit()
        sub.close()
        serve.stop()
