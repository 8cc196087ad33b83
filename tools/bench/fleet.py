"""`gc-console devices` on a fleet of 100,000 device ids: seconds and peak memory.

Issue 14 measured 72 s and 285 MB for this before the listing streamed the
store and kept only the riskiest rows (tools/console/fleet.py). The database
is built by a child process (so this process stays small: a child's peak RSS
as wait4 reports it starts from its parent's), then `devices` (the table, the
500 riskiest) and `devices --json` (every device) each run once, timed from
start to exit.
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


def _run(argv: List[str]) -> Dict[str, float]:
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=REPO))
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(argv), proc.stderr.read().decode()[-500:]))
    proc.stderr.close()
    proc.returncode = 0
    return {"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024.0}


def measure(quick: bool) -> List[dict]:
    count = 20000 if quick else 100000
    with tempfile.TemporaryDirectory() as folder:
        db = os.path.join(folder, "fleet.db")
        subprocess.run([sys.executable, "-c", BUILD % {"n": count}, db], cwd=REPO, check=True,
                       env=dict(os.environ, PYTHONPATH=REPO))
        rows = []
        for label, extra in (("table", []), ("--json", ["--json"])):
            got = _run([sys.executable, "-m", "tools.console", "devices", "--db", db] + extra)
            rows.append({"row": "console: devices %s, %d device ids" % (label, count),
                         "value": "%.1f s, peak %.0f MB" % (got["seconds"], got["peak_mb"]),
                         "ratio": 10.0 / max(got["seconds"], 0.001),
                         "goal": "<= 10 s, <= 100 MB (72 s, 285 MB before issue 14)",
                         "met": got["seconds"] <= 10.0 and got["peak_mb"] <= 100})
        return rows
