"""Progress lines while a run goes: devices alive, RSS, collections so far.

A run of minutes used to print nothing between its start and its table; a
person (or a CI log) needs to see that it is alive and how it goes. Every
`every` seconds one line goes to stderr; the collections are counted from each
device's file:// report as it grows, reading only what was appended since the
last line.
"""

import os
from typing import Dict, Iterable, Tuple

from agent.units import format_kb

EVERY = 5.0                       # seconds between two progress lines
COLLECT = b'"event":"collect"'    # how a collect event appears in a messages.jsonl line


class Progress(object):
    """Counts each device's collections incrementally and formats one line."""

    def __init__(self, every: float = EVERY) -> None:
        self.every = every
        self.next_at = every
        self._read: Dict[str, Tuple[int, int, bytes]] = {}   # folder -> (offset, count, tail)

    def due(self, now: float) -> bool:
        if now < self.next_at:
            return False
        self.next_at = now + self.every
        return True

    def collections(self, folder: str) -> int:
        """collect events in FOLDER/messages.jsonl so far (the rotated part is not re-read)."""
        offset, count, tail = self._read.get(folder, (0, 0, b""))
        path = os.path.join(folder, "messages.jsonl")
        try:
            with open(path, "rb") as handle:
                if os.fstat(handle.fileno()).st_size < offset:   # rotated: start the new file
                    offset, tail = 0, b""
                handle.seek(offset)
                data = handle.read(4 * 1024 * 1024)
        except OSError:
            return count
        lines = (tail + data).split(b"\n")
        tail = lines.pop()   # a line still being written is counted once it ends
        count += sum(1 for line in lines if COLLECT in line)
        self._read[folder] = (offset + len(data), count, tail[-64 * 1024:])
        return count

    def line(self, now: float, devices: Iterable) -> str:
        devices = list(devices)
        alive = [d for d in devices if d.state == "running"]
        rss = max((d.rss_now_kb for d in alive), default=0)
        peak = max((d.peak_rss_kb for d in devices), default=0)
        limit = devices[0].model.kill_at_kb if devices else 0
        kills = sum(len(d.kills) for d in devices)
        collections = sum(self.collections(d.folder) for d in devices)
        return ("%.0fs: %d of %d device(s) running, RSS %s now (peak %s, limit %s), "
                "%d collection%s, %d kill%s" % (
                    now, len(alive), len(devices), format_kb(rss), format_kb(peak),
                    format_kb(limit), collections, "" if collections == 1 else "s",
                    kills, "" if kills == 1 else "s"))
