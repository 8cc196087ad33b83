"""Helpers for the web console tests: `gc-console serve` in a subprocess, headless Chromium."""

import os
import subprocess
import sys
import time
import urllib.request
from typing import List, Optional

from tests.conftest import REPO
from tools.mosquitto import free_port

ARTIFACTS = os.path.join(REPO, "tests", "artifacts")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


class Serve(object):
    """`gc-console serve` on a free port; `url` is its address."""

    def __init__(self, db: str, *extra: str, env: Optional[dict] = None) -> None:
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.argv: List[str] = [sys.executable, "-m", "tools.console", "serve", "--db", db,
                                "--listen", "127.0.0.1:%d" % self.port, *extra]
        self.env = env
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "Serve":
        self.proc = subprocess.Popen(self.argv, cwd=REPO, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "serve exited: %s" % self.proc.stdout.read().decode()
            try:
                urllib.request.urlopen(self.url + "/robots.txt", timeout=1).read()
                return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError("serve did not answer on %s" % self.url)

    def get(self, path: str, headers: Optional[dict] = None) -> bytes:
        request = urllib.request.Request(self.url + path, headers=headers or {})
        return urllib.request.urlopen(request, timeout=10).read()

    def stop(self) -> str:
        if self.proc is None:
            return ""
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out.decode(errors="replace")


def browser(width: int = 1400, height: int = 900):
    """Headless Debian Chromium through Debian's chromedriver (Selenium downloads nothing)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    for path in (CHROMIUM, CHROMEDRIVER):
        assert os.path.exists(path), ("%s is missing: apt-get install chromium chromium-driver "
                                      "(or make broker as root)" % path)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=%d,%d" % (width, height), "--force-device-scale-factor=1"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def screenshot(driver, name: str) -> str:
    os.makedirs(ARTIFACTS, exist_ok=True)
    path = os.path.join(ARTIFACTS, name)
    driver.save_screenshot(path)
    print("screenshot: %s" % path)
    return path


def wait(predicate, timeout: float = 20.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = predicate()
        except Exception:   # an element replaced while we read it: try again
            found = None
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))


# How much of a canvas is drawn: the share of pixels that are not blank, read in the page.
CANVAS_INK = """
const c = document.querySelector(arguments[0]);
if (!c) return -1;
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let ink = 0;
for (let i = 0; i < d.length; i += 4)
  if (d[i + 3] > 0 && (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240)) ink++;
return ink / (c.width * c.height);
"""


def shoot(url: str, folder: str, device: str, span: str = "") -> None:
    """Screenshots of the fleet page and one device page (docs/img/ is made with this)."""
    driver = browser(1400, 1000)
    try:
        driver.get(url.rstrip("/") + "/")
        wait(lambda: driver.find_elements("css selector", "#fleet tbody tr"), what="rows")
        time.sleep(1.0)
        driver.save_screenshot(os.path.join(folder, "web-fleet.png"))
        driver.get(url.rstrip("/") + "/device/" + device)
        wait(lambda: int(driver.execute_script("return document.body.dataset.points || 0")) > 0,
             what="the chart")
        if span:   # a range button, e.g. 2592000 for 30 days
            driver.find_element("css selector", 'button[data-range="%s"]' % span).click()
        time.sleep(1.5)
        driver.save_screenshot(os.path.join(folder, "web-device.png"))
    finally:
        driver.quit()


if __name__ == "__main__":   # python -m tests.integration.web URL FOLDER DEVICE [RANGE_S]
    shoot(*sys.argv[1:5])
