"""Effect on memory and pauses: emulator workloads with the default collector and with the agent.

Each pair runs side by side through `gc-emulator run --json` (real agent,
real workload subprocess, RSS and OOM kills read from outside by the
emulator): once with `--no-agent` (CPython's automatic collector alone),
once with the agent's profile.

- cycles, bigfree: survival under a 40M script limit on the IX20 profile,
  and peak RSS (against the default where both survive);
- server: gc pause time inside busy phases and request latency p99 (the
  workload times both itself), with the idle-rule profile
  (device_profiles/examples/server-idle.ini) against the default collector;
  and the total gc pause time, busy and idle, which is the collector's CPU.
"""

import json
import os
import subprocess
import sys
import tempfile
from typing import List, Tuple

from tools.bench.broker import REPO

IX20 = os.path.join(REPO, "device_profiles", "ix20.ini")
EMULATOR = os.path.join(REPO, "device_profiles", "emulator.ini")
SERVER_IDLE = os.path.join(REPO, "device_profiles", "examples", "server-idle.ini")


def _emulate(folder: str, name: str, args: List[str]) -> subprocess.Popen:
    with open(os.path.join(folder, name + ".json"), "w") as out:   # the child keeps its own copy
        return subprocess.Popen([sys.executable, "-m", "tools.emulator", "run", "--json", "--quiet",
                                 "--workdir", os.path.join(folder, name)] + args,
                                cwd=REPO, stdout=out, stderr=subprocess.PIPE)


def _pair(folder: str, name: str, default: List[str], agent: List[str]) -> Tuple[dict, dict]:
    """Run the default and the agent side by side; each one's device summary."""
    procs = [_emulate(folder, name + "-default", default), _emulate(folder, name + "-agent", agent)]
    results = []
    for proc, which in zip(procs, ("default", "agent")):
        _, err = proc.communicate(timeout=600)
        if proc.returncode not in (0, 1):
            raise RuntimeError("gc-emulator (%s %s) failed: %s" % (name, which, err.decode()[-800:]))
        with open(os.path.join(folder, "%s-%s.json" % (name, which))) as handle:
            results.append(json.load(handle)["devices"][0])
    return results[0], results[1]


def _survival_rows(name: str, default: dict, agent: dict, command: str) -> List[dict]:
    limit_mb = agent["limit_kb"] / 1024.0
    both = default["outcome"] == agent["outcome"] == "survived"
    ratio = agent["peak_rss_kb"] / float(default["peak_rss_kb"])
    if both:
        goal, met = "peak <= 0.8x default", ratio <= 0.8
    else:
        goal, met = "default killed, agent survives", \
            default["outcome"] != "survived" and agent["outcome"] == "survived"
    return [{"row": "memory: %s under a %.0fM limit" % (name, limit_mb),
             "value": "default %s, peak %.1f MB; agent %s, peak %.1f MB"
             % (default["outcome"], default["peak_rss_kb"] / 1024.0, agent["outcome"],
                agent["peak_rss_kb"] / 1024.0),
             "ratio": ratio, "goal": goal, "met": met, "command": command}]


def measure(quick: bool) -> List[dict]:
    """The rows: cycles, bigfree, server pauses, server p99, gc CPU."""
    seconds = "10" if quick else "22"
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for workload in ("cycles", "bigfree"):
            args = ["--profile", IX20, "--workload", workload, "--limit", "40M", "--duration", seconds]
            default, agent = _pair(folder, workload, ["--no-agent"] + args, args)
            rows += _survival_rows(workload, default, agent, "gc-emulator run --profile "
                                   "device_profiles/ix20.ini %s, with and without --no-agent"
                                   % " ".join(args[2:]))
        server_seconds = "12" if quick else "30"
        default, agent = _pair(
            folder, "server",
            ["--profile", EMULATOR, "--workload", "server", "--duration", server_seconds, "--no-agent"],
            ["--profile", SERVER_IDLE, "--workload", "server", "--duration", server_seconds])
    d, a = default["workload"], agent["workload"]
    command = "gc-emulator run --profile device_profiles/examples/server-idle.ini --workload server " \
              "--duration %s (vs --no-agent on emulator.ini)" % server_seconds
    busy_d, busy_a = d["busy_pauses"]["total_ms"], a["busy_pauses"]["total_ms"]
    rows.append({"row": "pauses: gc time inside busy phases (server)",
                 "value": "%.1f ms (%d pauses) vs default %.1f ms (%d)"
                 % (busy_a, a["busy_pauses"]["count"], busy_d, d["busy_pauses"]["count"]),
                 "ratio": busy_a / busy_d if busy_d else float("inf"), "goal": "<= 0.2x default",
                 "met": busy_a <= 0.2 * busy_d, "command": command})
    p99_d, p99_a = d["latency_ms"]["p99"], a["latency_ms"]["p99"]
    rows.append({"row": "latency: request p99 in busy phases (server)",
                 "value": "%.2f ms vs default %.2f ms" % (p99_a, p99_d),
                 "ratio": p99_a / p99_d if p99_d else float("inf"), "goal": "<= 0.2x default",
                 "met": p99_a <= 0.2 * p99_d, "command": command})
    total_d = d["busy_pauses"]["total_ms"] + d["idle_pauses"]["total_ms"]
    total_a = a["busy_pauses"]["total_ms"] + a["idle_pauses"]["total_ms"]
    rows.append({"row": "gc CPU: all gc pauses (server)", "value": "%.1f ms vs default %.1f ms"
                 % (total_a, total_d), "ratio": total_a / total_d if total_d else float("inf"),
                 "goal": "<= 1.0x default", "met": total_a <= total_d, "command": command})
    return rows
