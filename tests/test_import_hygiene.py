"""On the device path the agent loads nothing the application does not need for it.

Every standard module the agent imports is memory taken from the application
(docs/footprint.md). A typical gateway application (logging, json, threading,
socket and re already loaded) starts the agent with a file report, and then
runs under `python -m agent run`, on Python 3.6 and 3.11: neither may bring in
typing, argparse, configparser, urllib.parse or the other heavy modules below,
and the agent must really have run (its messages are in the file).
"""

import json
import subprocess
import sys

import pytest

from tests.conftest import EMULATOR_PROFILE, REPO, read_jsonl
from tests.integration.test_python36 import find_python36

# What a device never needs for a file or serial report and the shipped rules.
HEAVY = {"typing", "argparse", "configparser", "urllib.parse", "ipaddress", "gettext", "locale",
         "textwrap", "hashlib", "hmac", "zipfile", "shutil", "random", "sysconfig", "difflib",
         "tracemalloc", "inspect", "ast", "dis", "tokenize", "email", "http", "ssl", "uuid",
         "importlib.util", "importlib.abc", "contextlib", "dataclasses", "enum", "string",
         "zlib", "binascii", "bisect", "serial"}

TYPICAL_APP = """
import sys, time
import logging, json, threading, socket, re
before = set(sys.modules)
if sys.argv[1] == "start":
    import agent
    assert agent.start(sys.argv[2], report=sys.argv[3])
    time.sleep(0.5)
    agent.stop()
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def pythons():
    return [("3.6", find_python36()), ("3.11", sys.executable)]


def new_modules(argv, out=None):
    done = subprocess.run(argv, env={"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin"}, capture_output=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    if out is not None:
        assert any(m["type"] == "status" for m in read_jsonl(out)), "the agent did not report"
    return set(json.loads(done.stdout.decode().splitlines()[-1]))


@pytest.mark.parametrize("version", ["3.6", "3.11"])
def test_agent_start_with_a_file_report_loads_nothing_heavy(tmp_path, version):
    python = dict(pythons())[version]
    app = tmp_path / "app.py"
    app.write_text(TYPICAL_APP)
    out = tmp_path / "m.jsonl"
    loaded = new_modules([python, "-S", str(app), "start", EMULATOR_PROFILE, "file://%s" % out], out)
    assert "agent.runtime" in loaded
    assert loaded & HEAVY == set(), version


@pytest.mark.parametrize("version", ["3.6", "3.11"])
def test_python_m_agent_run_loads_nothing_heavy(tmp_path, version):
    python = dict(pythons())[version]
    app = tmp_path / "app.py"
    app.write_text(TYPICAL_APP.replace("before = set(sys.modules)", "before = set()"))
    out = tmp_path / "m.jsonl"
    # `python -m` itself loads runpy (and with it importlib.util) before any agent code
    alone = new_modules([python, "-S", str(app), "run"]) | new_modules(
        [python, "-S", "-c", "import json, runpy, sys; print(json.dumps(sorted(sys.modules)))"])
    loaded = new_modules([python, "-S", "-m", "agent", "run", "--profile", EMULATOR_PROFILE, "--report",
                          "file://%s" % out, "--", str(app), "run"], out) - alone
    assert "agent.runtime" in loaded and "agent.launcher" in loaded
    assert loaded & HEAVY == set(), version


@pytest.mark.parametrize("version", ["3.6", "3.11"])
def test_agent_start_with_a_serial_report_loads_nothing_heavy_nor_pyserial(tmp_path, version):
    import os

    from tests.integration.serial_peer import Peer, pty_pair
    python = dict(pythons())[version]
    app = tmp_path / "app.py"
    app.write_text(TYPICAL_APP)
    master, slave, path = pty_pair()
    peer = Peer(master)
    try:
        loaded = new_modules([python, "-S", str(app), "start", EMULATOR_PROFILE, "serial://%s" % path])
        got = peer.messages()
    finally:
        peer.close()
        os.close(master)
        os.close(slave)
    assert "agent.transports.ttyport" in loaded and any(m["type"] == "status" for m in got)
    assert loaded & HEAVY == set(), version


def test_reports_without_a_server_start_no_checking_thread():
    # a thread, even one that ends at once, leaves its stack's pages in the application's RSS
    from agent.preflight import check_reports
    problems = []
    assert check_reports(["file:///tmp/m.jsonl", "serial:///dev/ttyS1", "/dev/ttyUSB0", "stdout:",
                          "drm:"], problems) is None
    thread = check_reports(["mqtt://127.0.0.1:1"], problems)
    assert thread is not None
    thread.join(10)
    assert problems and "127.0.0.1:1" in problems[0]
