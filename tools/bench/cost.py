"""The agent's own cost in an application's process: memory (RSS) and CPU time.

Each figure runs the same small application twice, side by side (alone, and
under `python -m agent run`), and reads the difference from the kernel:
RSS from /proc (the application prints its own at the end, after the agent
has been running), CPU from wait4's rusage, so nothing relies on the agent's
own account. `python -S` keeps site-packages out, as on a device.
"""

import os
import subprocess
import sys
import tempfile
import time
from typing import List, Tuple

from tools.bench.broker import REPO, agent_env, bench_broker

PROFILE = os.path.join(REPO, "device_profiles", "emulator.ini")
# statm: resident and shared (file-backed: libraries and code) pages, in that order.
IDLE_APP = "import time\nx = [bytes(100) for _ in range(10000)]\ntime.sleep(%f)\n" \
           "print(' '.join(open('/proc/self/statm').read().split()[1:3]))\n"
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _app(folder: str, seconds: float) -> str:
    path = os.path.join(folder, "app.py")
    with open(path, "w") as handle:
        handle.write(IDLE_APP % seconds)
    return path


def _one_hz_profile(folder: str, url: str) -> str:
    """The emulator profile at 1 Hz sampling, reporting once a minute."""
    path = os.path.join(folder, "one-hz.ini")
    with open(path, "w") as handle:
        handle.write("[profile]\nextends = %s\n[agent]\ntick = 1s\n[report]\nurls = %s\n"
                     "interval = 60s\n" % (PROFILE, url))
    return path


def _run_all(argvs: List[List[str]]) -> List[Tuple[int, float, int]]:
    """Run argvs side by side; per process (RSS KB it printed, CPU seconds from rusage,
    the file-backed part of that RSS in KB)."""
    procs = [subprocess.Popen(argv, env=agent_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for argv in argvs]
    results = {}
    while len(results) < len(procs):
        pid, status, usage = os.wait4(-1, 0)
        results[pid] = (status, usage.ru_utime + usage.ru_stime)
    out = []
    for proc in procs:
        status, cpu = results[proc.pid]
        printed, err = proc.stdout.read(), proc.stderr.read()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0 or not printed.split():
            raise RuntimeError("%s failed: %s" % (" ".join(proc.args), err.decode()[-500:]))
        resident, shared = printed.split()[-2:]
        out.append((int(resident) * PAGE_KB, cpu, int(shared) * PAGE_KB))
    return out


def footprint(quick: bool) -> List[dict]:
    """RSS added by the agent: with a file report, and with MQTT connected to a local broker."""
    seconds = 1.5 if quick else 4.0
    with tempfile.TemporaryDirectory() as folder, bench_broker(folder) as broker:
        app = _app(folder, seconds)
        wrapped = [sys.executable, "-S", "-m", "agent", "run", "--profile", PROFILE, "--report"]
        (alone, _, alone_shared), with_file, with_mqtt = _run_all([
            [sys.executable, "-S", app],
            wrapped + ["file://%s/m.jsonl" % folder, "--", app],
            wrapped + ["mqtt://127.0.0.1:%d" % broker.port, "--", app]])
    rows = []
    for name, (kb, _, shared) in (("file report", with_file), ("MQTT connected", with_mqtt)):
        added = (kb - alone) / 1024.0
        # File-backed pages (libssl, libcrypto, extension modules) are shared with every
        # process that maps them; the rest is this process's own heap.
        files = (shared - alone_shared) / 1024.0
        rows.append({"row": "footprint: RSS added, %s" % name,
                     "value": "%.2f MB (%d K -> %d K; %.2f MB of it file-backed library pages)"
                              % (added, alone, kb, files), "ratio": kb / float(alone),
                     "goal": "<= 2 MB added", "met": added <= 2.0})
    return rows


def cpu(quick: bool) -> List[dict]:
    """CPU time over a minute at 1 Hz sampling, with and without the agent."""
    seconds = 15.0 if quick else 60.0
    with tempfile.TemporaryDirectory() as folder:
        app = _app(folder, seconds)
        profile = _one_hz_profile(folder, "file://%s/m.jsonl" % folder)
        started = time.monotonic()
        (_, alone, _), (_, with_agent, _) = _run_all([
            [sys.executable, "-S", app],
            [sys.executable, "-S", "-m", "agent", "run", "--profile", profile, "--", app]])
        wall = time.monotonic() - started
    # Interpreter start-up and imports are a one-time cost, counted in full here.
    added = (with_agent - alone) / wall * 100.0
    return [{"row": "cpu: share of a core added at 1 Hz (%ds)" % seconds,
             "value": "%.3f%% (%.0f ms -> %.0f ms CPU)" % (added, alone * 1000, with_agent * 1000),
             "ratio": with_agent / alone if alone else float("inf"),
             "goal": "<= 0.1% of a core", "met": added <= 0.1}]
