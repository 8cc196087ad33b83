"""Shared fixtures: real subprocesses, the repository's own profiles."""

import json
import os
import subprocess
import sys
from typing import List, NamedTuple

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMULATOR_PROFILE = os.path.join(REPO, "device_profiles", "emulator.ini")
WORKLOADS = os.path.join(REPO, "tools", "emulator", "workloads")


class Finished(NamedTuple):
    """A finished subprocess, as measured from outside it."""

    returncode: int
    stdout: str
    stderr: str
    peak_rss_kb: int


def run_process(argv: List[str], cwd: str = REPO, env=None, timeout: float = 120.0) -> Finished:
    """Run argv to the end; peak RSS comes from the kernel, not the child.

    Not from wait4's ru_maxrss alone: subprocess starts children with vfork, and
    Linux then carries this (pytest) process's own peak RSS into the child's
    ru_maxrss at exec, so a test process that once grew makes every child look
    as big. The child's own VmHWM (its memory after exec) is read while it runs.
    """
    out_path = "%s/.out.%d" % (cwd if os.access(cwd, os.W_OK) else "/tmp", os.getpid())
    with open(out_path + ".1", "w+b") as out, open(out_path + ".2", "w+b") as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL)
        try:
            _, status, usage, hwm = _wait4(proc.pid, timeout)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = Finished(proc.returncode, out.read().decode("utf-8", "replace"),
                          err.read().decode("utf-8", "replace"), hwm or usage.ru_maxrss)
    os.unlink(out_path + ".1")
    os.unlink(out_path + ".2")
    return result


def _wait4(pid: int, timeout: float):
    import time
    deadline = time.monotonic() + timeout
    hwm = 0
    while True:
        hwm = max(hwm, _vm_hwm_kb(pid))   # before reaping: after it, /proc/PID is gone
        found, status, usage = os.wait4(pid, os.WNOHANG)
        if found:
            return found, status, usage, hwm
        if time.monotonic() > deadline:
            raise TimeoutError("process %d still running after %ss" % (pid, timeout))
        time.sleep(0.02)


def _vm_hwm_kb(pid: int) -> int:
    """Peak RSS of `pid`'s current program (VmHWM), 0 when it cannot be read."""
    try:
        with open("/proc/%d/status" % pid) as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def agent_cmd(*args: str) -> List[str]:
    """`python -m agent ARGS` with this interpreter."""
    return [sys.executable, "-m", "agent", *args]


def unique(got: List[dict]) -> List[dict]:
    """Drop duplicates by (device, boot, seq), keeping the first arrival: what a consumer does."""
    seen, out = set(), []
    for m in got:
        key = (m["device"], m["boot"], m["seq"])
        if key not in seen:
            seen.add(key)
            out.append(m)
    return out


def read_jsonl(path) -> List[dict]:
    """The messages a file:// report wrote."""
    with open(str(path)) as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture
def env_with_repo():
    """Environment in which `python -m agent` imports this checkout from any directory."""
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return env
