"""`gc-console send --all/--model/--glob` to real agents through mosquitto, and `keygen`."""

import os
import stat
import time

from tests.integration.test_console import KEY, profile, run, start_agent, start_ingest, stop
from tests.integration.test_web_console import stop_agents


def test_send_to_a_set_of_devices_summarises_the_answers(tmp_path, broker):
    db = str(tmp_path / "console.db")
    ingest = start_ingest(broker.url, db, "--default-interval", "2s")
    agents = [start_agent(profile(tmp_path, broker.port, d, m))
              for d, m in (("fan-ix20-a", "IX20"), ("fan-ix20-b", "IX20"), ("fan-tx64-c", "TX64"))]
    keys = tmp_path / "keys"
    keys.mkdir()
    for device in ("fan-ix20-a", "fan-ix20-b"):
        (keys / (device + ".key")).write_bytes(KEY)
    (keys / "fan-tx64-c.key").write_bytes(b"a-wrong-key-for-this-device-0123")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            listed = run("devices", "--db", db, "--json").stdout
            if all(d in listed for d in ("fan-ix20-a", "fan-ix20-b", "fan-tx64-c")):
                break
            time.sleep(0.3)
        sent = run("send", "--model", "IX20", "collect", "generation=1", "--broker", broker.url,
                   "--keys", str(keys), "--db", db, "--timeout", "15s")
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "2 devices: 2 ok, 0 refused, 0 no answer" in sent.stdout, sent.stdout
        everyone = run("send", "--all", "status", "--broker", broker.url, "--keys", str(keys),
                       "--db", db, "--timeout", "10s")
        print(everyone.stdout)
        assert everyone.returncode == 1   # one device refuses: the wrong key
        assert "fan-tx64-c" in everyone.stdout and "refused" in everyone.stdout
        assert "3 devices: 2 ok, 1 refused, 0 no answer" in everyone.stdout, everyone.stdout
        glob = run("send", "--glob", "fan-*-b", "status", "--broker", broker.url, "--key",
                   str(keys / "fan-ix20-b.key"), "--db", db)
        assert "1 devices: 1 ok" in glob.stdout, glob.stdout
    finally:
        stop_agents(agents)
        stop(ingest)


def test_keygen_writes_a_private_key_the_agent_reads_and_never_overwrites(tmp_path):
    from agent.commands import load_key
    path = tmp_path / "ix20-0042.key"
    made = run("keygen", "ix20-0042", "--out", str(path))
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(load_key(str(path))) == 32
    assert "key_file = /etc/config/gcagent/ix20-0042.key" in made.stdout
    again = run("keygen", "ix20-0042", "--out", str(path))
    assert again.returncode == 2 and "not overwritten" in again.stderr


def test_send_all_skips_devices_without_a_key_file_and_names_them(tmp_path, broker):
    db = str(tmp_path / "console.db")
    ingest = start_ingest(broker.url, db, "--default-interval", "2s")
    agents = [start_agent(profile(tmp_path, broker.port, d, "IX20"))
              for d in ("keyed-a", "unkeyed-b")]
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "keyed-a.key").write_bytes(KEY)   # none for unkeyed-b
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            listed = run("devices", "--db", db, "--json").stdout
            if all(d in listed for d in ("keyed-a", "unkeyed-b")):
                break
            time.sleep(0.3)
        sent = run("send", "--all", "status", "--broker", broker.url, "--keys", str(keys),
                   "--db", db, "--timeout", "10s")
    finally:
        stop_agents(agents)
        stop(ingest)
    assert sent.returncode == 1, sent.stdout + sent.stderr   # one was skipped
    assert "keyed-a" in sent.stdout and "1 devices: 1 ok, 0 refused, 0 no answer" in sent.stdout, \
        sent.stdout
    assert "no key: 1 devices (unkeyed-b)" in sent.stdout, sent.stdout


def test_the_no_key_line_names_ten_devices_and_counts_the_rest():
    from tools.console.fanout import no_key_line
    line = no_key_line(["d%02d" % i for i in range(13)], "/keys")
    assert line.startswith("no key: 13 devices (d00, d01,")
    assert "d09, and 3 more)" in line and "d10" not in line and "/keys" in line
