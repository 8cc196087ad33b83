# Serial framing: one message per line, `JSON*CRC\n` (shared with the tools).
#
# CRC is the CRC-32 (zlib's) of the JSON bytes as 8 lowercase hex digits, the
# same framing both ways. A reader keeps at most `max_line` bytes of a line: a
# longer one is dropped as it streams past, so a megabyte of garbage without a
# newline costs no more memory than a good line. Every dropped line is counted
# by reason, and reading resumes at the next newline, the way NMEA readers
# resync on a damaged sentence.
#
# Acknowledgements travel the same way: `{"type":"ack","boot":B,"seq":[N, ...]}`
# names the messages the far end holds (`seq` may be one number; `boot` may be
# left out for this boot's messages). Naming each message, rather than a
# cumulative high-water mark, is what keeps a frame lost to line noise from
# being acknowledged by the frame after it.

import json
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Dict, Iterable, List, Optional  # noqa: F401 (type comments)

MAX_LINE = 64 * 1024
REASONS = ("crc", "too_long", "malformed")
# Below this size a frame's CRC is computed here rather than by zlib, unless zlib is
# loaded already: loading it costs the application 0.15 MB of RSS (docs/footprint.md),
# while a telemetry frame costs a few hundred microseconds here. Longer lines (rare,
# or a flood) load zlib, so the CPU a line costs stays bounded.
ZLIB_FROM = 4096
_TABLE = None  # type: Optional[memoryview]


def crc32(body):  # type: (bytes) -> int
    # CRC-32 of `body`, the value zlib.crc32 gives.
    zlib = sys.modules.get("zlib")
    if zlib is None and len(body) >= ZLIB_FROM:
        import zlib
    if zlib is not None:
        return zlib.crc32(body) & 0xFFFFFFFF
    table = _TABLE or _crc_table()
    crc = 0xFFFFFFFF
    for byte in body:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _crc_table():  # type: () -> memoryview
    # The byte table of CRC-32, made on first use (two threads may both make it: the same
    # table). 1 KB of unsigned ints read through a memoryview, not a list of 256 ints (10 KB
    # on 3.6, docs/footprint.md).
    global _TABLE
    table = bytearray()
    for n in range(256):
        for _ in range(8):
            n = (n >> 1) ^ 0xEDB88320 if n & 1 else n >> 1
        table += n.to_bytes(4, sys.byteorder)
    _TABLE = memoryview(bytes(table)).cast("I")
    return _TABLE


def crc_hex(body):  # type: (bytes) -> bytes
    # The frame check of `body`: CRC-32 as 8 lowercase hex digits.
    return b"%08x" % crc32(body)


def frame(body):  # type: (bytes) -> bytes
    # `body` (compact JSON, no newline) as one line on the wire.
    return body + b"*" + crc_hex(body) + b"\n"


def unframe(line):  # type: (bytes) -> Optional[bytes]
    # The JSON body of one line (newline optional), or None when the check fails.
    line = line.rstrip(b"\r\n")
    body, star, check = line.rpartition(b"*")
    if not star or len(check) != 8 or crc_hex(body) != check:
        return None
    return body


def ack(seqs, boot=None):  # type: (Iterable[int], Optional[str]) -> bytes
    # An acknowledgement frame for the messages `seqs` (of `boot`).
    message = {"type": "ack", "seq": sorted(set(seqs))}  # type: Dict[str, object]
    if boot:
        message["boot"] = boot
    return frame(json.dumps(message, separators=(",", ":")).encode("ascii"))


class LineReader(object):
    # Bytes in, checked frame bodies out; bad and overlong lines counted and skipped.

    def __init__(self, max_line=MAX_LINE):  # type: (int) -> None
        self.max_line = max_line
        self.bad = dict.fromkeys(REASONS, 0)  # type: Dict[str, int]
        self.good = 0
        self._buffer = bytearray()
        self._skipping = False   # inside an overlong line: discard up to its newline

    @property
    def dropped(self):  # type: () -> int
        # Lines refused so far, whatever the reason.
        return sum(self.bad.values())

    def feed(self, data):  # type: (bytes) -> List[bytes]
        # The bodies of every complete, intact line in `data` (after what came before).
        bodies = []
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            if end < 0:
                self._keep(data[start:])
                break
            self._keep(data[start:end])
            start = end + 1
            if self._skipping:
                self._skipping = False
                self.bad["too_long"] += 1
                continue
            line = bytes(self._buffer)
            del self._buffer[:]
            if not line.strip():
                continue   # blank lines (a terminal's CR LF, a human's Enter) are not frames
            body = unframe(line)
            if body is None:
                self.bad["crc" if b"*" in line else "malformed"] += 1
                continue
            self.good += 1
            bodies.append(body)
        return bodies

    def _keep(self, chunk):  # type: (bytes) -> None
        if self._skipping:
            return
        if len(self._buffer) + len(chunk) > self.max_line:
            del self._buffer[:]
            self._skipping = True
            return
        self._buffer += chunk
