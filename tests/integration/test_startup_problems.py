"""No silent failure: what keeps the agent or a report from working is said once on
stderr at start, with what to do, and the application runs on regardless."""

import socket
import subprocess

import pytest

from tests.conftest import EMULATOR_PROFILE, REPO, agent_cmd, read_jsonl, run_process
from tests.integration.test_python36 import find_python36

APP = "import time\ntime.sleep(1.5)\nprint('app ran')\n"


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("url, said", [
    ("mqtt://127.0.0.1:%d" % closed_port(), "(connection refused): is the broker running"),
    ("mqtt://no-such-broker.invalid:1883", "cannot resolve the host name 'no-such-broker.invalid'"),
])
def test_an_unreachable_or_misspelled_broker_is_said_once(tmp_path, env_with_repo, url, said):
    app = tmp_path / "app.py"
    app.write_text(APP)
    out = tmp_path / "m.jsonl"
    done = run_process(agent_cmd("run", "--profile", EMULATOR_PROFILE, "--report", "file://%s" % out,
                                 "--report", url, "--", str(app)), env=env_with_repo)
    assert (done.returncode, done.stdout) == (0, "app ran\n"), done.stderr
    lines = [line for line in done.stderr.splitlines() if said in line]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("gc-agent: report %s: " % url) and "keeps retrying" in lines[0]
    statuses = [m for m in read_jsonl(out) if m["type"] == "status"]
    assert statuses[-1]["state"] == "offline" and any(said in p for p in statuses[-1]["problems"])
    # found after the first "online" went out: a second "online" says it at once
    assert any(m["state"] == "online" and any(said in p for p in m.get("problems", ()))
               for m in statuses), statuses


def test_a_missing_paho_mqtt_is_said_with_what_to_do(tmp_path):
    python = find_python36()   # pyenv's 3.6 has no paho-mqtt, like a bare DAL image
    assert subprocess.run([python, "-c", "import paho"], capture_output=True).returncode != 0
    app = tmp_path / "app.py"
    app.write_text(APP)
    out = tmp_path / "m.jsonl"
    done = run_process([python, "-m", "agent", "run", "--profile", EMULATOR_PROFILE, "--report",
                        "file://%s" % out, "--report", "mqtt://127.0.0.1:1883", "--", str(app)],
                       env={"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin"})
    assert (done.returncode, done.stdout) == (0, "app ran\n"), done.stderr
    assert done.stderr.count("paho-mqtt is not installed (pip install paho-mqtt") == 1, done.stderr
    assert any("paho-mqtt is not installed" in p for p in read_jsonl(out)[0]["problems"])


def test_a_bundle_for_a_newer_python_says_which_to_build(tmp_path):
    from tests.integration.test_bundle import build
    pyz = build(tmp_path, closed_port(), "dev-new", "3.10")
    app = tmp_path / "app.py"
    app.write_text(APP)
    done = subprocess.run([find_python36(), "-I", pyz, "run", "--", str(app)], cwd=str(tmp_path),
                          env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "app ran\n"), done.stderr
    assert done.stderr.count("this bundle was built for Python 3.10 and this is Python 3.6") == 1
    assert "gc-bundle --python 3.6" in done.stderr


def test_a_reachable_broker_says_nothing(tmp_path, env_with_repo, broker):
    app = tmp_path / "app.py"
    app.write_text(APP)
    done = run_process(agent_cmd("run", "--profile", EMULATOR_PROFILE, "--report",
                                 "mqtt://127.0.0.1:%d" % broker.port, "--", str(app)),
                       env=env_with_repo)
    assert (done.returncode, done.stdout, done.stderr) == (0, "app ran\n", "")
