"""agent/bounds.py: what the agent sends keeps the ranges; what no reader can hold is refused."""

import json

import pytest

from agent import bounds, messages, profile
from agent.errors import MessageError, ProfileError
from tests.console.fleetdata import Device

PROFILE = """[device]
id = ix20-1
model = {model}
[rule:{rule}]
type = periodic
every = 1m
"""


def test_every_kind_of_message_the_agent_makes_keeps_the_ranges():
    dev = Device("ix20-1")
    made = [dev.status(), dev.will(), dev.telemetry(30000), dev.collect(40000, 20000),
            dev.event("app", name="client_disconnected", data={"client": "plc-3", "n": 2 ** 62}),
            dev.env.make("resp", id="c1", ok=True, result={"top": [{"size_kb": 1.5}]})]
    for message in made:
        assert bounds.check(message) == []
        assert messages.decode(messages.encode(message)) == message


@pytest.mark.parametrize("field,raw,why", [
    ("seq", "9223372036854775808", "64 bits"),
    ("seq", "-1", "out of range"),
    ("ts", "1e999", "not finite"),
    ("ts", "1e12", "out of range"),
    ("device", json.dumps("d" * 98), "characters"),
    ("model", json.dumps("m" * 129), "characters"),
    ("model", '"\\ud800"', "Unicode"),
    ("rule", "[1]", "wrong type"),
    ("extra", "[" * 33 + "]" * 33, "nested"),
    ("extra", "-" + "9" * 30, "64 bits"),
])
def test_a_value_no_reader_can_hold_is_refused_at_decode(field, raw, why):
    body = dict(Device("ix20-1").status(), **{field: "@@"})
    payload = json.dumps(body).replace('"@@"', raw).encode()
    with pytest.raises(MessageError) as caught:
        messages.decode(payload)
    assert str(caught.value).startswith("range: ") and why in str(caught.value)


def test_a_profile_cannot_name_a_model_or_rule_the_console_would_refuse():
    assert profile.loads(PROFILE.format(model="IX20", rule="periodic")).device.model == "IX20"
    for model, rule in (("M" * 129, "periodic"), ("IX20", "r" * 129)):
        with pytest.raises(ProfileError) as caught:
            profile.loads(PROFILE.format(model=model, rule=rule))
        assert "at most 128" in str(caught.value)
