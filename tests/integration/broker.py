"""A subscriber that records what a real mosquitto (tools/mosquitto.py) delivers."""

import json
import os
import threading
import time
import zlib
from typing import List, NamedTuple, Optional

import paho.mqtt.client as mqtt

from tests.conftest import REPO

PAHO = {"1.6": os.path.join(REPO, ".venv", "paho-1.6"), "2": os.path.join(REPO, ".venv", "paho-2")}


class Seen(NamedTuple):
    topic: str
    message: dict
    retained: bool
    at: float


def decode(payload: bytes) -> dict:
    if payload[:1] == b"\x78":
        payload = zlib.decompress(payload)
    return json.loads(payload.decode("utf-8"))


class Subscriber(object):
    """Records every message under `topic`; reconnects by itself after an outage."""

    def __init__(self, port: int, topic: str = "gcagent/#", **tls) -> None:
        self.seen: List[Seen] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        if tls:
            self.client.tls_set(**tls)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        if msg.topic.endswith("/cmd"):   # what we sent, junk included
            return
        with self.lock:
            self.seen.append(Seen(msg.topic, decode(msg.payload), bool(msg.retain), time.monotonic()))

    def messages(self, kind: Optional[str] = None) -> List[dict]:
        with self.lock:
            return [s.message for s in self.seen if kind is None or s.topic.endswith("/" + kind)]

    def wait_for(self, predicate, timeout: float = 20.0, what: str = "a message"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [s for s in self.seen if predicate(s)]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError("no %s within %ss; saw %d messages" % (what, timeout, len(self.seen)))

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
