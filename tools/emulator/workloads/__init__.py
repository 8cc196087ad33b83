"""Workloads: plain scripts an emulated device runs (and people can run alone).

    cycles   reference cycles at a set rate (small payloads, many objects)
    bigfree  large blocks that become garbage inside cycles (few objects, many bytes)
    leak     a real leak: reachable records no collection frees
    server   busy and idle phases of request handling; latency and gc pauses per phase
    gcoff    the application calls gc.disable() and makes cyclic garbage
    webheap  the server over a large long-lived heap (120,000 entries, sessions
             that die old): full collections are the long pauses
    relay    bursts of thousands of messages with cycles, then quiet

Each script is self-contained (standard library, Python 3.6+, no imports from
this repository) so it can be copied to a real gateway too. Each takes
`--seconds` and `--quiet` (no progress lines), and ends with a summary line
for people followed by one line of JSON, always the last line on stdout:

    {"workload": NAME, "seconds": S, "peak_rss_kb": K, "rss_kb": K, "gc_enabled": B,
     "collections": [gen0, gen1, gen2], "python": "3.x.y", ...fields of that workload}

`collections` counts every collection in the process during the run
(automatic ones and the agent's). Under `python -m agent run` with a
`stdout:` report, the agent's messages share stdout; `parse_summary` finds
the workload's line among them.
"""

import json
import os
from typing import List, Optional

NAMES = ("cycles", "bigfree", "leak", "server", "gcoff", "webheap", "relay")
FOLDER = os.path.dirname(os.path.abspath(__file__))


def path(name: str) -> str:
    """The script of workload `name`; ValueError naming the choices for an unknown one."""
    if name not in NAMES:
        raise ValueError("unknown workload %r; one of %s" % (name, ", ".join(NAMES)))
    return os.path.join(FOLDER, name + ".py")


def parse_summary(stdout: str) -> Optional[dict]:
    """The workload's JSON summary: the last stdout line that is a JSON object
    with a "workload" key; None when there is none (the script was killed)."""
    lines: List[str] = stdout.splitlines()
    for line in reversed(lines):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            found = json.loads(line)
        except ValueError:
            continue
        if isinstance(found, dict) and "workload" in found:
            return found
    return None
