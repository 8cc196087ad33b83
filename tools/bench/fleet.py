"""`gc-console devices` on a fleet of 100,000 device ids: seconds and peak memory.

Before the listing streamed the store and kept only the riskiest rows
(tools/console/fleet.py), the table took 80 s and `--json` 9 s with a peak of
260 MB on the development machine (issue 14 saw 72 s). The database
is built by a child process (so this process stays small: a child's peak RSS
as wait4 reports it starts from its parent's), then `devices` (the table, the
500 riskiest) and `devices --json` (every device) each run once, timed from
start to exit. A third row feeds as many new device ids, one status each,
through the ingestor (in a child, default --max-devices) and reports its peak
RSS: 301 MB before the device table was bounded.
"""

import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

from tools.bench.broker import REPO

BUILD = """
import sys, time
from tools.console.store import Store
store, now = Store(sys.argv[1]), time.time()
for start in range(0, %(n)d, 10000):
    store.write_batch([], [], [{"device": "dev-%%06d" %% i, "state": "online", "model": "IX20",
        "boot": "b%%06d" %% i, "ceiling_kb": 65536, "first_seen": now, "last_seen": now - i,
        "rss_kb": 30000 + i %% 30000, "mem_free_kb": 100000, "mem_total_kb": 262144,
        "rules": {"low-memory": 3}, "alerts": {}, "status": {"model": "IX20"}}
        for i in range(start, min(start + 10000, %(n)d))],
        [("dev-%%06d" %% i, "b%%06d" %% i, now, 1, 10, 9) for i in range(start, min(start + 10000, %(n)d))])
"""


FLOOD = """
import sys, time, tempfile
from agent import messages
from tools.console.ingest import Ingestor
from tools.console.store import Store
folder = tempfile.mkdtemp()
ingest = Ingestor(Store(folder + "/flood.db"))
for i in range(%(n)d):
    env = messages.Envelope("dev-%%06d" %% i)
    ingest.accept(messages.encode(env.make("status", state="online", agent="0.1", python="3.10.1",
        gc_flavour="generational-700", model="IX20", profile="/p.ini", profile_sha256="0" * 64,
        ceiling_kb=65536, uptime_s=1.0)))
ingest.flush()
with open("/proc/self/status") as handle:
    hwm = [int(l.split()[1]) for l in handle if l.startswith("VmHWM:")][0]
print(hwm, len(ingest.devices))
"""


# The command runs under a small wrapper that reports its child's peak: wait4's
# ru_maxrss of a child forked from this process includes this process's own peak
# (Linux counts it from before exec), and the bench process is large by now.
WRAP = ("import resource, subprocess, sys\n"
        "code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(code)\n")


def _run(argv: List[str]) -> Dict[str, float]:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", WRAP] + argv, cwd=REPO, capture_output=True,
                          env=dict(os.environ, PYTHONPATH=REPO))
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(argv), proc.stderr.decode()[-500:]))
    return {"seconds": seconds, "peak_mb": int(proc.stdout.split()[-1]) / 1024.0}


def measure(quick: bool) -> List[dict]:
    count = 20000 if quick else 100000
    with tempfile.TemporaryDirectory() as folder:
        db = os.path.join(folder, "fleet.db")
        subprocess.run([sys.executable, "-c", BUILD % {"n": count}, db], cwd=REPO, check=True,
                       env=dict(os.environ, PYTHONPATH=REPO))
        rows = []
        for label, extra, before in (("table", [], "80 s"), ("--json", ["--json"], "9 s, 260 MB")):
            got = _run([sys.executable, "-m", "tools.console", "devices", "--db", db] + extra)
            rows.append({"row": "console: devices %s, %d device ids" % (label, count),
                         "value": "%.1f s, peak %.0f MB" % (got["seconds"], got["peak_mb"]),
                         "ratio": 10.0 / max(got["seconds"], 0.001),
                         "goal": "<= 10 s, <= 100 MB (%s before issue 14)" % before,
                         "met": got["seconds"] <= 10.0 and got["peak_mb"] <= 100})
        started = time.monotonic()
        out = subprocess.run([sys.executable, "-c", FLOOD % {"n": count}], cwd=REPO, check=True,
                             env=dict(os.environ, PYTHONPATH=REPO), capture_output=True, text=True)
        seconds = time.monotonic() - started
        hwm_kb, kept = map(int, out.stdout.split())
        rows.append({"row": "console: ingest of %d new device ids, peak RSS" % count,
                     "value": "%.0f MB, %d devices kept in memory, %.0f s" % (hwm_kb / 1024.0, kept,
                                                                             seconds),
                     "ratio": 100.0 / (hwm_kb / 1024.0), "goal": "<= 100 MB (301 MB before issue 14)",
                     "met": hwm_kb <= 100 * 1024})
        return rows
