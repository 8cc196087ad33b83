"""A recorder whose broker goes away says so, and says when it is back: `ingest` and `serve` run
headless for days, and a silent gap in the records would otherwise go unseen."""

import logging
import time

from tools.console.mqtt_link import MqttLink
from tools.mosquitto import Mosquitto


def _wait_for(caplog, text: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in r.getMessage() for r in caplog.records):
            return
        time.sleep(0.05)
    raise AssertionError("no log line with %r; saw %s" % (text, [r.getMessage() for r in caplog.records]))


def test_losing_and_regaining_the_broker_is_said_once_each(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="gc-console")
    broker = Mosquitto(str(tmp_path)).start()
    link = MqttLink(broker.url, lambda *a: None).start()
    try:
        broker.stop()
        _wait_for(caplog, "lost the broker %s" % broker.url)
        broker.start()
        _wait_for(caplog, "broker %s is back" % broker.url)
    finally:
        link.stop()
        broker.stop()
    said = [r.getMessage() for r in caplog.records]
    kinds = ["lost" if "lost the broker" in m else "back" for m in said
             if "lost the broker" in m or "is back" in m]
    assert kinds == ["lost", "back"], said   # once each, not once per reconnect try
