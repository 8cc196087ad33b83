"""Counts, at the broker itself, the messages each device got through.

The emulator subscribes to `PREFIX/+/#` on the real broker (not through the
fault proxy) and keeps each (device, boot, seq) once, so duplicates from
at-least-once delivery are not counted twice and the Will (seq 0) is left out.
"""

import threading
from typing import Dict, Set, Tuple

from agent.messages import decode
from agent.transports.mqtt import parse_mqtt_url


class BrokerWatch(object):
    """A paho subscriber counting distinct messages per device."""

    def __init__(self, url: str, prefix: str = "gcagent") -> None:
        import paho.mqtt.client as mqtt
        tls, host, port, _ = parse_mqtt_url(url)
        self._seen: Dict[str, Set[Tuple[str, int]]] = {}
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        if tls:
            self.client.tls_set()
        topic = "%s/+/#" % prefix
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 2)
        self.client.connect_async(host, port, keepalive=30)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        if msg.topic.endswith("/cmd"):
            return
        try:
            message = decode(msg.payload)
        except Exception:   # not ours, or damaged: a callback must never raise
            return
        seq = message.get("seq", 0)
        if not seq:
            return
        with self._lock:
            self._seen.setdefault(str(message.get("device")), set()).add((str(message.get("boot")), seq))

    def seen(self) -> Dict[str, Set[Tuple[str, int]]]:
        """(boot, seq) of the distinct messages per device id, so far (retained ones of
        earlier runs included: the summary keeps only this run's boots)."""
        with self._lock:
            return {device: set(keys) for device, keys in self._seen.items()}

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
