"""The agent on a real Python 3.6, the oldest interpreter DAL firmware ships.

vermin checks the syntax; this runs it. The interpreter is found as
$GCAGENT_PYTHON36, `python3.6` on PATH, or under pyenv; without one the test
fails and says how to get one (it is never skipped).
"""

import glob
import os
import shutil
import subprocess

from agent import messages
from tests.conftest import EMULATOR_PROFILE, REPO, WORKLOADS, read_jsonl


def find_python36() -> str:
    candidates = [os.environ.get("GCAGENT_PYTHON36", "")]
    for root in (os.environ.get("PYENV_ROOT", ""), os.path.expanduser("~/.pyenv"), "/root/.pyenv"):
        candidates += sorted(glob.glob(os.path.join(root, "versions", "3.6*", "bin", "python3.6")))
    on_path = shutil.which("python3.6") or ""
    if "/shims/" not in on_path:   # a pyenv shim without a 3.6 selected only prints an error
        candidates.append(on_path)
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise AssertionError("no Python 3.6 interpreter: install one (pyenv install 3.6.15) "
                         "or set GCAGENT_PYTHON36=/path/to/python3.6")


def test_agent_runs_on_python_36(tmp_path):
    python = find_python36()
    env = {"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin"}
    profiles = sorted(glob.glob(os.path.join(REPO, "device_profiles", "*.ini")))
    check = subprocess.run([python, "-m", "agent", "check", *profiles], env=env,
                           capture_output=True, timeout=60)
    assert check.returncode == 0, check.stderr.decode()
    out = tmp_path / "m.jsonl"
    run = subprocess.run([python, "-m", "agent", "run", "--profile", EMULATOR_PROFILE, "--report",
                          "file://%s" % out, "--", os.path.join(WORKLOADS, "cycles.py"),
                          "--rate", "25", "--seconds", "3", "--gc-off", "--quiet"],
                         env=env, capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr.decode()
    assert run.stdout.decode().startswith("cycles: made")
    got = read_jsonl(out)
    assert got[0]["python"].startswith("3.6.")
    assert all(messages.validate(m) == [] for m in got)
    assert any(m.get("event") == "collect" and m["rule"] == "low-memory" for m in got)
    # gc.freeze does not exist on 3.6: said once in status, never an error on every boot
    assert not [m for m in got if m.get("event") == "error"]
    assert got[0]["freeze"] == "unavailable (Python 3.7+)"
    assert not [m for m in got if m.get("event") == "tune" and m["what"] == "freeze"]
    assert got[-1]["tune"]["freeze"] == "unavailable"
