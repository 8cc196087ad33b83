"""Where each kilobyte of the agent goes: RSS per imported module, on 3.6 and 3.11.

`python -m tools.bench.footprint` prints a Markdown table (`--write FILE`
replaces the table in FILE between its two marker lines: docs/footprint.md).

How: a typical gateway application (`python -S`, already importing logging,
json, threading, socket and re, with some data of its own) starts the agent
with a file report, under each Python. One run traces the Python heap
(tracemalloc) and credits each module with what was allocated while it ran,
minus what the modules it imported allocated meanwhile (as `python -X
importtime` does for time); `agent.start` is what starting allocates beyond
the imports (the profile, the state, the thread). RSS moves in pages and
allocator arenas, so it cannot be split per module: a second run without
tracing measures the RSS added, and the row "pages and allocator arenas" is
the difference. Medians of `--repeat` runs.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

from tools.bench.broker import REPO
from tools.bench.cost import _SerialPeer as SerialPeer

PYTHONS = (("3.6", os.path.expanduser("~/.pyenv/versions/3.6.15/bin/python")),
           ("3.11", os.path.expanduser("~/.pyenv/versions/3.11.7/bin/python")))
PROFILE = os.path.join(REPO, "device_profiles", "emulator.ini")
BASELINE = "logging, json, threading, socket, re"
BEGIN, END = "<!-- footprint table: begin -->", "<!-- footprint table: end -->"

# The application: what a typical gateway script has loaded before it starts the agent.
APP_HEAD = """
import sys, time
import logging, json, threading, socket, re
data = [bytes(100) for _ in range(10000)]
logging.getLogger("app").info("started")
def rss_kb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * %d
""" % (os.sysconf("SC_PAGE_SIZE") // 1024)

# Each import's own memory: the Python heap traced (tracemalloc) before and after its
# module runs, minus what the modules it imported allocated meanwhile (as
# `python -X importtime` does for time). RSS moves in pages and allocator arenas,
# so it cannot be split per module; the RSS run below gives the true total.
HEAP = APP_HEAD + """
import tracemalloc
rows = []        # [name, own bytes]
stack = []       # per import under way: bytes its nested imports allocated
def traced():
    return tracemalloc.get_traced_memory()[0]
class Recorder(object):   # not importlib.abc: on 3.11 that imports typing and zipfile
    def find_spec(self, name, path, target=None):
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    real = spec.loader
                    class Loader(object):
                        def create_module(self, spec):
                            return real.create_module(spec)
                        def exec_module(self, module):
                            stack.append(0)
                            before = traced()
                            try:
                                real.exec_module(module)
                            finally:
                                total = traced() - before
                                nested = stack.pop()
                                if stack:
                                    stack[-1] += total
                                rows.append([name, total - nested])
                        def __getattr__(self, attr):
                            return getattr(real, attr)
                    spec.loader = Loader()
                return spec
        return None
tracemalloc.start()
start = traced()
sys.meta_path.insert(0, Recorder())
import agent
assert agent.start(sys.argv[1], report=sys.argv[2])
time.sleep(1.5)
sys.meta_path.pop(0)
imported = sum(own for _, own in rows)
rows.append(["(agent.start: thread, profile, state)", traced() - start - imported])
agent.stop()
print(json.dumps({"rows": rows}))
"""

# The true total: RSS before and after, with nothing else loaded.
RSS = APP_HEAD + """
time.sleep(0.2)
before = rss_kb()
import agent
assert agent.start(sys.argv[1], report=sys.argv[2])
time.sleep(1.5)
print(json.dumps({"total": rss_kb() - before}))
agent.stop()
"""


def _run(python: str, script: str, args: List[str]) -> str:
    env = {"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin"}
    done = subprocess.run([python, "-S", "-c", script] + args, env=env, capture_output=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError("%s failed: %s" % (python, done.stderr.decode()[-800:]))
    return done.stdout.decode().strip().splitlines()[-1]


def measure(python: str, profile: str = PROFILE, repeat: int = 3,
            url: Optional[str] = None) -> Dict[str, object]:
    """Per-module heap KB (median of `repeat` runs) and the RSS added (median) under one Python,
    reporting to `url` (a file of its own when None)."""
    with tempfile.TemporaryDirectory() as folder:
        report = url or "file://%s/m.jsonl" % folder
        heaps = [json.loads(_run(python, HEAP, [profile, report])) for _ in range(repeat)]
        totals = sorted(json.loads(_run(python, RSS, [profile, report]))["total"] for _ in range(repeat))
    by_name: Dict[str, List[float]] = {}
    for run in heaps:
        for name, size in run["rows"]:
            by_name.setdefault(name, []).append(size / 1024.0)
    kb = {name: sorted(v)[len(v) // 2] for name, v in by_name.items()}
    total = totals[len(totals) // 2]
    kb["(pages and allocator arenas: RSS beyond the heap)"] = total - sum(kb.values())
    return {"order": list(kb), "kb": kb, "total": total}


def table(results: Dict[str, Dict[str, object]]) -> str:
    """A Markdown table: one row per module, one column per Python, largest first."""
    names: List[str] = []
    for got in results.values():
        names += [n for n in got["order"] if n not in names]
    versions = list(results)

    def cost(name: str) -> int:
        return max(results[v]["kb"].get(name, 0) for v in versions)
    lines = ["| module | %s | from |" % " | ".join("KB on %s" % v for v in versions),
             "|---|%s---|" % ("---:|" * len(versions))]
    for name in sorted(names, key=lambda n: (-cost(n), n)):
        cells = []
        for version in versions:
            kb = results[version]["kb"].get(name)
            cells.append("-" if kb is None else "%.0f" % kb)
        origin = ("the agent" if name.startswith("agent") else "" if name.startswith("(")
                  else "standard library")
        lines.append("| `%s` | %s | %s |" % (name, " | ".join(cells), origin))
    lines.append("| **RSS added to the application** | %s | |"
                 % " | ".join("**%d**" % results[v]["total"] for v in versions))
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default=PROFILE)
    parser.add_argument("--repeat", type=int, default=3, help="runs per Python (median per module)")
    parser.add_argument("--write", metavar="FILE", help="replace the table between the markers in FILE")
    args = parser.parse_args(argv)
    results = {}
    for version, python in PYTHONS:
        if not os.access(python, os.X_OK):
            raise SystemExit("no Python %s at %s (pyenv install)" % (version, python))
    with SerialPeer() as tty:
        for report, url in (("file", None), ("serial", "%s?baud=115200&ack=off" % tty)):
            for version, python in PYTHONS:
                results["%s, %s" % (version, report)] = measure(python, args.profile, args.repeat, url)
    text = ("Typical application: `python -S` importing %s; `agent.start()` with `%s`, reporting "
            "to a file or to a serial port (a pty; the standard-library port, no pyserial).\n\n%s"
            % (BASELINE, os.path.relpath(args.profile, REPO), table(results)))
    print(text)
    if args.write:
        with open(args.write) as handle:
            old = handle.read()
        head, _, rest = old.partition(BEGIN)
        _, _, tail = rest.partition(END)
        with open(args.write, "w") as handle:
            handle.write("%s%s\n%s\n%s%s" % (head, BEGIN, text, END, tail))
    return 0


if __name__ == "__main__":
    sys.exit(main())
