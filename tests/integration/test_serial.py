"""Serial reporting over real ptys (os.openpty, socat pairs), socket:// and loop://.

The agent runs in a real subprocess writing `JSON*CRC` lines to a pty; the
test plays the console at the other end (tests/integration/serial_peer.py).
"""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc

import pytest

from agent import framing, messages
from agent.commands import sign
from agent.outbox import outgoing
from agent.transports import open_transport
from agent.transports.serial import parse_serial_url
from tests.conftest import REPO, unique
from tests.integration.serial_peer import Peer, Socat, open_raw, pty_pair
from tests.profiles import write_profile

KEY = b"s" * 32

EMITTER = textwrap.dedent("""\
    import sys, time
    import agent
    count, pause = int(sys.argv[1]), float(sys.argv[2])
    for i in range(count):
        agent.event("tick", i=i)
        time.sleep(pause)
    """)


def serial_profile(tmp_path, url: str) -> str:
    (tmp_path / "key").write_bytes(KEY)
    (tmp_path / "emit.py").write_text(EMITTER)
    return write_profile(tmp_path, {
        "device": {"id": "dev-s"},
        "agent": {"tick": "100ms"},
        "report": {"urls": url, "interval": "300ms", "batch": 1, "keepalive": None},
        "buffer": {"ram": "512K", "flash": "%s/outbox" % tmp_path},
        "commands": {"key_file": "%s/key" % tmp_path}}, name="serial.ini")


def start_agent(profile: str, *script: str) -> subprocess.Popen:
    env = {"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin"}
    argv = [sys.executable, "-m", "agent", "run", "--profile", profile]
    if script:
        argv += ["--", *script]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen, timeout: float = 40) -> str:
    """Wait for an agent running a script to end with it; its stderr."""
    _, err = proc.communicate(timeout=timeout)
    return err.decode()


def stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=40)
    return err.decode()


def assert_complete(got, boot_count: int = 1):
    """Every seq of every boot from 1 to its last, once after dedup, ending offline."""
    mine = unique(got)
    boots = {m["boot"] for m in mine}
    assert len(boots) == boot_count
    for boot in boots:
        seqs = sorted(m["seq"] for m in mine if m["boot"] == boot)
        assert seqs == list(range(1, seqs[-1] + 1)), "missing: %s" % sorted(
            set(range(1, seqs[-1] + 1)) - set(seqs))
    last = max(mine, key=lambda m: m["seq"])
    assert last["type"] == "status" and last["state"] == "offline"
    assert all(messages.validate(m) == [] for m in mine)
    return mine


def test_messages_arrive_intact_and_acknowledged_over_a_pty(tmp_path):
    master, slave, path = pty_pair()
    peer = Peer(master)
    try:
        proc = start_agent(serial_profile(tmp_path, "serial://%s?baud=115200" % path),
                           str(tmp_path / "emit.py"), "40", "0.02")
        err = finish(proc)
        assert proc.returncode == 0, err
        mine = assert_complete(peer.messages())
    finally:
        peer.close()
        os.close(master)
        os.close(slave)
    ticks = [m for m in mine if m["type"] == "event" and m["event"] == "app"]
    assert [m["data"]["i"] for m in ticks] == list(range(40))
    statuses = [m for m in mine if m["type"] == "status"]
    assert any("(acknowledged)" in r for m in statuses for r in m["reports"])
    assert peer.reader.dropped == 0


def test_with_nobody_acknowledging_it_turns_fire_and_forget_and_says_so(tmp_path):
    master, slave, path = pty_pair()
    peer = Peer(master, ack=False)
    try:
        proc = start_agent(serial_profile(tmp_path, "serial://%s?ackwait=1s" % path),
                           str(tmp_path / "emit.py"), "30", "0.1")
        err = finish(proc)
        assert proc.returncode == 0, err
        got = peer.messages()
    finally:
        peer.close()
        os.close(master)
        os.close(slave)
    status = [m for m in got if m["type"] == "status"]
    assert status[0]["reports"] == ["serial://%s?ackwait=1s (waiting for acks)" % path]
    assert any(r.endswith("(fire-and-forget)") for m in status for r in m["reports"])
    assert status[-1]["state"] == "offline"
    # fire-and-forget writes once: nothing is resent to a terminal
    assert len(got) == len(unique(got))
    assert [m["data"]["i"] for m in got if m.get("event") == "app"] == list(range(30))


def test_noisy_line_never_yields_a_corrupted_frame_and_resyncs_at_the_next_line():
    master, slave, _ = pty_pair()
    rng = random.Random(7)
    frames = [framing.frame(messages.encode({"v": 1, "type": "event", "device": "d", "boot": "b",
                                             "seq": i, "ts": 1.0, "event": "x" * rng.randrange(60)}))
              for i in range(3000)]
    touched, newline_hit = [], []
    noisy = bytearray()
    for line in frames:
        damaged = bytearray(line)
        hits = [i for i in range(len(line)) if rng.random() < 0.01]
        for i in hits:
            damaged[i] = (damaged[i] + rng.randrange(1, 256)) % 256
        touched.append(bool(hits))
        newline_hit.append(len(line) - 1 in hits)
        noisy += damaged
    os.set_blocking(slave, False)
    reader = framing.LineReader()
    accepted = []

    def write():
        for start in range(0, len(noisy), 4096):
            os.write(master, noisy[start:start + 4096])
    writer = threading.Thread(target=write)
    writer.start()
    while True:
        try:
            data = os.read(slave, 65536)
        except BlockingIOError:
            if not writer.is_alive():
                break
            time.sleep(0.005)
            continue
        accepted += reader.feed(data)
    writer.join()
    os.close(master)
    os.close(slave)
    intact = {frames[i][:-10] for i in range(len(frames)) if not touched[i]}
    assert set(accepted) <= intact, "a corrupted frame was accepted"
    # resync: every intact frame whose previous line ended cleanly comes through
    resynced = {frames[i][:-10] for i in range(len(frames))
                if not touched[i] and (i == 0 or not newline_hit[i - 1])}
    assert resynced <= set(accepted)
    assert sum(touched) > 1000 and reader.dropped > 500     # the noise was real


def test_a_megabyte_line_is_dropped_with_bounded_memory_and_the_next_line_is_read():
    reader = framing.LineReader(max_line=64 * 1024)
    good = framing.frame(b'{"type":"ack","seq":[1]}')
    tracemalloc.start()
    got = []
    chunk = b"x" * 4096
    for _ in range(256):                      # 1 MB without a newline, as a port delivers it
        got += reader.feed(chunk)
    got += reader.feed(b"\n" + good)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert got == [good[:-10]]
    assert reader.bad["too_long"] == 1
    assert peak < 200 * 1024, "reader kept %d bytes of an overlong line" % peak


def _command(cmd: str, args=None, key: bytes = KEY, **override) -> dict:
    command = {"id": override.pop("id", "c-%s-%f" % (cmd, time.time())), "cmd": cmd,
               "args": args or {}, "ts": override.pop("ts", time.time())}
    command.update(override)
    return sign(command, key)


def _ask(peer: Peer, command: dict) -> dict:
    peer.command(command)
    return peer.wait_for(lambda m: m["type"] == "resp" and m["id"] == command["id"],
                         what="resp to %s" % command["id"])


def test_signed_commands_over_serial_run_and_bad_ones_are_refused_after_a_megabyte_of_junk(tmp_path):
    master, slave, path = pty_pair()
    peer = Peer(master)
    proc = start_agent(serial_profile(tmp_path, "serial://%s" % path))
    try:
        peer.wait_for(lambda m: m["type"] == "status", what="status online")
        peer.send(b"x" * (1024 * 1024) + b"\n")     # a megabyte of garbage, then good lines
        resp = _ask(peer, _command("collect", {"generation": 2}))
        assert resp["ok"] is True and resp["result"]["generation"] == 2
        peer.wait_for(lambda m: m.get("event") == "collect" and m.get("rule") == "command",
                      what="the collect event")
        refused = {
            "bad_signature": _command("collect", key=b"x" * 32),
            "stale": _command("collect", ts=time.time() - 3600),
            "unknown_command": _command("shell", {"run": "rm -rf /"}),
            "wrong_device": _command("collect", device="dev-other"),
        }
        for reason, command in refused.items():
            resp = _ask(peer, command)
            assert resp["ok"] is False and resp["error"].startswith(reason), (reason, resp)
        unsigned = {"id": "u-1", "cmd": "collect", "args": {}, "ts": time.time()}
        assert _ask(peer, unsigned)["error"].startswith("unsigned")
        assert proc.poll() is None
    finally:
        err = stop(proc)
        peer.close()
        os.close(master)
        os.close(slave)
    assert proc.returncode == 0, err
    dropped = [m for m in peer.messages() if m.get("event") == "error" and "lines dropped" in m["error"]]
    assert dropped and "too_long 1" in dropped[0]["error"]


def test_pulling_the_cable_mid_stream_loses_nothing_and_never_blocks_the_agent(tmp_path):
    cable = Socat(str(tmp_path)).start()
    fd = open_raw(cable.b)
    peer = Peer(fd)
    proc = start_agent(serial_profile(tmp_path, "serial://%s?resend=1s" % cable.a),
                       str(tmp_path / "emit.py"), "100", "0.05")
    try:
        peer.wait_for(lambda m: m.get("data", {}).get("i") == 20, what="tick 20")
        peer.close()
        os.close(fd)
        cable.stop()                       # both ptys vanish, as with a USB adapter pulled
        time.sleep(1.5)
        cable.start()
        fd = open_raw(cable.b)
        peer2 = Peer(fd)
        err = finish(proc, timeout=60)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
        cable.stop()
    peer2.close()
    os.close(fd)
    mine = assert_complete(peer.messages() + peer2.messages())
    assert [m["data"]["i"] for m in sorted(mine, key=lambda m: m["seq"]) if m.get("event") == "app"] \
        == list(range(100))
    kinds = [m["event"] for m in mine if m["type"] == "event"]
    assert "error" in kinds                 # the loss of the port was reported, once it came back


def test_a_missing_port_does_not_stop_the_application(tmp_path):
    profile = serial_profile(tmp_path, "serial:///dev/gc-agent-no-such-port")
    log = tmp_path / "agent.log"
    env = {"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "agent", "run", "--profile", profile, "--log", str(log),
                           "--", str(tmp_path / "emit.py"), "5", "0.1"], env=env, capture_output=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "cannot open /dev/gc-agent-no-such-port" in log.read_text()


class Pump(object):
    """Polls a transport every 20 ms, as the agent thread does, and keeps its events."""

    def __init__(self, transport) -> None:
        self.transport = transport
        self.events = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.events += self.transport.poll()

    def acked(self):
        return [e.value.seq for e in list(self.events) if e.kind == "ack"]

    def until(self, done, what: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, "no %s; events: %s" % (what, self.events)
            time.sleep(0.02)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)


def test_socket_url_acknowledged_delivery_resends_after_the_far_end_reconnects():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    transport = open_transport("socket://127.0.0.1:%d?ack=on&resend=300ms" % port)
    transport.open()
    pump = Pump(transport)
    items = [outgoing({"v": 1, "type": "event", "device": "d", "boot": "b1", "seq": i, "ts": 1.0,
                       "event": "x"}) for i in range(1, 11)]
    try:
        conn, _ = server.accept()
        pump.until(lambda: transport.ready(), "link up")
        for item in items[:5]:
            transport.send(item)
        seen = _read_frames(conn, framing.LineReader(), 5)
        conn.sendall(framing.ack([m["seq"] for m in seen[:3]], "b1"))   # 4 and 5 go unacknowledged
        pump.until(lambda: len(pump.acked()) == 3, "three acks")
        conn.close()                                   # the far end goes away
        pump.until(lambda: not transport.ready(), "link down")
        for item in items[5:]:
            transport.send(item)
        conn, _ = server.accept()                      # and comes back: 4..10 are resent
        seen = _read_frames(conn, framing.LineReader(), 7)
        conn.sendall(framing.ack([m["seq"] for m in seen], "b1"))
        pump.until(lambda: len(pump.acked()) == 10, "ten acks")
        conn.close()
    finally:
        pump.close()
        transport.close()
        server.close()
    assert sorted(pump.acked()) == list(range(1, 11))
    assert [m["seq"] for m in seen] == list(range(4, 11))
    assert transport.note() == "acknowledged"


def _read_frames(conn, reader, count: int):
    conn.settimeout(10)
    got = {}
    while len(got) < count:
        for body in reader.feed(conn.recv(65536)):
            message = json.loads(body)
            got[message["seq"]] = message
    return [got[k] for k in sorted(got)]


def _drain_until(transport, done, timeout: float = 15.0):
    events = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events += transport.poll()
        if done(events):
            return events
        time.sleep(0.02)
    raise AssertionError("transport events so far: %s" % [(e.kind, e.value) for e in events])


def test_loop_url_writes_frames_and_does_not_mistake_its_own_echo_for_commands():
    transport = open_transport("loop://?ack=off")
    transport.open()
    try:
        _drain_until(transport, lambda ev: any(e.kind == "link" for e in ev))
        for i in range(1, 21):
            transport.send(outgoing(
                {"v": 1, "type": "event", "device": "d", "boot": "b", "seq": i, "ts": 1.0, "event": "x"}))
        events = _drain_until(transport, lambda ev: len([e for e in ev if e.kind == "ack"]) == 20)
        time.sleep(0.3)
        events += transport.poll()
    finally:
        transport.close()
    assert not [e for e in events if e.kind == "command"]
    assert transport.reader.good == 20 and transport.note() == "fire-and-forget"


@pytest.mark.parametrize("url, says", [
    ("serial://ttyS1", "names a device path"),
    ("serial:///dev/ttyS1?baud=fast", "baud must be"),
    ("serial:///dev/ttyS1?ack=maybe", "ack must be auto, on or off"),
    ("/dev/ttyS1?max=10", "line cap"),
    ("socket://h:1?resend=0s", "resend must be a positive duration"),
])
def test_bad_serial_urls_say_what_to_fix(url, says):
    with pytest.raises(ValueError, match=says):
        parse_serial_url(url)


def test_good_serial_urls_keep_pyserial_options():
    assert parse_serial_url("/dev/ttyUSB0?baud=9600").port == "/dev/ttyUSB0"
    settings = parse_serial_url("socket://10.0.0.1:7000?logging=debug&ack=off")
    assert (settings.port, settings.ack, settings.baud) == ("socket://10.0.0.1:7000?logging=debug",
                                                           "off", 115200)


def test_decode_turns_a_capture_into_json_lines_and_names_bad_lines(tmp_path):
    def message(seq):
        return {"v": 1, "type": "event", "device": "d", "boot": "b", "seq": seq, "ts": 1.0,
                "event": "collect"}
    good = framing.frame(messages.encode(message(1)))
    capture = tmp_path / "capture.txt"
    capture.write_bytes(good + good[:20] + b"#" + good[21:] + b"not a frame\n"
                        + messages.encode(message(2)) + b"\n" + b"y" * 200000 + b"\n"
                        + framing.frame(messages.encode(message(3))).replace(b"\n", b"\r\n")
                        + good)   # sent again (a lost acknowledgement): printed once
    proc = subprocess.run([sys.executable, "-m", "agent", "decode", str(capture)], cwd=REPO,
                          capture_output=True, timeout=60)
    lines = proc.stdout.decode().splitlines()
    assert [json.loads(line) for line in lines] == [message(1), message(2), message(3)]
    err = proc.stderr.decode()
    assert "line 2: check failed" in err and "line 3: not a frame" in err and "line 5: longer than" in err
    assert "3 messages, 3 refused (crc 1, malformed 1, too_long 1), 1 duplicate dropped" in err
    assert proc.returncode == 1
    zipped = subprocess.run([sys.executable, "-m", "agent", "decode"], cwd=REPO, capture_output=True,
                            input=messages.encode(message(1), compress=True)
                            + messages.encode(message(2), compress=True), timeout=60)
    assert zipped.returncode == 0 and len(zipped.stdout.decode().splitlines()) == 2


def test_decode_of_a_live_stream_ends_on_ctrl_c_with_its_summary(tmp_path):
    import signal
    import time
    proc = subprocess.Popen([sys.executable, "-m", "agent", "decode"], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    body = {"v": 1, "type": "event", "device": "d", "boot": "b", "seq": 1, "ts": 1.0, "event": "x"}
    proc.stdin.write(framing.frame(messages.encode(body)))
    proc.stdin.flush()
    assert json.loads(proc.stdout.readline()) == body   # the port stays open: still reading
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=20)[1]
    assert proc.returncode == 130
    assert "Traceback" not in err.decode()
    assert "decode: 1 message, 0 refused; interrupted" in err.decode()


def test_the_documented_example_frame_decodes():
    with open(os.path.join(REPO, "docs", "transports.md"), encoding="utf-8") as handle:
        example = next(line for line in handle if line.startswith('{"v":1') and "*" in line)
    assert framing.unframe(example.encode()) is not None
    assert messages.validate(json.loads(framing.unframe(example.encode()))) == []


def test_the_console_records_a_real_agent_over_serial_once_each_through_a_cable_pull(tmp_path):
    cable = Socat(str(tmp_path)).start()
    db = tmp_path / "console.db"
    env = dict(os.environ, PYTHONPATH=REPO)
    console = subprocess.Popen([sys.executable, "-m", "tools.console", "ingest", "--serial", cable.b,
                                "--db", str(db)], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    agent = start_agent(serial_profile(tmp_path, "serial://%s?resend=1s" % cable.a),
                        str(tmp_path / "emit.py"), "80", "0.05")
    try:
        time.sleep(2.0)
        cable.stop()                            # both ends vanish mid-stream ...
        time.sleep(1.5)
        cable.start()                           # ... and the console and agent both reopen
        err = finish(agent, timeout=60)
        assert agent.returncode == 0, err
        time.sleep(2.0)                         # the last acks and batched writes
    finally:
        if agent.poll() is None:
            agent.kill()
        console.send_signal(signal.SIGTERM)
        _, console_err = console.communicate(timeout=30)
        cable.stop()
    import sqlite3
    with sqlite3.connect(str(db)) as conn:
        seqs = [s for (s,) in conn.execute("SELECT seq FROM messages WHERE device = 'dev-s' ORDER BY seq")]
        ticks = conn.execute("SELECT COUNT(*) FROM events WHERE device = 'dev-s' AND event = 'app'")
        ticks = ticks.fetchone()
        state = conn.execute("SELECT state FROM devices WHERE device = 'dev-s'").fetchone()
    assert seqs == list(range(1, seqs[-1] + 1)), console_err.decode()[-2000:]
    assert ticks == (80,), console_err.decode()[-2000:]
    assert state == ("offline",)
