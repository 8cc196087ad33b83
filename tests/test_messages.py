"""Messages (schema v1): envelopes, encode/decode, validation, hostile payloads."""

import json
import tracemalloc
import zlib

import pytest

from agent.errors import MessageError
from agent.messages import MAX_BYTES, Envelope, decode, encode, new_boot_id, validate

SAMPLE = {"ts": 1700000000.5, "mem_free_kb": 120000, "mem_total_kb": 262144, "rss_kb": 30000,
          "gc_count": [10, 2, 1], "gc_collections": [100, 9, 1], "gc_collected": 5000,
          "gc_uncollectable": 0, "gc_pause_ms_total": 1.5, "gc_pause_ms_max": 0.75}

STATUS = {"state": "online", "agent": "0.1", "python": "3.6.10", "gc_flavour": "generational-700",
          "model": "IX20", "profile": "ix20.ini", "profile_sha256": "ab" * 32, "ceiling_kb": 40960,
          "uptime_s": 12.5}


def envelope(clock=lambda: 1700000000.1234):
    return Envelope("ix20-0042", boot="b00700000001", clock=clock)


def valid_messages():
    env = envelope()
    return [
        env.make("status", **STATUS),
        env.make("telemetry", samples=[SAMPLE, dict(SAMPLE, ts=1700000060)], buffered=3, dropped=0),
        env.make("event", event="collect", rule="periodic", generation=2, collected=120,
                 duration_ms=3.25, rss_before_kb=30000, rss_after_kb=29000),
        env.make("event", event="collect", historical=True),
        env.make("resp", id="cmd-1", ok=True, result={"collected": 3}),
        env.make("resp", id="cmd-2", ok=False, error="unknown command"),
    ]


def raw(message):
    return json.dumps(message).encode("utf-8")


# --- the envelope ---------------------------------------------------------------------


def test_seq_rises_by_one_for_every_message_whatever_its_type():
    env = envelope()
    seqs = [env.make(kind, **fields)["seq"] for kind, fields in
            [("status", STATUS), ("event", {"event": "x"}), ("resp", {"id": "1", "ok": True}),
             ("event", {"event": "y"})]]
    assert seqs == [1, 2, 3, 4]


def test_the_envelope_carries_device_boot_version_and_clock_time():
    message = envelope().make("event", event="collect")
    assert {k: message[k] for k in ("v", "type", "device", "boot", "event")} == {
        "v": 1, "type": "event", "device": "ix20-0042", "boot": "b00700000001", "event": "collect"}
    assert message["ts"] == pytest.approx(1700000000.123, abs=0.001)


def test_each_envelope_gets_its_own_boot_id_and_seq():
    first, second = Envelope("d"), Envelope("d")
    assert first.boot != second.boot
    assert len(first.boot) == 12 and int(first.boot, 16) >= 0
    assert first.make("event", event="x")["seq"] == second.make("event", event="x")["seq"] == 1
    assert new_boot_id() != new_boot_id()


# --- encode / decode ---------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_every_message_type_round_trips(compress):
    for message in valid_messages():
        assert validate(message) == []
        assert decode(encode(message, compress=compress)) == message


def test_plain_payloads_are_compact_utf8_json():
    message = envelope().make("event", event="app", name="café")
    payload = encode(message)
    assert payload.startswith(b"{")
    assert b" " not in payload
    assert "café".encode() in payload
    assert json.loads(payload.decode("utf-8")) == message


def test_zlib_payloads_are_told_apart_and_inflated():
    message = envelope().make("telemetry", samples=[SAMPLE] * 50, buffered=0, dropped=2)
    payload = zlib.compress(raw(message))
    assert payload[:1] == b"\x78"
    assert decode(payload) == message
    assert len(encode(message, compress=True)) < len(encode(message))


def test_a_payload_over_the_cap_is_refused():
    message = envelope().make("event", event="x", pad="p" * 2000)
    with pytest.raises(MessageError) as info:
        decode(encode(message), max_bytes=1000)
    assert "cap" in str(info.value)


def test_a_zlib_bomb_is_refused_without_inflating_it_all():
    bomb = zlib.compress(b"\0" * (50 << 20), 9)
    assert len(bomb) < MAX_BYTES   # small on the wire: it must be caught while inflating
    tracemalloc.start()
    try:
        with pytest.raises(MessageError) as info:
            decode(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "cap" in str(info.value)
    assert peak < 8 * MAX_BYTES   # a few times the cap, nowhere near 50 MB


def test_a_message_that_inflates_past_a_smaller_cap_is_refused():
    message = envelope().make("telemetry", samples=[SAMPLE] * 200, buffered=0, dropped=0)
    payload = encode(message, compress=True)
    assert len(payload) < 4096 < len(encode(message))
    with pytest.raises(MessageError):
        decode(payload, max_bytes=4096)


@pytest.mark.parametrize("payload", [
    b"\xff\xfe{}",
    b'{"v": 1, "type": "event", "device": "\xc3\x28"}',
    b"{not json",
    b"",
    b"\x78\x9c not really zlib",
    zlib.compress(b"\xff\xfe not utf-8"),
    zlib.compress(b"{not json either"),
    b'{"v": 1} trailing',
])
def test_payloads_that_are_not_utf8_json_are_refused_with_message_error(payload):
    with pytest.raises(MessageError):
        decode(payload)


@pytest.mark.parametrize("payload", [b"[1, 2]", b'"text"', b"null", b"42"])
def test_json_that_is_not_an_object_is_refused(payload):
    with pytest.raises(MessageError) as info:
        decode(payload)
    assert "object" in str(info.value)


# --- validate -----------------------------------------------------------------------------


def base_event(**changes):
    message = envelope().make("event", event="collect")
    message.update(changes)
    return message


@pytest.mark.parametrize("field", ["v", "type", "device", "boot", "seq", "ts"])
def test_a_message_missing_an_envelope_field_is_invalid(field):
    message = base_event()
    del message[field]
    problems = validate(message)
    assert problems
    with pytest.raises(MessageError):
        decode(raw(message))


@pytest.mark.parametrize("kind, field", [("status", "profile_sha256"), ("status", "ceiling_kb"),
                                         ("telemetry", "samples"), ("telemetry", "dropped"),
                                         ("event", "event"), ("resp", "id"), ("resp", "ok")])
def test_a_message_missing_a_field_of_its_type_names_the_field(kind, field):
    message = next(m for m in valid_messages() if m["type"] == kind)
    del message[field]
    problems = validate(message)
    assert any(field in p and "missing" in p for p in problems), problems


@pytest.mark.parametrize("field, value", [
    ("seq", True),            # a bool is an int to Python, not to the schema
    ("seq", 1.5),
    ("seq", "1"),
    ("ts", False),
    ("ts", "1700000000"),
    ("device", 42),
    ("boot", None),
    ("event", ["collect"]),
])
def test_wrong_types_are_caught(field, value):
    problems = validate(base_event(**{field: value}))
    assert any(field in p and "wrong type" in p for p in problems), problems
    with pytest.raises(MessageError) as info:
        decode(raw(base_event(**{field: value})))
    assert field in str(info.value)


def test_bools_are_not_accepted_as_numbers_anywhere():
    status = dict(valid_messages()[0], ceiling_kb=True)
    assert any("ceiling_kb" in p for p in validate(status))
    telemetry = valid_messages()[1]
    telemetry["dropped"] = False
    telemetry["samples"][0] = dict(SAMPLE, rss_kb=True)
    problems = validate(telemetry)
    assert any("dropped" in p for p in problems)
    assert any("samples[0].rss_kb" in p for p in problems)


def test_resp_ok_must_be_a_bool():
    problems = validate(dict(valid_messages()[4], ok=1))
    assert any("ok" in p for p in problems)


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_another_schema_version_is_refused(version):
    problems = validate(base_event(v=version))
    assert problems and "version" in problems[0]
    with pytest.raises(MessageError):
        decode(raw(base_event(v=version)))


@pytest.mark.parametrize("kind", ["alert", "", None, "EVENT"])
def test_an_unknown_message_type_is_refused(kind):
    problems = validate(base_event(type=kind))
    assert problems and "type" in problems[0]


def test_telemetry_samples_are_checked_one_by_one():
    telemetry = valid_messages()[1]
    telemetry["samples"] = [SAMPLE, {"ts": 1.0}, "not a sample"]
    problems = validate(telemetry)
    assert not any("samples[0]" in p for p in problems)
    assert any("samples[1].mem_free_kb" in p for p in problems)
    assert any("samples[2] is not an object" in p for p in problems)


def test_a_resp_needs_a_result_or_an_error():
    resp = valid_messages()[4]
    del resp["result"]
    assert any("result or error" in p for p in validate(resp))


def test_validate_reports_every_problem_not_just_the_first():
    message = base_event(device=1, boot=2, seq="3")
    del message["event"]
    assert len(validate(message)) == 4


def test_validate_refuses_what_is_not_an_object():
    assert validate([1, 2]) and validate("x") and validate(None)


# --- hostile payloads a console will meet -------------------------------------------------


def test_deep_nesting_nan_and_bool_version_are_refused_as_message_errors():
    from agent.errors import MessageError
    from agent.messages import decode
    for payload in (b"[" * 100000, b'{"v":1,"type":"event","ts":NaN}',
                    b'{"v":true,"type":"event","device":"d","boot":"b","seq":1,"ts":1,"event":"x"}'):
        with pytest.raises(MessageError):
            decode(payload)
