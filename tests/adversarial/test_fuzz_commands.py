"""Property-based: commands through the real receive and verify paths never raise, never
run unless signed with the device's key, and every refusal names its reason.

Each payload goes in as a transport receives it (paho's `on_message` of the
MQTT transport, or a framed line read by the serial transport), comes out of
`poll()`, and is handled by `agent.commands.Commands` with the agent's
limits (agent/limits.py).
"""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import framing
from agent.commands import REASONS, Commands, sign
from agent.limits import MAX_COMMAND_BYTES, MAX_ERROR_CHARS
from agent.transports.base import Context
from agent.transports.mqtt import MqttTransport
from agent.transports.serial import SerialTransport

KEY = b"f" * 32
NOW = 1_800_000_000.0
DEVICE = "fuzz-1"


class Message(object):
    def __init__(self, payload: bytes) -> None:
        self.payload = payload


def _json_values():
    scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2 ** 70, max_value=2 ** 70),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=80))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                        st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)


FIELD = st.sampled_from(["id", "cmd", "args", "ts", "device", "sig", "extra", ""])
COMMAND_NAMES = st.sampled_from(["collect", "status", "set", "reload", "shell", "", "COLLECT"])


@st.composite
def signed(draw):
    """A command signed with the device's key (valid), or mutated after signing (not)."""
    fields = {"id": draw(st.text(min_size=1, max_size=64)), "cmd": draw(COMMAND_NAMES),
              "args": draw(st.dictionaries(st.text(max_size=8), _json_values(), max_size=3)),
              "ts": NOW + draw(st.floats(min_value=-600, max_value=600))}
    if draw(st.booleans()):
        fields["device"] = draw(st.sampled_from([DEVICE, "other", ""]))
    key = draw(st.sampled_from([KEY, KEY, b"g" * 32]))
    command = sign(fields, key)
    mutation = draw(st.sampled_from(["none", "none", "field", "sig", "drop_sig", "extra"]))
    if mutation == "field":
        name = draw(st.sampled_from(["id", "cmd", "args", "ts"]))
        command[name] = draw(_json_values().filter(lambda v, old=command[name]: v != old))
    elif mutation == "sig":
        at = draw(st.integers(min_value=0, max_value=63))
        flipped = "0" if command["sig"][at] != "0" else "1"
        command["sig"] = command["sig"][:at] + flipped + command["sig"][at + 1:]
    elif mutation == "drop_sig":
        del command["sig"]
    elif mutation == "extra":
        command["extra"] = 1
    valid = mutation == "none" and key == KEY
    return json.dumps(command).encode("utf-8"), valid


@st.composite
def junk(draw):
    """Bytes, JSON of any shape, command-like objects of random fields, or oversize commands."""
    kind = draw(st.sampled_from(["bytes", "json", "fields", "big"]))
    if kind == "big":   # past the cap: must be dropped before it is copied or kept
        size = draw(st.integers(min_value=MAX_COMMAND_BYTES + 1, max_value=70 * 1024))
        return json.dumps({"id": "b", "cmd": "collect", "ts": NOW, "pad": "x" * size}).encode(), False
    if kind == "bytes":
        return draw(st.binary(max_size=MAX_COMMAND_BYTES + 200)), False
    if kind == "json":
        return json.dumps(draw(_json_values())).encode("utf-8"), False
    return json.dumps(draw(st.dictionaries(FIELD, _json_values(), max_size=6))).encode("utf-8"), False


def _verifier(ran):
    handlers = {name: (lambda args, n=name: ran.append(n) or {"ran": n})
                for name in ("collect", "status", "set", "reload")}
    return Commands(KEY, DEVICE, handlers, clock=lambda: NOW)


def _through_mqtt(payload: bytes):
    transport = MqttTransport("mqtt://127.0.0.1:1", Context(device=DEVICE))
    transport._on_message(None, None, Message(payload))
    return [e.value for e in transport.poll() if e.kind == "command"]


def _through_serial(payload: bytes):
    transport = SerialTransport("loop://", Context(device=DEVICE))
    if b"\n" in payload or b"\r" in payload:
        return []   # not one line: the framing splits it; each part is fuzzed as its own
    for body in transport.reader.feed(framing.frame(payload)):
        transport._received(body)
    return [e.value for e in transport.poll() if e.kind == "command"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(signed(), junk()), min_size=1, max_size=6), st.sampled_from(["mqtt", "serial"]))
def test_commands_never_raise_never_run_unsigned_and_always_say_why(payloads, path):
    ran = []
    commands = _verifier(ran)
    accepted = set()
    for payload, valid in payloads:
        received = (_through_mqtt if path == "mqtt" else _through_serial)(payload)
        if len(payload) > MAX_COMMAND_BYTES:
            assert received == []                  # never kept, never verified
        for body in received:
            before = len(ran)
            resp = commands.handle(body)           # never raises
            assert isinstance(resp["id"], str) and len(resp["id"]) <= 64
            if len(ran) > before:                  # it ran: it was signed with our key, once
                assert valid and resp["ok"] is True, payload
                assert body not in accepted
                accepted.add(body)
            else:
                assert resp["ok"] is False and len(resp["error"]) <= MAX_ERROR_CHARS
                reason = resp["error"].split(":", 1)[0]
                assert reason in REASONS and reason != "failed", resp
    assert sum(commands.refused.values()) + len(ran) == sum(
        1 for p, _ in payloads if len(p) <= MAX_COMMAND_BYTES and (path == "mqtt" or (
            b"\n" not in p and b"\r" not in p and _is_command_line(p))))


def _is_command_line(payload: bytes) -> bool:
    """What the serial transport passes on: a JSON object with a `cmd` that is not an ack."""
    try:
        message = json.loads(payload.decode("utf-8"))
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("type") != "ack" and "cmd" in message
