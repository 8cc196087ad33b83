"""MQTT against a real mosquitto, with both paho-mqtt APIs (1.6 and 2.x).

Each test starts its own broker on a free port and runs the agent in a real
subprocess with one paho version on its PYTHONPATH.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from agent import messages
from agent.assembly import journal_folder
from agent.commands import sign
from agent.journal import Journal
from tests.conftest import unique
from tests.integration.broker import PAHO, Subscriber
from tests.profiles import write_profile

KEY = b"k" * 32
KEEPALIVE = 5


@pytest.fixture(params=sorted(PAHO))
def paho(request):
    path = PAHO[request.param]
    assert os.path.isdir(path), "paho-mqtt %s is missing: run make setup" % request.param
    return path


@pytest.fixture
def subscriber(broker):
    sub = Subscriber(broker.port)
    yield sub
    sub.close()


def mqtt_profile(tmp_path, port: int, device: str = "dev-1") -> str:
    (tmp_path / "key").write_bytes(KEY)
    return write_profile(tmp_path, {
        "device": {"id": device},
        "report": {"urls": "mqtt://127.0.0.1:%d" % port, "keepalive": "%ds" % KEEPALIVE},
        "buffer": {"flash": "%s/outbox" % tmp_path, "spill_after": "1s", "sync_every": "200ms"},
        "commands": {"key_file": "%s/key" % tmp_path, "settable": "periodic.every"}})


def start_agent(profile: str, paho_path: str, *extra: str) -> subprocess.Popen:
    env = {"PYTHONPATH": "%s:%s" % (os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), paho_path), "PATH": "/usr/bin:/bin"}
    return subprocess.Popen([sys.executable, "-m", "agent", "run", "--profile", profile, *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def stop_agent(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    return err.decode()


def test_session_shape_status_telemetry_events_and_clean_offline(tmp_path, broker, subscriber, paho):
    proc = start_agent(mqtt_profile(tmp_path, broker.port), paho)
    try:
        subscriber.wait_for(lambda s: s.topic == "gcagent/dev-1/status"
                            and s.message["state"] == "online", what="status online")
        subscriber.wait_for(lambda s: s.topic.endswith("/telemetry"), what="telemetry")
        subscriber.wait_for(lambda s: s.topic.endswith("/event") and s.message["event"] == "collect",
                            what="a collect event")
        late = Subscriber(broker.port, "gcagent/dev-1/status")
        retained = late.wait_for(lambda s: s.retained, what="the retained status")
        late.close()
        assert retained.message["state"] == "online"
    finally:
        err = stop_agent(proc)
    assert proc.returncode == 0, err
    offline = subscriber.wait_for(lambda s: s.topic.endswith("/status")
                                  and s.message["state"] == "offline", what="status offline")
    assert "will" not in offline.message   # published by the agent itself, not the broker
    got = subscriber.messages()
    assert all(messages.validate(m) == [] for m in got)
    seqs = [m["seq"] for m in got]
    assert seqs == list(range(1, len(seqs) + 1))   # nothing lost, nothing doubled, in order
    later = Subscriber(broker.port, "gcagent/dev-1/status")
    assert later.wait_for(lambda s: s.retained).message["state"] == "offline"
    later.close()


def test_kill_9_turns_the_retained_status_offline_through_the_will(tmp_path, broker, subscriber, paho):
    proc = start_agent(mqtt_profile(tmp_path, broker.port), paho)
    online = subscriber.wait_for(lambda s: s.topic.endswith("/status")
                                 and s.message["state"] == "online", what="status online")
    killed_at = time.monotonic()
    proc.kill()
    proc.communicate(timeout=10)
    will = subscriber.wait_for(lambda s: s.topic.endswith("/status") and s.at > killed_at
                               and s.message["state"] == "offline",
                               timeout=1.5 * KEEPALIVE + 3, what="the Will")
    assert will.message.get("will") is True and will.message["boot"] == online.message["boot"]
    assert will.at - killed_at <= 1.5 * KEEPALIVE + 3


def _caught_up(subscriber) -> bool:
    seqs = sorted({m["seq"] for m in subscriber.messages() if "will" not in m})
    return bool(seqs) and seqs == list(range(1, seqs[-1] + 1)) and not any(
        m.get("historical") for m in subscriber.messages()[-5:])


def test_broker_outage_loses_nothing_and_replays_in_order(tmp_path, broker, subscriber, paho):
    proc = start_agent(mqtt_profile(tmp_path, broker.port), paho)
    try:
        subscriber.wait_for(lambda s: s.topic.endswith("/telemetry"), what="telemetry")
        broker.stop()
        time.sleep(12)                       # the agent keeps producing; spill_after = 1s
        broker.start()
        subscriber.wait_for(lambda s: s.message.get("historical"), timeout=40,
                            what="a replayed message")
        deadline = time.monotonic() + 60     # replay runs at replay_rate (20/s): let it finish
        while time.monotonic() < deadline and not _caught_up(subscriber):
            time.sleep(0.5)
    finally:
        err = stop_agent(proc)
    assert proc.returncode == 0, err
    subscriber.wait_for(lambda s: s.topic.endswith("/status") and s.message["state"] == "offline"
                        and "will" not in s.message, timeout=20, what="the final status offline")
    got = [m for m in subscriber.messages() if "will" not in m]
    first = unique(got)
    seqs = [m["seq"] for m in first]
    assert sorted(seqs) == list(range(1, max(seqs) + 1)), "a seq is missing"
    assert seqs == sorted(seqs), "out of order within the boot"
    historical = [m for m in first if m.get("historical")]
    assert len(historical) > 30              # 12 s of 5 messages a second went through flash
    assert any(m["type"] == "event" and m["event"] == "link_down" for m in first)
    assert len(got) - len(first) <= 20       # duplicates only where an ack was lost (the window)


def test_kill_9_during_an_outage_then_restart_delivers_the_journal(tmp_path, broker, subscriber, paho):
    profile = mqtt_profile(tmp_path, broker.port)
    proc = start_agent(profile, paho)
    first_boot = subscriber.wait_for(lambda s: s.topic.endswith("/telemetry"),
                                     what="telemetry").message["boot"]
    broker.stop()
    time.sleep(4)                            # past spill_after and sync_every
    proc.kill()
    proc.communicate(timeout=10)
    broker.start()
    before = {m["seq"] for m in subscriber.messages() if m["boot"] == first_boot}
    proc = start_agent(profile, paho)
    try:
        subscriber.wait_for(lambda s: s.message.get("historical") and s.message["boot"] == first_boot
                            and s.message["seq"] > max(before), timeout=30,
                            what="the first boot's journal")
    finally:
        stop_agent(proc)
    replayed = [m for m in subscriber.messages() if m["boot"] == first_boot and m.get("historical")]
    assert all(messages.validate(m) == [] for m in replayed)
    assert len({m["seq"] for m in replayed} - before) >= 5


def test_a_damaged_journal_delivers_only_its_intact_records(tmp_path, broker, subscriber, paho):
    profile = mqtt_profile(tmp_path, broker.port)
    journal = Journal(journal_folder(str(tmp_path / "outbox"), broker.url))
    envelope = messages.Envelope("dev-1", boot="0ldb00t00000")
    for n in range(3):
        journal.append(messages.encode(envelope.make("event", event="app", name="n%d" % n, data={})))
    journal.close()
    [segment] = os.listdir(journal_folder(str(tmp_path / "outbox"), broker.url))
    path = os.path.join(journal_folder(str(tmp_path / "outbox"), broker.url), segment)
    with open(path, "rb") as handle:
        data = bytearray(handle.read())
    data[len(data) // 3 + 20] ^= 0xFF        # a flipped byte in the second record
    with open(path, "wb") as handle:
        handle.write(bytes(data[:-7]))       # and a torn last record
    proc = start_agent(profile, paho)
    try:
        subscriber.wait_for(lambda s: s.message.get("boot") == "0ldb00t00000", what="the old record")
        time.sleep(1.5)
    finally:
        stop_agent(proc)
    old = [m for m in subscriber.messages() if m["boot"] == "0ldb00t00000"]
    assert [m["name"] for m in old] == ["n0"] and old[0]["historical"] is True


def _command(subscriber, cmd: str, args=None, key: bytes = KEY, **override):
    command = {"id": override.pop("id", "c-%s-%f" % (cmd, time.time())), "cmd": cmd,
               "args": args or {}, "ts": override.pop("ts", time.time())}
    command.update(override)
    signed = sign(command, key)
    return command["id"], signed


def _ask(subscriber, payload: bytes, ident: str) -> dict:
    asked = time.monotonic()
    subscriber.publish("gcagent/dev-1/cmd", payload)
    return subscriber.wait_for(lambda s: s.topic.endswith("/resp") and s.message["id"] == ident
                               and s.at > asked, what="the resp to %s" % ident).message


def test_signed_commands_run_and_bad_ones_are_refused(tmp_path, broker, subscriber, paho):
    import json
    proc = start_agent(mqtt_profile(tmp_path, broker.port), paho)
    try:
        subscriber.wait_for(lambda s: s.topic.endswith("/status"), what="status")
        ident, good = _command(subscriber, "collect", {"generation": 2})
        resp = _ask(subscriber, json.dumps(good).encode(), ident)
        assert resp["ok"] is True and resp["result"]["generation"] == 2
        assert {"collected", "duration_ms", "rss_before_kb"} <= set(resp["result"])
        assert subscriber.wait_for(lambda s: s.topic.endswith("/event")
                                   and s.message.get("rule") == "command").message["event"] == "collect"
        assert _ask(subscriber, json.dumps(good).encode(), ident)["error"].startswith("replayed")
        ident, status = _command(subscriber, "status")
        assert _ask(subscriber, json.dumps(status).encode(), ident)["result"]["ceiling_kb"] == 65536
        ident, change = _command(subscriber, "set", {"rule": "periodic", "key": "every", "value": "2s"})
        assert _ask(subscriber, json.dumps(change).encode(), ident)["result"]["after"] == "2s"
        refusals = {
            "not_allowed": _command(subscriber, "set", {"rule": "periodic", "key": "generation",
                                                        "value": "1"}),
            "bad_signature": _command(subscriber, "collect", key=b"x" * 32),
            "stale": _command(subscriber, "collect", ts=time.time() - 3600),
            "unknown_command": _command(subscriber, "shell", {"run": "rm -rf /"}),
            "wrong_device": _command(subscriber, "collect", device="dev-2"),
            "bad_args": _command(subscriber, "collect", {"generation": 9}),
        }
        for reason, (ident, command) in refusals.items():
            resp = _ask(subscriber, json.dumps(command).encode(), ident)
            assert resp["ok"] is False and resp["error"].startswith(reason), (reason, resp)
        unsigned = {"id": "u-1", "cmd": "collect", "args": {}, "ts": time.time()}
        assert _ask(subscriber, json.dumps(unsigned).encode(), "u-1")["error"].startswith("unsigned")
        subscriber.publish("gcagent/dev-1/cmd", b"\x00not json")
        subscriber.publish("gcagent/dev-1/cmd", b"{" * 10000)   # dropped unread: no answer
        subscriber.wait_for(lambda s: s.topic.endswith("/resp")
                            and s.message.get("error", "").startswith("not_json"), what="not_json")
        ident, status = _command(subscriber, "status")
        result = _ask(subscriber, json.dumps(status).encode(), ident)["result"]
        assert result["refused"]["replayed"] == 1 and result["refused"]["bad_signature"] == 1
        assert result["commands_dropped"] == 1   # the oversize one, counted by the transport
        assert proc.poll() is None           # the agent goes on
    finally:
        stop_agent(proc)
    assert all(messages.validate(m) == [] for m in subscriber.messages("resp"))


def test_a_full_outbox_drops_the_oldest_counts_them_and_stays_bounded(tmp_path, broker, subscriber, paho):
    profile = tmp_path / "agent.ini"
    mqtt_profile(tmp_path, broker.port)
    profile.write_text(profile.read_text().replace("flash = %s/outbox" % tmp_path, "flash = off")
                       .replace("[buffer]\n", "[buffer]\nram = 4K\n"))
    profile = str(profile)
    proc = start_agent(profile, paho)
    try:
        subscriber.wait_for(lambda s: s.topic.endswith("/telemetry"), what="telemetry")
        broker.stop()
        time.sleep(6)                        # ~30 messages of ~400 B: far more than 4K
        broker.start()
        late = subscriber.wait_for(lambda s: s.topic.endswith("/telemetry")
                                   and s.message["dropped"] > 0, timeout=40,
                                   what="telemetry reporting drops")
    finally:
        stop_agent(proc)
    got = unique([m for m in subscriber.messages() if "will" not in m])
    seqs = sorted(m["seq"] for m in got)
    missing = set(range(1, seqs[-1] + 1)) - set(seqs)
    assert missing, "nothing was dropped"    # a consumer sees the loss as a seq gap
    assert late.message["dropped"] <= len(missing)   # counted, and only what was lost
    assert late.message["buffered"] <= 20    # the bound held (4K of ~400-byte messages)
