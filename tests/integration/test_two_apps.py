"""Two applications on one gateway, one profile (`[agent] app = ${script}`, as the stock
profiles say), one broker: each reports as DEVICE@APP, so the broker never closes one
agent's connection for the other's (same client id), neither status flaps, and the
console records two entries under the one device."""

import json
import os
import signal
import subprocess
import sys
import textwrap

from tests.conftest import REPO, agent_cmd, run_process
from tests.integration.broker import Subscriber


def test_two_apps_with_one_profile_on_one_broker(tmp_path, broker, env_with_repo):
    profile = tmp_path / "site.ini"
    profile.write_text(textwrap.dedent("""\
        [device]
        id = gw-1
        memory_limit = 64M
        [agent]
        tick = 200ms
        app = ${script}
        [rule:periodic]
        type = periodic
        every = 1s
        generation = 0
        [report]
        urls = mqtt://127.0.0.1:%d
        interval = 200ms
        batch = 2
        keepalive = 10s
        """ % broker.port))
    for name in ("modbus_bridge", "logger"):
        (tmp_path / (name + ".py")).write_text("import time\ntime.sleep(5)\nprint('%s done')\n" % name)
    db = str(tmp_path / "fleet.db")
    ingest = subprocess.Popen([sys.executable, "-m", "tools.console", "ingest", "--broker",
                               broker.url, "--db", db], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    watcher = Subscriber(broker.port)
    try:
        apps = [subprocess.Popen(agent_cmd("run", "--profile", str(profile), "--",
                                           str(tmp_path / (name + ".py"))), env=env_with_repo,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for name in ("modbus_bridge", "logger")]
        outputs = [proc.communicate(timeout=60) for proc in apps]
        assert [proc.returncode for proc in apps] == [0, 0], outputs
        for name in ("modbus_bridge", "logger"):
            watcher.wait_for(lambda s, n=name: s.topic == "gcagent/gw-1@%s/status" % n
                             and s.message["state"] == "offline", what="%s offline" % name)
    finally:
        ingest.send_signal(signal.SIGINT)
        ingest.communicate(timeout=30)
        watcher.close()

    with open(os.path.join(broker.folder, "mosquitto.log")) as handle:
        log = handle.read()
    assert "already connected" not in log, "the broker closed a connection for a duplicate client id"
    statuses = [(s.topic, s.message["state"]) for s in watcher.seen if s.topic.endswith("/status")]
    for name in ("modbus_bridge", "logger"):
        topic = "gcagent/gw-1@%s/status" % name
        assert [state for t, state in statuses if t == topic] == ["online", "offline"]   # no flapping
        status = next(s.message for s in watcher.seen if s.topic == topic)
        assert (status["device"], status["host"], status["app"]) == ("gw-1@" + name, "gw-1", name)
    devices = run_process([sys.executable, "-m", "tools.console", "devices", "--db", db, "--json"])
    rows = [json.loads(line) for line in devices.stdout.splitlines() if line.strip()]
    assert sorted(r["device"] for r in rows) == ["gw-1@logger", "gw-1@modbus_bridge"], devices
    assert sorted((r["host"], r["app"]) for r in rows) == [("gw-1", "logger"),
                                                           ("gw-1", "modbus_bridge")]
    table = run_process([sys.executable, "-m", "tools.console", "devices", "--db", db],
                        env=dict(os.environ, COLUMNS="100"))
    lines = table.stdout.splitlines()
    device_rows = [line for line in lines if "gw-1" in line or line.lstrip().startswith("@")]
    # one device, its two applications beneath it (docs/console.md)
    assert [line.split()[0] for line in device_rows] == ["gw-1", "@logger", "@modbus_bridge"] \
        or [line.split()[0] for line in device_rows] == ["gw-1", "@modbus_bridge", "@logger"], \
        table.stdout
    assert all(line.startswith("  @") for line in device_rows[1:]), table.stdout
