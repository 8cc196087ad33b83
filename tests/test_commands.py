"""Signed commands: every refusal, running handlers, replay memory, HMAC, keys."""

import hashlib
import hmac
import json
import os
import subprocess
import sys

import pytest

from agent.commands import (
    REASONS,
    CommandRefused,
    Commands,
    canonical,
    hmac_sha256_hex,
    load_key,
    sign,
)
from agent.errors import AgentError
from agent.messages import validate

KEY = b"device-key-0042-abcdef"
OTHER_KEY = b"someone-elses-key-123"
DEVICE = "ix20-0042"
NOW = 1700000000.0


class Recorder(object):
    """A handler that remembers its calls."""

    def __init__(self, result=None):
        self.calls = []
        self.result = {"collected": 12} if result is None else result

    def __call__(self, args):
        self.calls.append(args)
        return self.result


def make(handlers=None, **kwargs):
    kwargs.setdefault("clock", lambda: NOW)
    return Commands(KEY, DEVICE, handlers or {"collect": Recorder(), "status": Recorder()}, **kwargs)


def command(**fields):
    base = {"id": "c1", "cmd": "collect", "args": {"generation": 2}, "ts": NOW}
    base.update(fields)
    return base


def payload(fields, key=KEY):
    return json.dumps(sign(fields, key)).encode("utf-8")


def refusals():
    """(name, payload, reason, commands kwargs): one payload built for each refusal."""
    signed = sign(command(), KEY)
    tampered = dict(signed, args={"generation": 0})
    return [
        ("oversized", payload(command(args={"pad": "x" * 5000})), "too_large", {}),
        ("not utf-8", b"\xff\xfe{}", "not_json", {}),
        ("not json", b"collect please", "not_json", {}),
        ("truncated json", payload(command())[:-3], "not_json", {}),
        ("NaN", b'{"id":"c1","cmd":"collect","ts":NaN,"sig":"00"}', "not_json", {}),
        ("deep nesting", b"[" * 4000 + b"]" * 4000, "too_large", {}),
        ("deep nesting, capped higher", b"[" * 4000 + b"]" * 4000, "not_json", {"max_bytes": 9000}),
        ("list", b'[{"id":"c1"}]', "not_object", {}),
        ("string", b'"collect"', "not_object", {}),
        ("missing id", payload({k: v for k, v in command().items() if k != "id"}), "bad_field", {}),
        ("empty id", payload(command(id="")), "bad_field", {}),
        ("long id", payload(command(id="x" * 65)), "bad_field", {}),
        ("numeric id", payload(command(id=7)), "bad_field", {}),
        ("missing cmd", payload({k: v for k, v in command().items() if k != "cmd"}), "bad_field", {}),
        ("cmd not a string", payload(command(cmd=["collect"])), "bad_field", {}),
        ("args a list", payload(command(args=[2])), "bad_field", {}),
        ("missing ts", payload({k: v for k, v in command().items() if k != "ts"}), "bad_field", {}),
        ("ts a string", payload(command(ts=str(NOW))), "bad_field", {}),
        ("ts a bool", payload(command(ts=True)), "bad_field", {}),
        ("ts huge", payload(command(ts=10 ** 400)), "bad_field", {}),
        ("device a number", payload(command(device=42)), "bad_field", {}),
        ("sig a number", json.dumps(dict(command(), sig=1234)).encode(), "bad_field", {}),
        ("extra field", payload(command(path="/etc/passwd")), "bad_field", {}),
        ("unsigned", json.dumps(command()).encode(), "unsigned", {}),
        ("empty sig", json.dumps(dict(command(), sig="")).encode(), "unsigned", {}),
        ("null sig", json.dumps(dict(command(), sig=None)).encode(), "unsigned", {}),
        ("wrong key", payload(command(), key=OTHER_KEY), "bad_signature", {}),
        ("sig over other args", json.dumps(tampered).encode(), "bad_signature", {}),
        ("garbage sig", json.dumps(dict(command(), sig="\u00e9" * 64)).encode(), "bad_signature", {}),
        ("other device", payload(command(device="ix20-0043")), "wrong_device", {}),
        ("too old", payload(command(ts=NOW - 301)), "stale", {}),
        ("too far ahead", payload(command(ts=NOW + 301)), "stale", {}),
        ("small window", payload(command(ts=NOW - 11)), "stale", {"window": 10}),
        ("unknown cmd", payload(command(cmd="reboot")), "unknown_command", {}),
        ("not allowed", payload(command()), "not_allowed", {"allow": ["status"]}),
    ]


@pytest.mark.parametrize("name,data,reason,kwargs", refusals(), ids=[r[0] for r in refusals()])
def test_each_refusal_answers_why_and_runs_nothing(name, data, reason, kwargs):
    handlers = {"collect": Recorder(), "status": Recorder()}
    commands = make(handlers, **kwargs)
    resp = commands.handle(data)
    assert resp["ok"] is False
    assert resp["error"].startswith(reason + ": ")
    assert len(resp["error"]) > len(reason) + 5           # a sentence follows the code
    assert "result" not in resp
    assert all(not h.calls for h in handlers.values())
    assert commands.refused == {reason: 1}
    assert commands._seen == {}                            # a refused command burns no id
    assert not validate(dict(resp, v=1, type="resp", device=DEVICE, boot="b", seq=1, ts=NOW))
    with pytest.raises(CommandRefused) as info:
        commands.verify(data)
    assert info.value.reason == reason


def test_refusal_reports_the_id_when_it_can_be_read():
    assert make().handle(payload(command(id="abc", cmd="reboot")))["id"] == "abc"
    assert make().handle(json.dumps(command(id="abc")).encode())["id"] == "abc"
    assert make().handle(b"not json")["id"] == ""
    assert make().handle(payload(command(id="x" * 65)))["id"] == ""
    assert make().handle(payload(command(id=7)))["id"] == ""


def test_signed_command_runs_its_handler_once_with_its_args():
    collect = Recorder({"collected": 42})
    commands = make({"collect": collect})
    resp = commands.handle(payload(command(id="run-1", args={"generation": 1})))
    assert resp == {"id": "run-1", "ok": True, "result": {"collected": 42}}
    assert collect.calls == [{"generation": 1}]
    assert commands.refused == {}


def test_device_field_and_missing_args_and_allow():
    collect = Recorder()
    commands = make({"collect": collect}, allow=["collect"])
    fields = {"id": "n1", "cmd": "collect", "ts": NOW, "device": DEVICE}
    assert commands.verify(payload(fields)) == dict(fields, args={})
    assert commands.handle(payload(dict(fields, id="n2")))["ok"] is True
    assert collect.calls == [{}]


def test_ts_at_the_edge_of_the_window_is_accepted():
    commands = make()
    assert commands.handle(payload(command(id="a", ts=NOW - 300)))["ok"] is True
    assert commands.handle(payload(command(id="b", ts=NOW + 300)))["ok"] is True
    assert commands.handle(payload(command(id="c", ts=int(NOW))))["ok"] is True


def test_same_id_twice_is_replayed_and_runs_once():
    collect = Recorder()
    commands = make({"collect": collect})
    data = payload(command(id="dup"))
    assert commands.handle(data)["ok"] is True
    resp = commands.handle(data)
    assert resp["ok"] is False and resp["error"].startswith("replayed: ")
    assert resp["id"] == "dup"
    # a fresh signature over a different body does not help either
    resp = commands.handle(payload(command(id="dup", args={"generation": 0})))
    assert resp["error"].startswith("replayed: ")
    assert len(collect.calls) == 1
    assert commands.refused == {"replayed": 2}


def test_refused_commands_do_not_burn_ids():
    commands = make()
    # forged, stale and unknown commands with id "x" are refused without remembering it
    commands.handle(payload(command(id="x"), key=OTHER_KEY))
    commands.handle(payload(command(id="x", ts=NOW - 1000)))
    commands.handle(payload(command(id="x", cmd="reboot")))
    assert commands.handle(payload(command(id="x")))["ok"] is True


def test_handler_exception_is_failed_with_type_and_message():
    def broken(args):
        raise KeyError("generation")

    commands = make({"collect": broken})
    resp = commands.handle(payload(command(id="f1")))
    assert resp["id"] == "f1" and resp["ok"] is False
    assert resp["error"] == "failed: KeyError: 'generation'"
    assert "Traceback" not in resp["error"]
    assert commands.refused == {"failed": 1}
    # it ran, so its id is spent
    assert commands.handle(payload(command(id="f1")))["error"].startswith("replayed: ")


def test_handler_may_refuse_bad_args_and_unserialisable_results_fail():
    def picky(args):
        raise CommandRefused("bad_args", "generation must be 0, 1 or 2")

    commands = make({"collect": picky, "status": lambda args: {"when": object()}})
    resp = commands.handle(payload(command(id="p1")))
    assert resp["error"] == "bad_args: generation must be 0, 1 or 2"
    resp = commands.handle(payload(command(id="p2", cmd="status")))
    assert resp["ok"] is False and resp["error"].startswith("failed: TypeError: ")
    assert commands.refused == {"bad_args": 1, "failed": 1}


def test_refused_counts_add_up():
    commands = make(allow=["collect"])
    payloads = [b"[]", b"{", payload(command(id="a")), payload(command(id="a")),
                payload(command(id="b", cmd="status")), payload(command(id="c", cmd="nope")),
                json.dumps(command(id="d")).encode(), payload(command(id="e", ts=0)),
                b"]", payload(command(id="f"), key=OTHER_KEY)]
    answers = [commands.handle(p) for p in payloads]
    assert sum(1 for a in answers if a["ok"]) == 1
    assert commands.refused == {"not_object": 1, "not_json": 2, "replayed": 1, "not_allowed": 1,
                                "unknown_command": 1, "unsigned": 1, "stale": 1, "bad_signature": 1}
    assert sum(commands.refused.values()) == len(payloads) - 1


def test_remember_bounds_memory_and_forgets_the_oldest():
    commands = make(remember=3)
    for i in range(5):
        assert commands.handle(payload(command(id="id-%d" % i)))["ok"] is True
    assert list(commands._seen) == ["id-2", "id-3", "id-4"]
    # the newest are still refused; the oldest has been forgotten (the ts window is the backstop)
    assert commands.handle(payload(command(id="id-4")))["error"].startswith("replayed: ")
    assert commands.handle(payload(command(id="id-0")))["ok"] is True
    assert len(commands._seen) == 3


@pytest.mark.parametrize("length", [0, 1, 16, 32, 63, 64, 65, 100, 200])
def test_hmac_matches_the_standard_library(length):
    key = bytes((i * 7 + 3) % 256 for i in range(length))
    for data in (b"", b"x", b"a" * 64, b"b" * 1000, "h\u00e9llo".encode("utf-8")):
        assert hmac_sha256_hex(key, data) == hmac.new(key, data, hashlib.sha256).hexdigest()


def test_hmac_rfc4231_case_2():
    assert hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")


def test_sign_then_verify_round_trips_and_does_not_mutate():
    original = command(id="rt", args={"name": "caf\u00e9", "n": [1, 2.5, None, True]}, device=DEVICE)
    signed = sign(original, KEY)
    assert "sig" not in original and signed["sig"] == hmac_sha256_hex(KEY, canonical(original))
    assert sign(signed, KEY) == signed                      # an existing sig is not signed over
    assert make().verify(json.dumps(signed, ensure_ascii=True).encode()) == original
    assert make().verify(json.dumps(signed, indent=2).encode()) == original   # any spacing
    assert make().verify(json.dumps(dict(signed, sig=signed["sig"].upper())).encode()) == original


def test_canonical_is_independent_of_key_order():
    a = {"id": "1", "cmd": "c", "args": {"x": 1, "y": {"b": 2, "a": 1}}, "ts": 5}
    b = {"ts": 5, "args": {"y": {"a": 1, "b": 2}, "x": 1}, "cmd": "c", "id": "1"}
    assert canonical(a) == canonical(b)
    assert canonical(a) == b'{"args":{"x":1,"y":{"a":1,"b":2}},"cmd":"c","id":"1","ts":5}'
    assert canonical({"s": "\u00e9"}) == '{"s":"\u00e9"}'.encode("utf-8")


def test_load_key_hex_and_text(tmp_path):
    raw = bytes(range(32))
    hex_file = tmp_path / "hex.key"
    hex_file.write_text("  %s\n" % raw.hex())
    assert load_key(str(hex_file)) == raw
    text_file = tmp_path / "text.key"
    text_file.write_text("correct horse battery staple\n")
    assert load_key(str(text_file)) == b"correct horse battery staple"
    short_hex = tmp_path / "short-hex.key"
    short_hex.write_text("ab" * 16 + "\n")          # 32 hex digits: too few to count as hex
    assert load_key(str(short_hex)) == b"ab" * 16


@pytest.mark.parametrize("content", ["", "   \n", "short-secret\n"])
def test_load_key_refuses_empty_and_short_keys_naming_the_path(tmp_path, content):
    key_file = tmp_path / "device.key"
    key_file.write_text(content)
    with pytest.raises(AgentError) as info:
        load_key(str(key_file))
    assert not isinstance(info.value, CommandRefused)
    assert str(key_file) in str(info.value)
    if content.strip():
        assert content.strip() not in str(info.value)


def test_load_key_missing_file_names_the_path(tmp_path):
    with pytest.raises(AgentError) as info:
        load_key(str(tmp_path / "absent.key"))
    assert "absent.key" in str(info.value)


def test_command_refused_reasons_are_checked():
    assert "failed" in REASONS and "busy" in REASONS and len(set(REASONS)) == 14
    with pytest.raises(ValueError):
        CommandRefused("because", "no")
    assert str(CommandRefused("stale", "too old")) == "too old"


def test_import_does_not_load_hashlib():
    code = "import agent.commands, sys; print('hashlib' in sys.modules, 'hmac' in sys.modules)"
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, check=True, cwd=repo)
    assert out.stdout.split() == [b"False", b"False"]
