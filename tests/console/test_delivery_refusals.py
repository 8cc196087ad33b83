"""Alert delivery to a real local HTTP receiver: an alert the receiver refuses, or
fails on for a while, never holds the alerts after it (docs/web-console.md)."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tools.console.web.delivery import Delivery, Webhook


class Receiver(object):
    """Answers each POST with `answer(alert)` and records (device, status) in order."""

    def __init__(self, answer) -> None:
        self.got: list = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler) -> None:
                alert = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
                status = answer(alert)
                self.got.append((alert["device"], status))
                handler.send_response(status)
                handler.send_header("Content-Length", "0")
                handler.end_headers()

            def log_message(handler, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self):
        return [d for d, status in self.got if 200 <= status < 300]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _alert(device):
    return {"device": device, "alert": "ceiling", "state": "raised", "detail": "d", "ts": 1.0}


def _until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("not within %ss: %s" % (timeout, what))


def test_an_alert_answered_400_is_dropped_and_the_others_arrive_at_once(caplog):
    receiver = Receiver(lambda alert: 400 if alert["device"] == "bad" else 200)
    # retry_for of an hour: the old code held "ok-1" and "ok-2" behind "bad" for that hour
    delivery = Delivery([Webhook(receiver.url, timeout=2.0)], retry_for=3600, backoff=1.0).start()
    try:
        for device in ("bad", "ok-1", "ok-2"):
            delivery.offer(_alert(device))
        _until(lambda: receiver.delivered() == ["ok-1", "ok-2"], 3, "the two alerts after the "
               "refused one: %s" % receiver.got)
        time.sleep(1.5)   # past the first back-off: a retry of "bad" would have come by now
    finally:
        delivery.stop()
        receiver.stop()
    assert receiver.got.count(("bad", 400)) == 1, receiver.got
    assert delivery.stats["refused"] == 1 and delivery.stats["delivered"] == 2, delivery.stats
    assert delivery.waiting("webhook") == 0
    said = [r.getMessage() for r in caplog.records if "bad" in r.getMessage()]
    assert len(said) == 1 and "answered 400" in said[0], said


def test_an_alert_answered_503_is_retried_while_later_ones_go_through():
    failures = {"busy": 2}

    def answer(alert):
        if failures.get(alert["device"]):
            failures[alert["device"]] -= 1
            return 503
        return 200

    receiver = Receiver(answer)
    delivery = Delivery([Webhook(receiver.url, timeout=2.0)], retry_for=60, backoff=0.2).start()
    try:
        delivery.offer(_alert("busy"))
        delivery.offer(_alert("next"))
        _until(lambda: "next" in receiver.delivered(), 2, "the alert after the one answered 503")
        _until(lambda: "busy" in receiver.delivered(), 5, "the 503 alert on a later try")
    finally:
        delivery.stop()
        receiver.stop()
    assert receiver.got == [("busy", 503), ("next", 200), ("busy", 503), ("busy", 200)]
    assert delivery.stats["delivered"] == 2 and delivery.stats["refused"] == 0


def test_while_the_receiver_is_unreachable_alerts_wait_in_order_without_an_attempt_each():
    from tests.console.fleetdata import Clock
    from tests.console.test_web import Flaky
    clock = Clock(0.0)
    sender = Flaky(failures=1)   # one refused connection, then it answers
    delivery = Delivery([sender], queue=10, retry_for=60, backoff=1.0, clock=clock)
    for device in ("first", "second", "third"):
        delivery.offer(_alert(device))
    delivery._round()
    assert delivery.stats["attempts"] == 1 and delivery.waiting("flaky") == 3
    clock.advance(1.5)
    delivery._round()
    assert [a["device"] for a in sender.got] == ["first", "second", "third"]
    assert delivery.waiting("flaky") == 0
