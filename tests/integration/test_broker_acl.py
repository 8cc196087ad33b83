"""deploy/broker on a real mosquitto, with certificates from deploy/broker/make-certs.sh.

The broker config and ACL are the shipped files, with only their paths and
port moved into a temporary folder. mosquitto drops a denied publish without
telling the publisher, so every "cannot" is checked by a subscriber that is
allowed to see the topic: the publisher then sends an allowed marker message,
and when the marker arrives (the broker handles one client's messages in
order) the denied message must not have arrived before it.
"""

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from typing import List, Tuple

import paho.mqtt.client as mqtt
import pytest

from agent.commands import sign
from tests.conftest import REPO
from tests.profiles import write_profile
from tools.bundle.__main__ import main as gc_bundle
from tools.mosquitto import Mosquitto, free_port

BROKER_DIR = os.path.join(REPO, "deploy", "broker")
MAKE_CERTS = os.path.join(BROKER_DIR, "make-certs.sh")


def make_certs(folder: str, *args: str) -> None:
    done = subprocess.run(["sh", MAKE_CERTS, "--dir", folder, "--days", "2", *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def deploy_config(folder: str, port: int) -> str:
    """deploy/broker/mosquitto.conf with its paths and port moved to `folder`."""
    with open(os.path.join(BROKER_DIR, "mosquitto.conf")) as handle:
        text = handle.read()
    assert "listener 8883\n" in text and "/etc/mosquitto/gcagent/" in text
    text = text.replace("listener 8883\n", "listener %d 127.0.0.1\n" % port)
    text = text.replace("/etc/mosquitto/gcagent/", folder + "/")
    text = text.replace("persistence_location /var/lib/mosquitto/",
                        "persistence_location %s/" % folder)
    text += "log_dest file %s/mosquitto.log\n" % folder
    if os.getuid() == 0:   # as root mosquitto drops to its own user and cannot read tmp
        text += "user root\n"
    shutil.copy(os.path.join(BROKER_DIR, "gcagent.acl"), os.path.join(folder, "gcagent.acl"))
    return text


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """A broker running the deploy config, and the folder with every certificate."""
    folder = str(tmp_path_factory.mktemp("fleet"))
    make_certs(folder, "ca")
    make_certs(folder, "server", "localhost", "127.0.0.1")
    make_certs(folder, "console")
    make_certs(folder, "device", "dev-a", "dev-b")
    port = free_port()
    server = Mosquitto(folder, port=port, config=deploy_config(folder, port)).start()
    yield server, folder
    server.stop()


class Client(object):
    """A paho client with one certificate; records what it receives."""

    def __init__(self, port: int, folder: str, name: str = "", ca: str = "ca.crt") -> None:
        self.got: List[Tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.refused = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name or "anon")
        cert = dict(certfile=os.path.join(folder, name + ".crt"),
                    keyfile=os.path.join(folder, name + ".key")) if name else {}
        self.client.tls_set(ca_certs=os.path.join(folder, ca), **cert)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda c, u, f, rc, p: self.refused.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, rc, props) -> None:
        (self.refused if rc.is_failure else self.connected).set()

    def _on_message(self, client, userdata, msg) -> None:
        with self.lock:
            self.got.append((msg.topic, msg.payload))

    def ready(self) -> "Client":
        assert self.connected.wait(10), "did not connect"
        return self

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(10), "no SUBACK for %s" % topic

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def wait_for(self, topic: str, payload: bytes) -> List[Tuple[str, bytes]]:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with self.lock:
                if (topic, payload) in self.got:
                    return list(self.got)
            time.sleep(0.02)
        raise AssertionError("%s never arrived; got %r" % (topic, self.got))

    def wait_until(self, predicate) -> dict:
        """The first JSON message for which predicate(topic, message) holds."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with self.lock:
                for topic, payload in self.got:
                    try:
                        message = json.loads(payload)
                    except ValueError:
                        continue
                    if isinstance(message, dict) and predicate(topic, message):
                        return message
            time.sleep(0.05)
        raise AssertionError("no such message; got %r" % [t for t, _ in self.got])

    def close(self) -> None:
        self.client.disconnect()   # first: the network thread then ends at once
        self.client.loop_stop()


@pytest.fixture
def clients(fleet):
    server, folder = fleet
    made = []

    def connect(name: str) -> Client:
        made.append(Client(server.port, folder, name).ready())
        return made[-1]
    yield connect
    for client in made:
        client.close()


def test_a_device_publishes_its_own_topics_and_the_console_reads_them(clients):
    console = clients("console")
    console.subscribe("gcagent/#")
    device = clients("dev-a")
    for kind in ("status", "telemetry", "event", "resp"):
        device.publish("gcagent/dev-a/%s" % kind, b"from a: " + kind.encode())
    seen = console.wait_for("gcagent/dev-a/resp", b"from a: resp")
    assert [t for t, _ in seen] == ["gcagent/dev-a/%s" % k
                                    for k in ("status", "telemetry", "event", "resp")]


def test_a_device_cannot_publish_as_another_or_write_commands(clients):
    console = clients("console")
    console.subscribe("gcagent/#")
    device = clients("dev-a")
    for topic in ("gcagent/dev-b/telemetry", "gcagent/dev-b/status", "gcagent/dev-a/cmd",
                  "gcagent/dev-b/cmd", "gcagent/elsewhere", "other/topic"):
        device.publish(topic, b"forged")
    device.publish("gcagent/dev-a/event", b"marker")
    seen = console.wait_for("gcagent/dev-a/event", b"marker")
    assert seen == [("gcagent/dev-a/event", b"marker")]


def test_a_device_reads_only_its_own_commands(clients):
    device_a = clients("dev-a")
    device_a.subscribe("gcagent/dev-a/cmd")
    device_a.subscribe("gcagent/dev-b/cmd")
    device_a.subscribe("gcagent/#")
    device_b = clients("dev-b")
    device_b.subscribe("gcagent/dev-b/cmd")
    device_b.publish("gcagent/dev-b/telemetry", b"b's telemetry")
    console = clients("console")
    console.publish("gcagent/dev-b/cmd", b"for b")
    console.publish("gcagent/dev-a/cmd", b"for a")
    assert device_b.wait_for("gcagent/dev-b/cmd", b"for b")
    seen = device_a.wait_for("gcagent/dev-a/cmd", b"for a")
    assert set(seen) == {("gcagent/dev-a/cmd", b"for a")}


def test_the_console_sends_commands_and_alerts_but_cannot_publish_as_a_device(clients):
    console = clients("console")
    console.subscribe("gcagent/#")
    device = clients("dev-a")
    device.publish("gcagent/_alerts", b"forged alert")
    console.publish("gcagent/dev-a/status", b"forged status")
    console.publish("gcagent/dev-a/telemetry", b"forged telemetry")
    console.publish("gcagent/_alerts", b"an alert")
    console.publish("gcagent/dev-a/cmd", b"a command")
    seen = console.wait_for("gcagent/dev-a/cmd", b"a command")
    assert seen == [("gcagent/_alerts", b"an alert"), ("gcagent/dev-a/cmd", b"a command")]


def test_no_connection_without_a_certificate_from_the_fleet_ca(fleet, tmp_path):
    server, folder = fleet
    make_certs(str(tmp_path), "ca")   # another CA, and a device certificate from it
    make_certs(str(tmp_path), "device", "dev-a")
    shutil.copy(os.path.join(folder, "ca.crt"), str(tmp_path / "fleet-ca.crt"))
    for name, where in (("", folder), ("dev-a", str(tmp_path))):
        try:
            client = Client(server.port, where, name, ca="fleet-ca.crt" if name else "ca.crt")
        except (ssl.SSLError, ConnectionError):
            continue   # refused during the handshake (TLS 1.2)
        try:   # TLS 1.3: the server's refusal arrives after the client's handshake ends
            assert client.refused.wait(10), "%s connected" % (name or "a client without a certificate")
            assert not client.connected.is_set()
        finally:
            client.close()


def test_make_certs_refuses_a_device_named_like_the_console(fleet):
    folder = fleet[1]
    done = subprocess.run(["sh", MAKE_CERTS, "--dir", folder, "device", "console"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "console" in done.stderr


def test_the_agent_bundle_works_within_the_acl(fleet, clients, tmp_path):
    """What the agent really does (retained status, telemetry, cmd in, resp out) fits the ACL."""
    server, folder = fleet
    (tmp_path / "cmd.key").write_bytes(b"k" * 32)
    profile = write_profile(tmp_path, {
        "device": {"id": "dev-a", "memory_limit": None},
        "report": {"urls": "mqtts://localhost:%d" % server.port, "ca_file": "%s/ca.crt" % folder,
                   "cert_file": "%s/dev-a.crt" % folder, "key_file": "%s/dev-a.key" % folder},
        "commands": {"key_file": "%s/cmd.key" % tmp_path}}, name="dev-a.ini")
    assert gc_bundle(["--profile", str(profile), "--device-id", "dev-a", "--out",
                      str(tmp_path / "dist"), "--python", "3.10"]) == 0
    console = clients("console")
    console.subscribe("gcagent/#")
    proc = subprocess.Popen([sys.executable, "-I", str(tmp_path / "dist" / "gc-agent-dev-a.pyz"),
                             "run"], cwd=str(tmp_path), env={"PATH": "/usr/bin:/bin"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        telemetry = console.wait_until(lambda t, m: t == "gcagent/dev-a/telemetry")
        command = sign({"id": "acl-1", "cmd": "status", "args": {}, "ts": time.time()}, b"k" * 32)
        console.publish("gcagent/dev-a/cmd", json.dumps(command).encode())
        resp = console.wait_until(lambda t, m: t == "gcagent/dev-a/resp" and m.get("id") == "acl-1")
    finally:
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=30)[1]
    assert proc.returncode == 0, err.decode()
    assert telemetry["samples"] and resp["ok"] is True
    offline = console.wait_until(lambda t, m: t == "gcagent/dev-a/status"
                                 and m.get("state") == "offline")
    assert offline["bundle"]
