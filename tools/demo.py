"""`make demo`: the same application run twice under a 64M ceiling, without and with gc-agent.

The application (tools/emulator/workloads/cycles.py) makes reference cycles
with gc disabled, as some libraries do. RSS is read from outside the process
(/proc/PID/statm) twice a second and drawn as a bar against the ceiling.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROFILE = os.path.join(REPO, "device_profiles", "emulator.ini")
WORKLOAD = os.path.join(REPO, "tools", "emulator", "workloads", "cycles.py")
CEILING_KB = 64 * 1024
WIDTH = 40


def _rss_kb(pid: int) -> int:
    try:
        with open("/proc/%d/statm" % pid) as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, IndexError, ValueError):
        return 0


def _bar(kb: int) -> str:
    filled = min(WIDTH, int(WIDTH * kb / CEILING_KB))
    over = kb > CEILING_KB
    return "[" + "#" * filled + " " * (WIDTH - filled) + "]" + (" OVER THE CEILING" if over else "")


def _run(title: str, argv, seconds: float) -> int:
    print("\n== %s" % title)
    print("   $ %s" % " ".join(os.path.relpath(a, REPO) if a.startswith(REPO) else a for a in argv))
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    peak = 0
    started = time.monotonic()
    while proc.poll() is None:
        kb = _rss_kb(proc.pid)
        if kb < 4096:   # the interpreter is still starting: nothing to show yet
            time.sleep(0.1)
            continue
        peak = max(peak, kb)
        print("   t=%4.1fs rss %6.1fM %s" % (time.monotonic() - started, kb / 1024.0, _bar(kb)),
              flush=True)
        time.sleep(0.5)
    print("   peak %.1fM against a %dM ceiling: %s"
          % (peak / 1024.0, CEILING_KB // 1024,
             "would be killed by the device's memory limit" if peak > CEILING_KB else "stays under"))
    return peak


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="how long each run lasts")
    parser.add_argument("--rate", type=float, default=25.0, help="MB of cyclic garbage a second")
    args = parser.parse_args(argv)
    workload = [WORKLOAD, "--rate", str(args.rate), "--seconds", str(args.seconds), "--gc-off",
                "--quiet"]
    print("gc-agent demo: an application that makes %.0f MB/s of reference cycles with gc "
          "disabled, under a %dM ceiling (device_profiles/emulator.ini)." % (args.rate,
                                                                              CEILING_KB // 1024))
    without = _run("without the agent", [sys.executable, *workload], args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "messages.jsonl")
        with_agent = _run("with gc-agent", [sys.executable, "-m", "agent", "run", "--profile",
                                            PROFILE, "--report", "file://" + out, "--", *workload],
                          args.seconds)
        with open(out) as handle:
            messages = [json.loads(line) for line in handle]
    events = [m for m in messages if m["type"] == "event"]
    collects = [m for m in events if m["event"] == "collect"]
    by_rule = Counter(m["rule"] for m in collects)
    reclaimed = sum(max(0, m["rss_before_kb"] - m["rss_after_kb"]) for m in collects)
    pauses = sorted(m["duration_ms"] for m in collects)
    print("\n== what the agent reported (%d messages: %s)" % (
        len(messages), ", ".join("%d %s" % (n, t) for t, n in
                                 sorted(Counter(m["type"] for m in messages).items()))))
    print("   collections by rule: %s" % (", ".join("%s %d" % kv for kv in sorted(by_rule.items()))
                                          or "none"))
    if pauses:
        print("   reclaimed %.1fM of RSS; pauses median %.1f ms, longest %.1f ms"
              % (reclaimed / 1024.0, pauses[len(pauses) // 2], pauses[-1]))
    print("   other events: %s" % ", ".join(sorted({m["event"] for m in events} - {"collect"})))
    print("\n   peak RSS without the agent %.1fM, with it %.1fM (%.0f%% lower)\n"
          % (without / 1024.0, with_agent / 1024.0, 100.0 * (1 - with_agent / float(without or 1))))
    print("Next: python -m agent run --help, device_profiles/*.ini, and the README.")
    return 0 if with_agent < CEILING_KB else 1


if __name__ == "__main__":
    sys.exit(main())
