"""One way to write a test profile: a small, fast device, with what a test changes merged in.

    write_profile(tmp_path, {"report": {"urls": broker.url}})
    write_profile(tmp_path, {"device": {"id": "dev-s"}, "report": {"batch": 1, "keepalive": None}},
                  name="serial.ini")

Each test names only what it is about; the rest is BASE: a 200 ms tick, a
collection every second (so events flow), telemetry every 200 ms two samples
to a message. A value of None removes a key, a section of None removes the
section. The text is plain `key = value` lines in BASE's order, then the
test's, so a test may still edit the written file as text.
"""

import os
from typing import Dict, Optional

Sections = Dict[str, Optional[Dict[str, object]]]

BASE: Sections = {
    "device": {"id": "dev-1", "memory_limit": "64M"},
    "agent": {"tick": "200ms"},
    "rule:periodic": {"type": "periodic", "every": "1s", "generation": 0},
    "report": {"urls": "stdout:", "interval": "200ms", "batch": 2, "keepalive": "10s"},
}


def profile_text(overrides: Optional[Sections] = None, base: Optional[Sections] = None) -> str:
    """BASE (or `base`) with `overrides` merged in, section by section and key by key."""
    merged: Dict[str, Dict[str, object]] = {}
    for source in (BASE if base is None else base, overrides or {}):
        for section, keys in source.items():
            if keys is None:
                merged.pop(section, None)
                continue
            target = merged.setdefault(section, {})
            for key, value in keys.items():
                if value is None:
                    target.pop(key, None)
                else:
                    target[key] = value
    lines = []
    for section, keys in merged.items():
        lines.append("[%s]" % section)
        lines.extend("%s = %s" % (key, value) for key, value in keys.items())
    return "\n".join(lines) + "\n"


def write_profile(folder, overrides: Optional[Sections] = None, name: str = "agent.ini",
                  base: Optional[Sections] = None) -> str:
    """Writes profile_text(overrides, base) to folder/name; returns its path."""
    path = os.path.join(str(folder), name)
    with open(path, "w") as handle:
        handle.write(profile_text(overrides, base))
    return path
