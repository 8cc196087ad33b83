"""The serial frame check is zlib's CRC-32 whether or not zlib is loaded.

agent.framing computes the CRC of a short frame itself so that a serial report
does not load zlib into the application (docs/footprint.md); the frames on the
wire must not change by a bit.
"""

import json
import random
import subprocess
import sys
import zlib

from agent import framing
from tests.conftest import REPO


def test_the_crc_is_zlibs_for_every_size_either_side_of_the_zlib_threshold():
    rng = random.Random(19)
    sizes = [0, 1, 2, 7, 255, 256, 1000, framing.ZLIB_FROM - 1, framing.ZLIB_FROM, 70000]
    sizes += [rng.randrange(framing.ZLIB_FROM + 10) for _ in range(200)]
    for size in sizes:
        body = bytes(rng.randrange(256) for _ in range(size))
        assert framing.crc32(body) == zlib.crc32(body) & 0xFFFFFFFF, size
        assert framing.crc_hex(body) == b"%08x" % (zlib.crc32(body) & 0xFFFFFFFF)


CHECK = """
import json, sys, zlib
del sys.modules["zlib"]      # as in an application that never loaded it
from agent import framing
sizes = [int(s) for s in sys.argv[1:]]
frames = [framing.frame(bytes(range(32, 128)) * (n // 96) + b"x" * (n % 96)) for n in sizes]
read = framing.LineReader().feed(b"".join(frames))
print(json.dumps({"zlib": "zlib" in sys.modules, "frames": [f.decode("latin-1") for f in frames],
                  "read": len(read)}))
"""


def _frames_without_zlib(*sizes: int) -> dict:
    done = subprocess.run([sys.executable, "-S", "-c", CHECK] + [str(s) for s in sizes],
                          env={"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin"}, capture_output=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


def test_short_frames_leave_zlib_unloaded_and_long_ones_load_it_with_the_same_frames():
    short = _frames_without_zlib(0, 300, 2000)
    assert short["zlib"] is False and short["read"] == 3
    long = _frames_without_zlib(300, 20000)
    assert long["zlib"] is True and long["read"] == 2
    for n, got in zip((0, 300, 2000, 20000), short["frames"] + long["frames"][1:]):
        body = bytes(range(32, 128)) * (n // 96) + b"x" * (n % 96)   # no newline in a body
        assert got.encode("latin-1") == body + b"*%08x\n" % (zlib.crc32(body) & 0xFFFFFFFF)
