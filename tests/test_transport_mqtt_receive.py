"""The MQTT transport's receive side, driven through paho's callbacks without a network:
size checked before anything is kept, commands bounded, link state never lost in a flood."""

from agent.limits import COMMAND_QUEUE, MAX_COMMAND_BYTES
from agent.transports.base import Context
from agent.transports.mqtt import MqttTransport


class Message(object):
    def __init__(self, payload):
        self.payload = payload


class Client(object):
    def subscribe(self, topic, qos=0):
        pass


def _transport():
    return MqttTransport("mqtt://127.0.0.1:1", Context(device="d"))


def _links(events):
    return [e.value for e in events if e.kind == "link"]


def test_link_up_survives_a_flood_of_commands_between_two_polls():
    transport = _transport()
    transport._on_connect(Client(), None, {}, 0)
    for n in range(5000):
        transport._on_message(None, None, Message(b'{"id":"%d"}' % n))
    events = transport.poll()
    assert _links(events) == [True]
    assert sum(e.kind == "command" for e in events) == COMMAND_QUEUE
    assert transport.commands_dropped == 5000 - COMMAND_QUEUE


def test_a_reconnect_between_two_polls_is_said_as_down_then_up():
    transport = _transport()
    transport._on_connect(Client(), None, {}, 0)
    assert _links(transport.poll()) == [True]
    transport._on_disconnect(None, None, 0)
    transport._on_connect(Client(), None, {}, 0)
    assert _links(transport.poll()) == [False, True]   # the Will may have been published
    transport._on_disconnect(None, None, 0)
    assert _links(transport.poll()) == [False]
    assert _links(transport.poll()) == []


def test_an_oversize_payload_is_dropped_before_it_is_copied():
    transport = _transport()
    big = memoryview(bytearray(MAX_COMMAND_BYTES + 1))
    transport._on_message(None, None, Message(big))
    transport._on_message(None, None, Message(b"x" * MAX_COMMAND_BYTES))
    commands = [e.value for e in transport.poll() if e.kind == "command"]
    assert commands == [b"x" * MAX_COMMAND_BYTES] and transport.commands_dropped == 1
