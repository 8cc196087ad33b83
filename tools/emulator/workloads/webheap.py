"""Workload: a web-like application with a large long-lived heap, where full collections are the long pauses.

The `server` workload (same busy and idle phases, open-loop requests, pauses
timed per phase through gc.callbacks, full collections counted by phase and
by who started them) over a cache of `--heap` long-lived entries, by default
120,000 one-container entries (about 65 MB with its sessions: run it under
`--limit 128M`): a young collection stays short, a full
collection walks the whole heap and takes tens of milliseconds. Each request
also stays alive for the next `--keep` requests (a session), so its objects
reach the old generation before they die: only full collections free them. With
`--payload` each entry also holds that many bytes, so the live heap can be
sized against a memory limit without more gc work.

Run it alone (it needs server.py beside it):

    python tools/emulator/workloads/webheap.py --busy 3 --idle 3 --seconds 20

It prints what `server` prints, named webheap.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server  # the sibling workload; this file only changes its defaults

# Takes every option of server.py, "--seconds" included (gc-emulator looks for that word).
DEFAULTS = {"heap": 120000, "entry": "list", "objects": 100, "keep": 200, "rps": 200.0,
            "work": 1.0}

if __name__ == "__main__":
    sys.exit(server.main(name="webheap", doc=__doc__, defaults=DEFAULTS))
