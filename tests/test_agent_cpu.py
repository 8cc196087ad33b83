"""agent_cpu_ms is the agent's own CPU time, true in every telemetry message.

A real run under `python -m agent run` on Python 3.6 (no time.thread_time) and
3.11: every telemetry message says more than 0, the account never goes back,
the last one (sent from the application's thread at exit) is not stale, and
none says more than the whole process used (wait4's rusage, from outside).
"""

import os
import subprocess
import sys

import pytest

from tests.conftest import EMULATOR_PROFILE, REPO, read_jsonl
from tests.integration.test_python36 import find_python36

APP = "import time\nx = [bytes(100) for _ in range(10000)]\ntime.sleep(2.5)\n"


@pytest.mark.parametrize("version", ["3.6", "3.11"])
def test_every_telemetry_message_says_what_the_agent_spent(tmp_path, version):
    python = find_python36() if version == "3.6" else sys.executable
    profile = tmp_path / "fast.ini"
    profile.write_text("[profile]\nextends = %s\n[agent]\ntick = 100ms\n[report]\ninterval = 200ms\n"
                       "batch = 3\n" % EMULATOR_PROFILE)
    app = tmp_path / "app.py"
    app.write_text(APP)
    out = tmp_path / "m.jsonl"
    proc = subprocess.Popen([python, "-S", "-m", "agent", "run", "--profile", str(profile), "--report",
                             "file://%s" % out, "--", str(app)],
                            env={"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin"}, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, proc.stderr.read().decode()
    process_ms = (usage.ru_utime + usage.ru_stime) * 1000
    said = [m["agent_cpu_ms"] for m in read_jsonl(out) if m["type"] == "telemetry"]
    assert len(said) >= 3, said
    assert all(ms > 0 for ms in said), said
    assert said == sorted(said), said                 # an account, never going back
    assert said[-1] > said[-2], said                  # the last, made at exit, is current
    assert said[-1] <= process_ms, (said, process_ms)
