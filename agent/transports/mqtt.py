# `mqtt://[user@]host[:port]` and `mqtts://...` (TLS): reports to a broker.
#
# Built on paho-mqtt, with the 1.6 client API (what a Python 3.6 device can
# run) and the 2.x one (`CallbackAPIVersion.VERSION2`), imported only here and
# only when a URL asks for MQTT. The rules we keep, from paho's issue tracker:
#
# - paho owns one network thread (`loop_start`); we never wait on the network:
#   `connect_async`, and publishing only while connected and under `window`
#   messages in flight (`max_inflight_messages_set`, `max_queued_messages_set`,
#   so paho's own queue is bounded too: #158);
# - callbacks only append to bounded deques (or set plain attributes) and never raise: paho calls `on_publish`
#   holding its outbox mutex, and a lock of ours there deadlocks against
#   `publish()` (#354, #177); the agent thread drains them in `poll()`;
# - QoS 1 everywhere. A message leaves our outbox on its PUBACK. paho itself
#   resends in-flight messages after a reconnect (with DUP), so we publish each
#   message once per process; a crash leaves it in our outbox or journal, and
#   it is sent again after the restart (a duplicate only where an ack was lost).
#
# Session shape: retained `status` online is the agent's first message; the Last
# Will is the retained `status` offline of this boot (seq 0); a clean stop
# publishes `offline` itself before disconnecting.

import collections
import os
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from ..errors import TransportError
from ..limits import COMMAND_QUEUE, ERROR_QUEUE, MAX_COMMAND_BYTES
from .base import Transport, TransportEvent

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Deque, Dict, List, Optional  # noqa: F401 (type comments)

    from ..outbox import Outgoing  # noqa: F401 (type comments)
    from .base import Context  # noqa: F401 (type comments)

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_ERROR_LOGS_KEPT = 20
DIAGNOSE_EVERY = 300.0   # seconds between two diagnoses of a failing connection


def parse_mqtt_url(url):  # type: (str) -> Any
    # mqtt://[user@]host[:port] -> (tls, host, port, user); ValueError says what is wrong.
    parts = urlsplit(url)
    if parts.scheme.lower() not in DEFAULT_PORTS:
        raise ValueError("%r is not an MQTT URL: mqtt://host[:port] or mqtts://host[:port]" % url)
    if parts.password is not None:
        raise ValueError("%r: no password in the URL (it would show in status and logs); "
                         "use [report] password_file or password_env" % url)
    if not parts.hostname:
        raise ValueError("%r names no broker host: mqtt://host[:port]" % url)
    if parts.path not in ("", "/") or parts.query:
        raise ValueError("%r: no path or query in an MQTT URL (topics come from [report] prefix)"
                         % url)
    wrong_port = "%r: the port is not a number from 1 to 65535" % url
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(wrong_port) from exc
    if port == 0:   # would otherwise fall back to the default port unsaid
        raise ValueError(wrong_port)
    port = port or DEFAULT_PORTS[parts.scheme.lower()]
    return parts.scheme.lower() == "mqtts", parts.hostname, port, parts.username or ""


def _paho():
    try:
        import paho.mqtt.client as mqtt
    except ImportError as exc:
        raise TransportError("paho-mqtt is not installed (pip install paho-mqtt; a bundle "
                             "carries its own copy)") from exc
    return mqtt


class MqttTransport(Transport):
    # One MQTT session per agent start, kept alive across reconnects.

    has_link = True

    @classmethod
    def check_url(cls, url):  # type: (str) -> None
        parse_mqtt_url(url)

    def __init__(self, url, context=None):  # type: (str, Optional[Context]) -> None
        super(MqttTransport, self).__init__(url, context)
        self.scheme = urlsplit(url).scheme.lower()
        self.tls, self.host, self.port, self.username = parse_mqtt_url(url)
        settings = self.context.settings
        self.prefix = "%s/%s" % (settings.prefix, self.context.device)
        self.keepalive = int(settings.keepalive)
        self.window = int(settings.window)
        self.username = self.username or settings.username
        self._client = None
        self._connected = False
        self._inflight = {}  # type: Dict[int, Outgoing]
        # Filled by paho's thread, drained by ours; deque operations are atomic.
        # Commands and errors each have a bounded queue of their own, and the link
        # state is two plain attributes, so no flood can push a link change out
        # (agent/limits.py, docs/hardening.md).
        self._acks = collections.deque()  # type: Deque[int]
        self._events = collections.deque(maxlen=ERROR_QUEUE)  # type: Deque[TransportEvent]
        self._commands = collections.deque()  # type: Deque[bytes]
        self._connects = 0          # successful connections so far (paho's thread)
        self._connects_seen = 0     # ... as far as poll() has told the agent
        self._said_up = False       # the link state poll() last told the agent
        self.commands_dropped = 0   # too large, or past COMMAND_QUEUE
        self._errors_seen = 0
        self._connect_fails = 0
        self._diagnosed_at = None  # type: Optional[float]

    # -- paho's thread: append, never raise, never lock -----------------------------

    def _on_connect(self, client, userdata, flags, rc, *properties):
        # type: (Any, Any, Any, Any, *Any) -> None
        try:
            code = getattr(rc, "value", rc)
            if code == 0:
                # Counted before the state changes: poll() reads the state first.
                self._connects += 1
                self._connected = True
                # Subscribing here is paho's documented pattern (it renews the
                # subscription after every reconnect) and takes no lock of ours.
                client.subscribe(self.prefix + "/cmd", qos=1)
            else:
                self._events.append(TransportEvent("error", "broker refused the connection: %s"
                                                   % (rc,)))
        except Exception:
            pass

    def _on_disconnect(self, client, userdata, *args):  # type: (Any, Any, *Any) -> None
        self._connected = False

    def _on_publish(self, client, userdata, mid, *args):  # type: (Any, Any, Any, *Any) -> None
        self._acks.append(mid)

    def _on_message(self, client, userdata, message):  # type: (Any, Any, Any) -> None
        try:
            if getattr(message, "topic", self.prefix + "/cmd") != self.prefix + "/cmd":
                return   # not ours: some brokers hand out retained messages of other topics
            # Size first: an oversize payload is never copied or kept (the verifier
            # would refuse it anyway), and the queue is bounded.
            if len(message.payload) > MAX_COMMAND_BYTES or len(self._commands) >= COMMAND_QUEUE:
                self.commands_dropped += 1
                return
            self._commands.append(bytes(message.payload))
        except Exception:
            pass

    def _on_connect_fail(self, client, userdata):  # type: (Any, Any) -> None
        self._connect_fails += 1

    def _on_log(self, client, userdata, level, text):  # type: (Any, Any, Any, Any) -> None
        # paho reports connection failures (TLS errors, refused sockets) only here.
        try:
            if level <= 8 and self._errors_seen < _ERROR_LOGS_KEPT:   # MQTT_LOG_ERR / WARNING
                self._errors_seen += 1
                self._events.append(TransportEvent("error", str(text)[:300]))
        except Exception:
            pass

    # -- the agent's thread ---------------------------------------------------------------

    def open(self):  # type: () -> None
        mqtt = _paho()
        client_id = "gcagent-%s" % self.context.device
        try:
            if hasattr(mqtt, "CallbackAPIVersion"):   # paho-mqtt 2.x
                client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                     clean_session=True, protocol=mqtt.MQTTv311)
            else:                                     # paho-mqtt 1.x
                client = mqtt.Client(client_id=client_id, clean_session=True,
                                     protocol=mqtt.MQTTv311)
            client.on_connect = self._on_connect
            client.on_disconnect = self._on_disconnect
            client.on_publish = self._on_publish
            client.on_message = self._on_message
            client.on_log = self._on_log
            client.on_connect_fail = self._on_connect_fail
            client.max_inflight_messages_set(self.window)
            client.max_queued_messages_set(self.window)
            # paho doubles the delay up to the maximum; the random start spreads a
            # fleet that lost its broker at the same moment.
            client.reconnect_delay_set(1 + ord(os.urandom(1)) % 3, 120)
            if self.username:
                client.username_pw_set(self.username, self._password())
            if self.tls:
                self._set_tls(client)
            if self.context.will:
                client.will_set(self.prefix + "/status", self.context.will, qos=1, retain=True)
            client.connect_async(self.host, self.port, keepalive=self.keepalive)
            client.loop_start()
        except TransportError:
            raise
        except Exception as exc:
            raise TransportError("%s: %s: %s" % (self.describe(), type(exc).__name__, exc)) from exc
        self._client = client

    def _password(self):  # type: () -> Optional[str]
        settings = self.context.settings
        path = settings.password_file
        if path:
            try:
                with open(path) as handle:
                    return handle.read().strip()
            except OSError as exc:
                raise TransportError("password_file %s: %s" % (path, exc.strerror or exc)) from exc
        name = settings.password_env
        if name:
            if name not in os.environ:
                raise TransportError("password_env: environment variable %s is not set" % name)
            return os.environ[name]
        return None

    def _set_tls(self, client):  # type: (Any) -> None
        settings = self.context.settings
        ca = settings.ca_file or None
        cert = settings.cert_file or None
        key = settings.key_file or None
        for what, path in (("ca_file", ca), ("cert_file", cert), ("key_file", key)):
            if path and not os.access(path, os.R_OK):
                raise TransportError("%s %s cannot be read" % (what, path))
        try:
            client.tls_set(ca_certs=ca, certfile=cert, keyfile=key,
                           cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT
                           if hasattr(ssl, "PROTOCOL_TLS_CLIENT") else ssl.PROTOCOL_TLSv1_2)
        except (ssl.SSLError, ValueError, OSError) as exc:
            raise TransportError("TLS set-up (ca_file, cert_file, key_file): %s" % exc) from exc

    def ready(self):  # type: () -> bool
        return self._client is not None and self._connected and len(self._inflight) < self.window

    def send(self, item):  # type: (Outgoing) -> bool
        topic = "%s/%s" % (self.prefix, item.type)
        payload = item.body
        if self.context.settings.compress:
            import zlib
            payload = zlib.compress(payload, 9)
        info = self._client.publish(topic, payload, qos=1, retain=item.type == "status")
        if info.rc != 0:
            raise TransportError("publish to %s failed (paho rc %s)" % (topic, info.rc))
        self._inflight[info.mid] = item
        return False

    def poll(self):  # type: () -> List[TransportEvent]
        if self._connect_fails and (self._diagnosed_at is None
                                    or time.monotonic() - self._diagnosed_at > DIAGNOSE_EVERY):
            # paho retries silently (the reason is only at DEBUG, without the
            # exception): find the reason ourselves, off the agent's thread.
            self._diagnosed_at = time.monotonic()
            self._connect_fails = 0
            threading.Thread(target=self._diagnose, name="gc-agent-mqtt-diagnose",
                             daemon=True).start()
        out = self._link_events()
        while self._acks:
            item = self._inflight.pop(self._acks.popleft(), None)
            if item is not None:
                out.append(TransportEvent("ack", item))
        while self._events:
            out.append(self._events.popleft())
        for _ in range(COMMAND_QUEUE):
            if not self._commands:
                break
            out.append(TransportEvent("command", self._commands.popleft()))
        return out

    def _link_events(self):  # type: () -> List[TransportEvent]
        # Link changes since the last poll, from state rather than a queue.
        out = []
        up = self._connected          # first: a connection is counted before it is up
        connects = self._connects
        if connects != self._connects_seen:   # (re)connected since: a down in between too
            self._connects_seen = connects
            if self._said_up:
                out.append(TransportEvent("link", False))
            self._said_up = False
        if up != self._said_up:
            self._said_up = up
            out.append(TransportEvent("link", up))
        return out

    def _diagnose(self):  # type: () -> None
        # One connection attempt of our own, to say why paho's keep failing.
        try:
            sock = socket.create_connection((self.host, self.port), timeout=10)
            try:
                if self.tls:
                    settings = self.context.settings
                    context = ssl.create_default_context(cafile=settings.ca_file or None)
                    if settings.cert_file:
                        context.load_cert_chain(settings.cert_file, settings.key_file or None)
                    context.wrap_socket(sock, server_hostname=self.host).close()
                reason = "the broker accepts connections now; paho will retry"
            finally:
                sock.close()
        except Exception as exc:
            reason = "%s: %s" % (type(exc).__name__, exc)
        self._events.append(TransportEvent("error", "cannot connect to %s: %s"
                                           % (self.describe(), reason)))

    def close(self):  # type: () -> None
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if self._inflight and self._connected:
                # Our "offline" may be among the unacknowledged: a clean DISCONNECT
                # would cancel the Will and leave "online" retained for good. Drop
                # the connection instead, so the broker publishes the Will.
                client.loop_stop()
                sock = client.socket()
                if sock is not None:
                    sock.close()
                return
            client.disconnect()   # a clean DISCONNECT: the broker drops the Will
            client.loop_stop()
        except Exception:
            pass

    def describe(self):  # type: () -> str
        user = (self.username + "@") if self.username else ""
        return "%s://%s%s:%d" % (self.scheme, user, self.host, self.port)
