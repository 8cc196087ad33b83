"""gc-console as a user meets it on a shell: exit statuses, pipes, a broker that goes away."""

import os
import signal
import subprocess
import sys
import time

from agent import messages
from tests.conftest import REPO
from tests.console.fleetdata import Clock, Device
from tests.integration.test_console import console, env


def a_long_history(db: str, rows: int = 3000) -> None:
    from tools.console.ingest import Ingestor
    from tools.console.store import Store
    clock = Clock()
    store = Store(db)
    ingest = Ingestor(store, clock=clock)
    device = Device("gw-1", clock)
    ingest.accept(messages.encode(device.status()))
    for i in range(rows):
        ingest.accept(messages.encode(device.telemetry(30000 + i)))
        clock.advance(1)
    ingest.flush()
    store.close()


def test_export_needs_no_csv_flag_and_still_takes_it(tmp_path):
    db = str(tmp_path / "c.db")
    a_long_history(db, rows=5)
    plain, flagged = (subprocess.run(console("export", "gw-1", "--db", db, *extra), env=env(),
                                     cwd=REPO, capture_output=True, text=True, timeout=60)
                      for extra in ((), ("--csv",)))
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines()[0].startswith("time,ts,boot,")
    assert len(plain.stdout.splitlines()) == 6
    assert flagged.returncode == 0 and flagged.stdout == plain.stdout


def test_export_into_head_ends_quietly_as_unix_tools_do(tmp_path):
    db = str(tmp_path / "c.db")
    a_long_history(db)   # far more than a pipe holds: the export is still writing when head leaves
    shell = "%s | head -n 2; echo \"status=${PIPESTATUS[0]}\" >&2" % " ".join(
        console("export", "gw-1", "--db", db))
    done = subprocess.run(["bash", "-c", shell], env=env(), cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert len(done.stdout.splitlines()) == 2
    assert done.stderr.strip() == "status=%d" % (128 + signal.SIGPIPE), done.stderr


def test_send_interrupted_exits_130(tmp_path, broker):
    key = tmp_path / "key"
    key.write_bytes(b"k" * 32)
    proc = subprocess.Popen(console("send", "nobody", "status", "--broker", broker.url, "--key",
                                    str(key), "--db", str(tmp_path / "c.db"), "--timeout", "60s"),
                            env=env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "connected" not in _log(broker):
        time.sleep(0.1)
    time.sleep(0.5)   # subscribed and waiting for an answer that will not come
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err, err


def _log(broker) -> str:
    try:
        with open(broker.log) as handle:
            return handle.read()
    except OSError:
        return ""


def test_ingest_says_when_its_broker_goes_away_and_comes_back(tmp_path, broker):
    proc = subprocess.Popen(console("ingest", "--broker", broker.url, "--db",
                                    str(tmp_path / "c.db")),
                            env=env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert "recording from" in proc.stderr.readline()
        broker.stop()
        lost = proc.stderr.readline()
        assert "lost the broker %s" % broker.url in lost, lost
        broker.start()
        back = proc.stderr.readline()   # paho retries within its 10 s ceiling
        assert "broker %s is back" % broker.url in back and "recording again" in back, back
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_an_interrupted_send_is_not_mistaken_for_success_from_a_script(tmp_path, broker):
    """`gc-console send ... && next-step`: a SIGTERM'd send must not let the script go on."""
    key = tmp_path / "key"
    key.write_bytes(b"k" * 32)
    proc = subprocess.Popen(console("send", "nobody", "status", "--broker", broker.url, "--key",
                                    str(key), "--db", str(tmp_path / "c.db"), "--timeout", "60s"),
                            env=env(), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(2.0)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(30) == 128 + signal.SIGTERM


def test_watch_with_its_embedded_broker_stops_on_ctrl_c_without_amqtt_noise(tmp_path):
    from tests.conftest import WORKLOADS
    from tests.integration.broker import Subscriber
    from tests.integration.test_console import profile
    from tools.mosquitto import free_port
    port = free_port()
    watch = subprocess.Popen(console("watch", "--listen", str(port), "--db", str(tmp_path / "c.db")),
                             env=env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    agent = None
    try:
        assert "embedded broker listening" in watch.stdout.readline()
        agent = subprocess.Popen([sys.executable, "-m", "agent", "run", "--profile",
                                  profile(tmp_path, port, "gw-noise", "IX20"), "--",
                                  os.path.join(WORKLOADS, "cycles.py"), "--seconds", "60",
                                  "--quiet"], env=env(), cwd=REPO, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        seen = Subscriber(port)
        try:
            seen.wait_for(lambda s: s.topic.endswith("/status"), what="the agent's status")
        finally:
            seen.close()
        watch.send_signal(signal.SIGINT)   # the broker closes the agent's connection: its Will fires
        _, err = watch.communicate(timeout=30)
    finally:
        if agent is not None:
            agent.kill()
            agent.wait()
        if watch.poll() is None:
            watch.kill()
    assert watch.returncode == 0
    assert "not broadcasted" not in err and "Traceback" not in err, err
