"""The console's MQTT side: subscribe to a fleet, hand payloads on, publish commands and alerts.

Subscriptions: `PREFIX/+/+` (status, telemetry, event, resp). With `share`,
the fleet stream comes through `$share/GROUP/PREFIX/+/+`, so several console
or recorder instances split it between them; since shared subscriptions get
no retained messages, a plain `PREFIX/+/status` subscription fetches the
retained status of every device and is dropped again as soon as the broker
has acknowledged it (the retained messages come right behind the SUBACK):
from then on live status arrives through the share, once per group. Every
instance does see the retained snapshot: each needs the fleet's states.
"""

import logging
import os
import ssl
import threading
import time
import uuid
from typing import Callable, Optional

import paho.mqtt.client as mqtt

from agent.transports.mqtt import parse_mqtt_url

log = logging.getLogger("gc-console")

Handler = Callable[[bytes, str, bool], None]   # payload, topic, retained
KINDS = ("status", "telemetry", "event", "resp")


class LinkError(Exception):
    """The broker cannot be reached or refused us; the message says what to check."""


class MqttLink(object):
    """One paho client (MQTT 3.1.1, so amqtt and mosquitto both serve it), its own network thread."""

    def __init__(self, url: str, on_payload: Optional[Handler] = None, prefix: str = "gcagent",
                 share: Optional[str] = None, topics: Optional[list] = None,
                 ca_file: Optional[str] = None, cert_file: Optional[str] = None,
                 key_file: Optional[str] = None, client_id: Optional[str] = None) -> None:
        try:
            tls, self.host, self.port, user = parse_mqtt_url(url)
        except ValueError as exc:
            raise LinkError(str(exc)) from exc
        self.url = url
        self.prefix = prefix
        self.share = share
        self.on_payload = on_payload
        self.topics = topics if topics is not None else self._fleet_topics()
        self.connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=client_id or "gc-console-" + uuid.uuid4().hex[:10],
                                  protocol=mqtt.MQTTv311)
        if user:
            self.client.username_pw_set(user, os.environ.get("GC_CONSOLE_PASSWORD"))
        if tls:   # the deploy/broker set-up wants a client certificate whose CN is "console"
            try:
                self.client.tls_set(ca_certs=ca_file, certfile=cert_file, keyfile=key_file,
                                    cert_reqs=ssl.CERT_REQUIRED)
            except (OSError, ssl.SSLError) as exc:
                raise LinkError("TLS files for %s: %s (check --ca, --cert, --cert-key)" % (url, exc)) from exc
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self._lost_at: Optional[float] = None   # when the broker went away, while it is away
        self._stopping = False
        self._snapshot_mid: Optional[int] = None
        self._fleet_mid: Optional[int] = None
        self.subscribed = threading.Event()   # SUBACK seen: nothing published from now on is missed
        self.refusal = ""
        self.client.reconnect_delay_set(0.5, 10)
        self.client.max_queued_messages_set(10000)   # paho's own queue is unbounded by default

    def _fleet_topics(self) -> list:
        if self.share:
            return [("$share/%s/%s/+/+" % (self.share, self.prefix), 1)]
        return [("%s/+/+" % self.prefix, 1)]

    def start(self, timeout: float = 10.0) -> "MqttLink":
        """Connect and subscribe (returns once the broker acknowledged the subscription).

        Raises LinkError when the broker does not answer in time.
        """
        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except ssl.SSLError as exc:
            raise LinkError("TLS with the broker at %s failed: %s (check --ca: the CA that signed "
                            "the broker's certificate; --cert and --cert-key: ours)"
                            % (self.url, exc)) from exc
        except (OSError, ValueError) as exc:
            raise LinkError("cannot reach the broker at %s: %s (is it running? is the port right?)"
                            % (self.url, exc)) from exc
        self.client.loop_start()
        if not self.connected.wait(timeout):
            self.stop()
            raise LinkError("the broker at %s did not accept us within %gs" % (self.url, timeout))
        if self.topics and not self.subscribed.wait(timeout):
            self.stop()
            raise LinkError("the broker at %s did not acknowledge our subscription to %s within "
                            "%gs (does it allow $share, and do its ACLs let us read there?)"
                            % (self.url, ", ".join(t for t, _ in self.topics), timeout))
        if self.refusal:
            self.stop()
            raise LinkError(self.refusal)
        return self

    def _on_connect(self, client, userdata, flags, reason, properties=None) -> None:
        if reason.is_failure:
            log.error("broker %s refused the connection: %s", self.url, reason)
            return
        if self._lost_at is not None:   # a recorder left alone must say that it records again
            log.warning("broker %s is back after %.0fs; recording again", self.url,
                        time.monotonic() - self._lost_at)
            self._lost_at = None
        if self.topics:
            self._fleet_mid = client.subscribe(self.topics)[1]
        if self.share:
            self._snapshot_mid = client.subscribe("%s/+/status" % self.prefix, qos=1)[1]
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason, properties=None) -> None:
        if self._stopping or self._lost_at is not None or not self.connected.is_set():
            return
        self._lost_at = time.monotonic()
        log.warning("lost the broker %s (%s); reconnecting, nothing is recorded meanwhile",
                    self.url, reason)

    def _on_subscribe(self, client, userdata, mid, reasons, properties=None) -> None:
        if mid == self._fleet_mid:
            refused = [str(r) for r in reasons if getattr(r, "is_failure", False)]
            if refused:
                self.refusal = "the broker at %s refused the subscription to %s (%s)%s" % (
                    self.url, ", ".join(t for t, _ in self.topics), ", ".join(refused),
                    "; $share needs mosquitto 2, EMQX, HiveMQ or VerneMQ (not the embedded "
                    "broker)" if self.share else "; check the broker's ACL")
            self.subscribed.set()
        if mid == self._snapshot_mid:   # the retained snapshot is on its way: stop the plain copy
            client.unsubscribe("%s/+/status" % self.prefix)

    def _on_message(self, client, userdata, msg) -> None:
        parts = msg.topic.split("/")
        if len(parts) != 3 or parts[2] not in KINDS:
            return   # our own cmd and _alerts topics, or somebody else's
        if not self._subscribed_to(msg.topic):
            return   # some brokers (amqtt 0.12) hand out retained messages of any topic
        try:
            if self.on_payload is not None:
                self.on_payload(msg.payload, msg.topic, bool(msg.retain))
        except Exception:   # a callback that raises would stall paho's loop (docs/field-facts.md)
            log.exception("handling a message on %r failed", msg.topic[:200])   # repr: no ESC

    def _subscribed_to(self, topic: str) -> bool:
        filters = [t for t, _ in self.topics] + (["%s/+/status" % self.prefix] if self.share else [])
        for topic_filter in filters:
            if topic_filter.startswith("$share/"):
                topic_filter = topic_filter.split("/", 2)[2]
            if mqtt.topic_matches_sub(topic_filter, topic):
                return True
        return False

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                wait: float = 0.0) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if wait:
            deadline = time.monotonic() + wait
            while not info.is_published() and time.monotonic() < deadline and self.connected.is_set():
                time.sleep(0.01)

    def stop(self) -> None:
        self._stopping = True
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()
