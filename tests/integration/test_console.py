"""gc-console against a real mosquitto and real agents in subprocesses."""

import json
import os
import signal
import subprocess
import sys
import time

from tests.conftest import REPO, WORKLOADS
from tests.integration.broker import PAHO, Subscriber
from tests.profiles import write_profile

KEY = b"console-test-key-0123456789abcdef"


def env() -> dict:
    assert os.path.isdir(PAHO["2"]), "paho-mqtt 2 is missing: run make setup"
    return {"PYTHONPATH": "%s:%s" % (REPO, PAHO["2"]), "PATH": "/usr/bin:/bin",
            "HOME": os.environ.get("HOME", "/tmp")}


def profile(tmp_path, port: int, device: str, model: str) -> str:
    (tmp_path / "key").write_bytes(KEY)
    return write_profile(tmp_path, {
        "device": {"id": device, "model": model},
        "report": {"urls": "mqtt://127.0.0.1:%d" % port, "keepalive": "5s"},
        "commands": {"key_file": "%s/key" % tmp_path}}, name=device + ".ini")


def start_agent(path: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "agent", "run", "--profile", path, "--",
                             os.path.join(WORKLOADS, "cycles.py"), "--rate", "4", "--seconds", "120",
                             "--quiet"], env=env(), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def console(*args: str) -> list:
    return [sys.executable, "-m", "tools.console", *args]


def start_ingest(url: str, db: str, *extra: str) -> subprocess.Popen:
    proc = subprocess.Popen(console("ingest", "--broker", url, "--db", db, "--stats", *extra),
                            env=env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stderr.readline().decode()          # "recording from ... into ...": subscribed
    assert "recording from" in line, line + proc.stderr.read().decode()
    return proc


def stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    return err.decode()


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(console(*args), env=env(), cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def keys(messages) -> set:
    return {(m["device"], m["boot"], m["seq"]) for m in messages}


def db_messages(db: str) -> list:
    from tools.console.store import Store
    store = Store(db)
    try:
        return store.messages()
    finally:
        store.close()


def test_ingest_records_once_shows_missed_messages_and_marks_a_killed_device_offline(tmp_path, broker):
    reference = Subscriber(broker.port)
    db = str(tmp_path / "console.db")
    ingest = start_ingest(broker.url, db, "--default-interval", "2s")
    devices = [("ix20-a", "IX20"), ("tx64-b", "TX64"), ("ex15-c", "EX15")]
    agents = {d: start_agent(profile(tmp_path, broker.port, d, m)) for d, m in devices}
    try:
        reference.wait_for(lambda s: sum(1 for x in reference.seen if x.topic.endswith("/telemetry"))
                           >= 9, what="telemetry from all three")
        # watch --once, from its own database, sees the fleet online
        shown = run("watch", "--once", "--broker", broker.url, "--db", str(tmp_path / "w.db"),
                    "--settle", "2s")
        assert shown.returncode == 0, shown.stderr
        table = shown.stdout.splitlines()
        assert "3 devices: 3 online, 0 offline" in table[0], shown.stdout
        for device, model in devices:
            assert any(line.startswith(device) and model in line and "online" in line
                       for line in table), shown.stdout
        # send: a signed collect round-trips through the broker to a live agent
        (tmp_path / "console.key").write_bytes(KEY)
        sent = run("send", "ix20-a", "collect", "generation=2", "--broker", broker.url,
                   "--key", str(tmp_path / "console.key"), "--db", db)
        assert sent.returncode == 0, sent.stderr
        resp = json.loads(sent.stdout)
        assert resp["ok"] is True and resp["result"]["generation"] == 2 and resp["device"] == "ix20-a"
        wrong = tmp_path / "wrong.key"
        wrong.write_bytes(b"w" * 32)
        refused = run("send", "ix20-a", "collect", "--broker", broker.url, "--key", str(wrong),
                      "--db", db)
        assert refused.returncode == 1 and "bad_signature" in refused.stdout
        # the recorder is away for a while: what it misses shows as missing, per boot
        stats = json.loads(stop(ingest).strip().splitlines()[-1])
        assert stats["bad"] == 0
        time.sleep(1.5)
        ingest = start_ingest(broker.url, db, "--default-interval", "2s")
        time.sleep(1.0)
        for m in reference.messages()[:20]:   # resends: recorded once all the same
            reference.publish("gcagent/%s/%s" % (m["device"], m["type"]),
                              json.dumps(m).encode())
        os.kill(agents["ex15-c"].pid, signal.SIGKILL)   # no goodbye: only its Will says so
        stop(agents["ix20-a"])
        stop(agents["tx64-b"])
        reference.wait_for(lambda s: s.message.get("will") and s.message["device"] == "ex15-c",
                           timeout=30, what="the Will of the killed agent")
        time.sleep(1.0)
        stats = json.loads(stop(ingest).strip().splitlines()[-1])
    finally:
        for proc in agents.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if ingest.poll() is None:
            stop(ingest)
        reference.close()
    assert stats["duplicates"] >= 20
    recorded = db_messages(db)
    assert len(recorded) == len(keys(recorded))
    seen = keys(m for m in reference.messages() if m.get("v") == 1)
    assert keys(recorded) <= seen
    missed = seen - keys(recorded)
    assert missed, "the recorder was stopped for 1.5 s but missed nothing"
    listed = {d["device"]: d for d in map(json.loads, run("devices", "--db", db, "--json")
                                          .stdout.splitlines())}
    assert sum(d["missing"] for d in listed.values()) == len([k for k in missed if k[2] > 0])
    assert (listed["ex15-c"]["state"], listed["ex15-c"]["reason"]) == ("offline", "lost")
    assert (listed["ix20-a"]["state"], listed["ix20-a"]["reason"]) == ("offline", "stopped")
    assert "offline" in listed["ex15-c"]["alerts"]
    republished = [s.message for s in reference.seen if s.topic == "gcagent/_alerts"]
    assert {"device": "ex15-c", "alert": "offline", "state": "raised", "detail": "lost"} in [
        {k: a[k] for k in ("device", "alert", "state", "detail")} for a in republished]
    table = run("devices", "--db", db).stdout
    assert "lost" in table and "stopped" in table
    from tools.console.store import Store
    commands = Store(db).commands("ix20-a")
    assert [(c["cmd"], c["ok"]) for c in commands] == [("collect", 1), ("collect", 0)]
    assert json.loads(commands[0]["resp"])["result"]["generation"] == 2


def test_two_ingest_instances_sharing_a_group_record_each_message_exactly_once(tmp_path, broker):
    reference = Subscriber(broker.port)
    dbs = [str(tmp_path / "one.db"), str(tmp_path / "two.db")]
    ingests = [start_ingest(broker.url, db, "--share", "recorders") for db in dbs]
    agents = [start_agent(profile(tmp_path, broker.port, "share-%d" % i, "IX20")) for i in range(3)]
    try:
        reference.wait_for(lambda s: len(reference.seen) >= 60, what="60 messages")
        # a recorder that joins later gets every device's retained status, even through a share
        late = run("watch", "--once", "--broker", broker.url, "--db", str(tmp_path / "late.db"),
                   "--share", "latecomers", "--settle", "1s")
        assert "3 devices: 3 online" in late.stdout, late.stdout + late.stderr
    finally:
        for proc in agents:
            stop(proc)
        time.sleep(1.0)
        for proc in ingests:
            stop(proc)
        reference.close()
    one, two = (keys(db_messages(db)) for db in dbs)
    assert one and two, "one instance got nothing: the share did not spread the stream"
    assert not one & two, "%d messages recorded by both" % len(one & two)
    assert one | two == keys(m for m in reference.messages() if m.get("v") == 1)
    from tools.console.store import Store
    assert {d["missing"] for d in Store(dbs[0]).devices()} == {None}   # no gaps from half a stream


def test_make_demo_shows_three_devices_online(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tools.demo", "--duration", "12"], cwd=REPO,
                          env=dict(env(), PYTHONPATH=REPO), capture_output=True, text=True,
                          timeout=90, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    frames = proc.stdout.split("3 devices: ")
    assert any(f.startswith("3 online") for f in frames), proc.stdout
    online = [f for f in frames if f.startswith("3 online")][-1]
    for device in ("ix20-01", "tx64-01", "ex15-01"):
        assert any(line.startswith(device) and "online" in line for line in online.splitlines())
    assert frames[-1].startswith("0 online, 3 offline"), "Ctrl-C/stop left devices running"


def _emulated_devices() -> "list":
    out = []
    for entry in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                if b"tools.emulator\x00run" in handle.read():
                    out.append(int(entry))
        except (OSError, ValueError):
            continue
    return out


def test_a_closed_terminal_or_a_kill_stops_the_demo_devices_too():
    # The devices run in sessions of their own, so a hangup never reaches them: the
    # demo must stop them itself, as it does on Ctrl-C.
    before = set(_emulated_devices())
    for sig in (signal.SIGHUP, signal.SIGTERM):
        proc = subprocess.Popen([sys.executable, "-m", "tools.demo", "--no-web", "--duration", "60"],
                                cwd=REPO, env=dict(env(), PYTHONPATH=REPO), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while len(set(_emulated_devices()) - before) < 3 and time.monotonic() < deadline:
                time.sleep(0.2)
            started = set(_emulated_devices()) - before
            assert len(started) == 3, "the demo did not start its three devices"
            proc.send_signal(sig)
            proc.wait(40)
            left = set(_emulated_devices()) & started
            assert not left, "%s left %d devices running" % (sig.name, len(left))
        finally:
            if proc.poll() is None:
                proc.kill()
            for pid in set(_emulated_devices()) - before:
                os.kill(pid, signal.SIGKILL)


def test_a_thousand_malformed_payloads_through_the_broker_are_refused_and_counted(tmp_path, broker):
    from agent import messages
    from tests.console.fleetdata import Device
    from tests.console.test_ingest import malformed
    db = str(tmp_path / "junk.db")
    ingest = start_ingest(broker.url, db, "--exit-after", "1")
    sender = Subscriber(broker.port, topic="nothing/here")
    try:
        junk = [malformed(i) for i in range(10)]
        for i in range(1000):
            sender.client.publish("gcagent/junk-%d/telemetry" % (i % 7), junk[i % 10], qos=1)
        good = Device("after-junk").status()
        sender.publish("gcagent/after-junk/status", messages.encode(good))
        _, err = ingest.communicate(timeout=60)   # --exit-after 1: the good one ends it
    finally:
        if ingest.poll() is None:
            stop(ingest)
        sender.close()
    stats = json.loads(err.decode().strip().splitlines()[-1])
    assert stats["bad"] == 1000 and stats["recorded"] == 1, stats
    assert {k for k, n in stats["bad_by_reason"].items() if n} == {"not_json", "schema",
                                                                    "too_large", "zlib"}
    peak = stats["peak_rss_kb"]   # the recorder's VmHWM: a 50 MB bomb is never inflated
    assert peak < 100 * 1024, "refusing junk grew the recorder to %d KB" % peak
    assert [m["device"] for m in db_messages(db)] == ["after-junk"]
