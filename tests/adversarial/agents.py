"""The agent as an attacker meets it: a real subprocess, a profile of its own, signed commands.

Every helper here is bounded (counts, timeouts) and uses loopback only.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from typing import Dict, List, Optional

from agent.commands import sign
from tests.conftest import REPO, _vm_hwm_kb
from tests.integration.broker import PAHO

KEY = b"a" * 32
DEVICE = "adv-1"


def write_profile(tmp_path, url: str, device: str = DEVICE, tick: str = "200ms",
                  extra: str = "", name: str = "agent.ini") -> str:
    """A profile reporting to `url`, with commands, a flash journal and quick spills."""
    key = tmp_path / "key"
    key.write_bytes(KEY)
    os.chmod(str(key), 0o600)
    path = tmp_path / name
    path.write_text(textwrap.dedent("""\
        [device]
        id = {device}
        memory_limit = 64M
        [agent]
        tick = {tick}
        [rule:periodic]
        type = periodic
        every = 1s
        generation = 0
        [report]
        urls = {url}
        interval = 200ms
        batch = 2
        keepalive = 5s
        [buffer]
        flash = {tmp}/flash-{device}
        spill_after = 1s
        sync_every = 200ms
        [commands]
        key_file = {tmp}/key
        settable = periodic.every, periodic.generation
        """).format(device=device, url=url, tick=tick, tmp=tmp_path) + extra)
    return str(path)


def agent_env() -> Dict[str, str]:
    assert os.path.isdir(PAHO["2"]), "paho-mqtt 2 is missing: run make setup"
    return {"PYTHONPATH": "%s:%s" % (REPO, PAHO["2"]), "PATH": "/usr/bin:/bin"}


def start_agent(profile: str, *script: str) -> subprocess.Popen:
    """`python -m agent run --profile PROFILE [-- SCRIPT...]` in a subprocess of its own."""
    argv = [sys.executable, "-m", "agent", "run", "--profile", profile]
    if script:
        argv += ["--", *script]
    return subprocess.Popen(argv, env=agent_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=REPO)


def stop_agent(proc: subprocess.Popen, timeout: float = 30) -> str:
    """SIGTERM (if still running), wait, and return its stderr (its stdout goes to `proc.out`)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    proc.out = out
    return err.decode("utf-8", "replace")


def finish(proc: subprocess.Popen, timeout: float = 30) -> str:
    """Wait for an agent running a script to end with it (SIGTERM only if it does not)."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    return stop_agent(proc)


def kill_agent(proc: subprocess.Popen) -> None:
    """kill -9, as a watchdog or a power cut would."""
    proc.kill()
    proc.communicate(timeout=10)


def command(cmd: str, args=None, key: bytes = KEY, **override) -> dict:
    """A signed command object (sign with another key to forge one)."""
    fields = {"id": override.pop("id", "c-%s-%.6f" % (cmd, time.time())), "cmd": cmd,
              "args": args or {}, "ts": override.pop("ts", time.time())}
    fields.update(override)
    return sign(fields, key)


def ask(subscriber, payload: dict, device: str = DEVICE, timeout: float = 20.0) -> dict:
    """Publish one command and wait for its resp."""
    asked = time.monotonic()
    subscriber.publish("gcagent/%s/cmd" % device, json.dumps(payload).encode())
    return subscriber.wait_for(lambda s: s.topic.endswith("/resp") and s.message["id"] == payload["id"]
                               and s.at > asked, timeout=timeout,
                               what="the resp to %s" % payload["id"]).message


def flood(port: int, topic: str, lines: List[bytes], qos: int = 0) -> None:
    """Publish each line as one message, as fast as mosquitto_pub -l can (a C client)."""
    binary = shutil.which("mosquitto_pub")
    assert binary, "mosquitto_pub is not installed: make broker (or apt-get install mosquitto-clients)"
    proc = subprocess.run([binary, "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-q", str(qos),
                           "-l"], input=b"\n".join(lines) + b"\n", stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()


def recorder(port: int, *devices: str):
    """A Subscriber to what `devices` publish, without their `cmd`: a flood on `cmd`
    must not fill the recorder's own queue at the broker (which then drops)."""
    from tests.integration.broker import Subscriber
    topics = [("gcagent/%s/%s" % (d, kind), 1) for d in devices
              for kind in ("status", "telemetry", "event", "resp")]
    sub = Subscriber(port, topics)
    until_subscribed(sub, probe="gcagent/%s/event" % devices[0])
    return sub


def until_subscribed(subscriber, timeout: float = 20.0, probe: str = "") -> None:
    """Wait until `subscriber` is (re)subscribed: it sees a probe of its own (boot "probe")."""
    probe = probe or "gcagent/probe-%.6f/ping" % time.time()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subscriber.client.is_connected():
            subscriber.client.publish(probe, b'{"boot":"probe","seq":0}', qos=1)
            try:
                subscriber.wait_for(lambda s: s.topic == probe and s.message.get("boot") == "probe",
                                    timeout=1.0, what="the probe")
                return
            except AssertionError:
                pass
        time.sleep(0.1)
    raise AssertionError("the recorder did not subscribe again within %ss" % timeout)


def peak_rss_kb(pid: int) -> int:
    """The process's peak RSS (VmHWM) as the kernel counts it, 0 once it is gone."""
    return _vm_hwm_kb(pid)


def seq_gaps(got: List[dict], boot: Optional[str] = None) -> List[int]:
    """Seqs missing between 1 and the highest seen (per boot: `boot`, or the only one)."""
    seqs = {m["seq"] for m in got if "will" not in m and (boot is None or m["boot"] == boot)}
    return sorted(set(range(1, max(seqs) + 1)) - seqs) if seqs else []
