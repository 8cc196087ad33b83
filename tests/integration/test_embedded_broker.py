"""The demo's embedded broker (amqtt, tools/console/broker.py) passes the retained,
Will and QoS-1 tests mosquitto passes, and agents and the console ignore messages on
topics they did not subscribe to (amqtt 0.12 hands a connecting client every
retained message that matches *anybody's* subscription)."""

import time

import pytest

from tests.conftest import unique
from tests.integration.broker import PAHO, Subscriber
from tests.integration.test_mqtt import KEEPALIVE, mqtt_profile, start_agent, stop_agent
from tools.console.broker import EmbeddedBroker
from tools.mosquitto import Mosquitto


class Embedded(object):
    """EmbeddedBroker with the test broker's stop() / start() on one port."""

    def __init__(self) -> None:
        self.broker = EmbeddedBroker().start()
        self.port = self.broker.port

    def stop(self) -> None:
        self.broker.stop()

    def start(self) -> "Embedded":
        self.broker.restart()
        return self

    @property
    def url(self) -> str:
        return self.broker.url


@pytest.fixture(params=["mosquitto", "embedded"])
def any_broker(request, tmp_path):
    folder = tmp_path / "broker"
    folder.mkdir()
    server = Mosquitto(str(folder)).start() if request.param == "mosquitto" else Embedded()
    yield server
    server.stop()


def test_retained_status_goes_only_to_matching_subscriptions(tmp_path, any_broker):
    """Two devices with [commands]: each one's retained status reaches a late subscriber
    to it, nobody else's; no agent answers another device's status."""
    agents = []
    for device in ("dev-1", "dev-2"):
        folder = tmp_path / device
        folder.mkdir()
        agents.append(start_agent(mqtt_profile(folder, any_broker.port, device), PAHO["2"]))
    watcher = Subscriber(any_broker.port)
    try:
        for device in ("dev-1", "dev-2"):
            watcher.wait_for(lambda s, d=device: s.topic == "gcagent/%s/status" % d, what=device)
        time.sleep(1.0)   # both retained now; a third device (its agent) would connect here
        other = Subscriber(any_broker.port, "foo/bar")
        late = Subscriber(any_broker.port, "gcagent/dev-2/status")
        retained = late.wait_for(lambda s: s.retained, what="dev-2's retained status")
        time.sleep(1.5)
        assert retained.message["device"] == "dev-2" and retained.message["state"] == "online"
        assert {s.topic for s in late.seen} == {"gcagent/dev-2/status"}
        assert other.seen == []
        other.close()
        late.close()
        assert watcher.messages("resp") == [], "an agent answered a message that was not a command"
    finally:
        errors = [stop_agent(proc) for proc in agents]
        watcher.close()
    assert all(proc.returncode == 0 for proc in agents), errors


def test_the_will_turns_the_status_offline_after_kill_9(tmp_path, any_broker):
    watcher = Subscriber(any_broker.port)
    proc = start_agent(mqtt_profile(tmp_path, any_broker.port), PAHO["2"])
    try:
        online = watcher.wait_for(lambda s: s.topic.endswith("/status")
                                  and s.message["state"] == "online", what="status online")
        killed_at = time.monotonic()
        proc.kill()
        proc.communicate(timeout=10)
        will = watcher.wait_for(lambda s: s.at > killed_at and s.topic.endswith("/status")
                                and s.message["state"] == "offline",
                                timeout=1.5 * KEEPALIVE + 3, what="the Will")
        assert will.message.get("will") is True and will.message["boot"] == online.message["boot"]
        late = Subscriber(any_broker.port, "gcagent/+/status")
        assert late.wait_for(lambda s: s.retained, what="retained Will").message.get("will") is True
        late.close()
    finally:
        watcher.close()


def test_qos1_through_a_broker_restart_loses_nothing(tmp_path, any_broker):
    watcher = Subscriber(any_broker.port)
    proc = start_agent(mqtt_profile(tmp_path, any_broker.port), PAHO["2"])
    try:
        watcher.wait_for(lambda s: s.topic.endswith("/telemetry"), what="telemetry")
        any_broker.stop()
        time.sleep(3)                 # spill_after = 1s: some of it goes through flash
        any_broker.start()
        watcher.wait_for(lambda s: s.message.get("historical"), timeout=30, what="a replayed message")
        time.sleep(2)
    finally:
        err = stop_agent(proc)
    assert proc.returncode == 0, err
    watcher.wait_for(lambda s: s.topic.endswith("/status") and s.message["state"] == "offline"
                     and "will" not in s.message, timeout=20, what="the final status offline")
    seqs = sorted(m["seq"] for m in unique([m for m in watcher.messages() if "will" not in m]))
    watcher.close()
    assert seqs == list(range(1, seqs[-1] + 1)), "a seq is missing"


def test_the_console_link_drops_topics_it_did_not_subscribe_to(any_broker):
    from tools.console.mqtt_link import MqttLink
    got = []
    link = MqttLink(any_broker.url, on_payload=lambda payload, topic, retained: got.append(topic),
                    prefix="gcagent")
    link._on_message(None, None, type("M", (), {"topic": "other/dev/status", "payload": b"{}",
                                                "retain": True})())
    link._on_message(None, None, type("M", (), {"topic": "gcagent/dev/status", "payload": b"{}",
                                                "retain": True})())
    assert got == ["gcagent/dev/status"]


def test_the_agent_takes_commands_only_from_its_own_cmd_topic():
    from agent.transports.base import Context
    from agent.transports.mqtt import MqttTransport
    transport = MqttTransport("mqtt://127.0.0.1:1883", Context(device="dev-1"))
    for topic in ("gcagent/dev-2/status", "gcagent/dev-1/status", "foo/bar", "gcagent/dev-1/cmd"):
        transport._on_message(None, None, type("M", (), {"topic": topic, "payload": topic.encode()})())
    assert [e.value for e in transport.poll() if e.kind == "command"] == [b"gcagent/dev-1/cmd"]
