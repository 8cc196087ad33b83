"""A running console: store + ingestor + one source (broker, embedded broker or serial port).

`watch`, `ingest` and `send` all run one of these. A housekeeping thread
writes the queued batch twice a second, marks silent devices offline every
second and prunes rows older than `retain` once an hour.
"""

import json
import logging
import threading
import time
from collections import deque
from typing import Any, Callable, Dict, Optional

from tools.mosquitto import free_port

from .broker import EmbeddedBroker
from .ingest import Ingestor
from .mqtt_link import MqttLink
from .serial_link import SerialLink
from .store import Store

log = logging.getLogger("gc-console")

FLUSH_EVERY_S = 0.5
PRUNE_EVERY_S = 3600.0
ALERTS_QUEUED = 1000   # alerts waiting to be republished; beyond that the oldest go (they are recorded)


class Session(object):
    """Owns everything one console command runs; `stop()` writes what is queued."""

    def __init__(self, db: str, broker: Optional[str] = None, serial: Optional[str] = None,
                 baud: int = 115200, prefix: str = "gcagent", share: Optional[str] = None,
                 embedded_port: Optional[int] = None, retain: Optional[float] = None,
                 default_interval: float = 3600.0, ceiling_margin: float = 0.10,
                 topics: Optional[list] = None,
                 on_message: Optional[Callable[[Dict[str, Any]], None]] = None,
                 publish_alerts: bool = True, tls: Optional[Dict[str, Optional[str]]] = None,
                 max_devices: int = 10000) -> None:
        self.store = Store(db)
        self.prefix = prefix
        self.retain = retain
        self.embedded: Optional[EmbeddedBroker] = None
        self.mqtt: Optional[MqttLink] = None
        self.serial: Optional[SerialLink] = None
        self._broker_url = broker
        self._serial_url = serial
        self._baud = baud
        self._share = share
        self._topics = topics
        self._embedded_port = embedded_port
        self._publish_alerts = publish_alerts
        self._tls = tls or {}
        self.ingestor = Ingestor(self.store, default_interval=default_interval,
                                 ceiling_margin=ceiling_margin, on_alert=self._alert,
                                 on_message=on_message, count_gaps=not share,
                                 max_devices=max_devices)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._alerts: deque = deque(maxlen=ALERTS_QUEUED)

    @property
    def broker_url(self) -> Optional[str]:
        """The broker agents should report to (the embedded one when it runs)."""
        return self.embedded.url if self.embedded else self._broker_url

    def start(self) -> "Session":
        """Start the source; raises LinkError/RuntimeError/OSError that say what is wrong."""
        if self._serial_url:
            self.serial = SerialLink(self._serial_url, self.ingestor.accept, self._baud).start()
        else:
            if not self._broker_url:
                port = self._embedded_port
                if port is None:
                    port = 1883 if _port_free(1883) else free_port()
                self.embedded = EmbeddedBroker(port).start()
            self.mqtt = MqttLink(self.broker_url, self._on_payload, self.prefix, self._share,
                                 topics=self._topics, **self._tls).start()
        if self.retain:
            self.store.prune(time.time() - self.retain)
        self._thread = threading.Thread(target=self._housekeeping, name="gc-console-housekeeping",
                                        daemon=True)
        self._thread.start()
        return self

    def _on_payload(self, payload: bytes, topic: str, retained: bool) -> None:
        self.ingestor.accept(payload, topic, self.prefix, retained)

    def _alert(self, alert: Dict[str, Any]) -> None:
        # Called inside paho's callback: queue it, publish from housekeeping (never publish
        # from inside paho's own callbacks: docs/field-facts.md, "paho-mqtt 1.6 and 2.x").
        if self._publish_alerts:
            self._alerts.append(alert)

    def _republish_alerts(self) -> None:
        while self._alerts and self.mqtt is not None:
            alert = self._alerts.popleft()
            self.mqtt.publish("%s/_alerts" % self.prefix,
                              json.dumps(alert, separators=(",", ":")).encode("utf-8"))

    def _housekeeping(self) -> None:
        last_tick = last_prune = time.monotonic()
        while not self._stop.wait(FLUSH_EVERY_S):
            try:
                now = time.monotonic()
                if now - last_tick >= 1.0:
                    self.ingestor.tick()
                    last_tick = now
                self.ingestor.flush()
                self._republish_alerts()
                if self.retain and now - last_prune >= PRUNE_EVERY_S:
                    self.store.prune(time.time() - self.retain)
                    last_prune = now
            except Exception:   # the database is locked or full: say so, keep ingesting
                log.exception("writing to %s failed; will retry", self.store.path)

    def send_command(self, device: str, command: Dict[str, Any]) -> None:
        """Record `command` and send it to `device` over this session's source."""
        self.store.record_command(command, device)
        if self.serial is not None:
            self.serial.send_command(command)
        else:
            self.mqtt.publish("%s/%s/cmd" % (self.prefix, device),
                              json.dumps(command, separators=(",", ":")).encode("utf-8"), wait=5.0)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        for part in (self.mqtt, self.serial):
            if part is not None:
                try:
                    part.stop()
                except Exception:
                    pass
        try:
            self.ingestor.flush()
        except Exception as exc:
            log.error("could not write the last %d messages to %s: %s",
                      len(self.ingestor._pending), self.store.path, exc)
        if self.embedded is not None:
            self.embedded.stop()


def _port_free(port: int) -> bool:
    import socket
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False
