# `python -m agent decode`: wire captures -> JSON lines, bad frames reported.
#
# Takes what a person can capture: a serial stream (`JSON*CRC` lines, as
# `cat /dev/ttyS1 > capture` or a live port), the JSON lines a `file://` report
# writes, or MQTT payloads (plain JSON, or zlib streams one after another as
# `mosquitto_sub -N` writes them). Every message goes to stdout as one JSON
# line, flushed at once so a live port can be watched; every line that fails
# its check goes to stderr with its line number and why, and a summary ends the
# run (Ctrl-C included). A message seen before (same device, boot and seq: a frame
# the agent sent again after a lost acknowledgement) is printed once and counted
# as a duplicate. Memory stays bounded: a line over `max_line` is skipped as it
# streams by, and duplicates are told by the last `SEEN_KEPT` messages' keys.

import collections
import json
import zlib

from . import framing, messages

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import BinaryIO, Dict, Optional, TextIO  # noqa: F401 (type comments)

MAX_DETAILS = 20   # bad lines described one by one; the rest are only counted
SEEN_KEPT = 100000   # (device, boot, seq) keys remembered to drop resent frames


class Decoder(object):
    # Writes the messages found in a binary stream; counts what it refuses.

    def __init__(self, out, err, max_line=framing.MAX_LINE):  # type: (TextIO, TextIO, int) -> None
        self.out = out
        self.err = err
        self.max_line = max_line
        self.good = 0
        self.bad = {}  # type: Dict[str, int]
        self.line = 0
        self.duplicates = 0
        self._seen = collections.OrderedDict()   # (device, boot, seq) -> None, oldest first

    def run(self, stream):  # type: (BinaryIO) -> int
        # Decode `stream` to the end; exit status 0 when nothing was refused, else 1.
        interrupted = False
        try:
            head = stream.read(1)
            if head == b"\x78":
                self._zlib(head + stream.read(messages.MAX_BYTES * 64))
            elif head:
                self._lines(stream, head)
        except KeyboardInterrupt:   # watching a live port: ^C ends it, with the summary
            interrupted = True
        refused = sum(self.bad.values())
        summary = ", ".join("%s %d" % kv for kv in sorted(self.bad.items()))
        self.err.write("decode: %d message%s, %d refused%s%s%s\n" % (
            self.good, "" if self.good == 1 else "s", refused, " (%s)" % summary if summary else "",
            ", %d duplicate%s dropped" % (self.duplicates, "" if self.duplicates == 1 else "s")
            if self.duplicates else "", "; interrupted" if interrupted else ""))
        if interrupted:
            return 130
        return 1 if refused else 0

    def _lines(self, stream, head):  # type: (BinaryIO, bytes) -> None
        pending = head
        while True:
            line = pending + stream.readline(self.max_line + 1 - len(pending))
            pending = b""
            if not line:
                return
            self.line += 1
            if len(line) > self.max_line and not line.endswith(b"\n"):
                while True:   # skip the rest of an overlong line without keeping it
                    rest = stream.readline(self.max_line)
                    if not rest or rest.endswith(b"\n"):
                        break
                self._refuse("too_long", "longer than %d bytes" % self.max_line)
                continue
            self._one(line.rstrip(b"\r\n"))

    def _one(self, line):  # type: (bytes) -> None
        if not line.strip():
            return
        body = framing.unframe(line)
        if body is None:
            if line[:1] != b"{" or line[-9:-8] == b"*":
                self._refuse("crc" if b"*" in line else "malformed",
                             "check failed (CRC-32 of the JSON does not match)" if b"*" in line
                             else "not a frame (JSON*CRC) nor a JSON line")
                return
            body = line   # a plain JSON line (file:// output, an MQTT payload)
        self._emit(body)

    def _emit(self, body):  # type: (bytes) -> None
        try:
            message = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            self._refuse("malformed", "not UTF-8 JSON: %s" % exc)
            return
        if isinstance(message, dict) and "v" in message:
            problems = messages.validate(message)
            if problems:
                self._refuse("schema", "; ".join(problems[:3]))
                return
        if isinstance(message, dict) and "v" in message:
            key = (message.get("device"), message.get("boot"), message.get("seq"))
            if key in self._seen:
                self.duplicates += 1
                return
            self._seen[key] = None
            if len(self._seen) > SEEN_KEPT:
                self._seen.popitem(last=False)
        self.good += 1
        self.out.write(json.dumps(message, ensure_ascii=False, separators=(",", ":")) + "\n")
        self.out.flush()

    def _zlib(self, data):  # type: (bytes) -> None
        while data:
            self.line += 1
            inflater = zlib.decompressobj()
            try:
                body = inflater.decompress(data, messages.MAX_BYTES + 1)
            except zlib.error as exc:
                self._refuse("zlib", "bad zlib payload: %s" % exc)
                return
            if inflater.unconsumed_tail or not inflater.eof:
                self._refuse("zlib", "zlib payload over %d bytes or cut short" % messages.MAX_BYTES)
                return
            self._emit(body)
            data = inflater.unused_data.lstrip(b"\n")

    def _refuse(self, reason, why):  # type: (str, str) -> None
        self.bad[reason] = self.bad.get(reason, 0) + 1
        count = sum(self.bad.values())
        if count <= MAX_DETAILS:
            self.err.write("decode: line %d: %s\n" % (self.line, why))
        elif count == MAX_DETAILS + 1:
            self.err.write("decode: more refused lines are only counted\n")


def decode_file(path, out, err, max_line=framing.MAX_LINE):
    # type: (Optional[str], TextIO, TextIO, int) -> int
    # Decode the file at `path` (stdin when None or '-'); the exit status.
    import sys
    decoder = Decoder(out, err, max_line)
    if path in (None, "-"):
        return decoder.run(sys.stdin.buffer)
    try:
        # A tty's reads return what has arrived, so buffered readline still shows
        # each line of a live port as soon as it ends.
        with open(path, "rb") as stream:
            return decoder.run(stream)
    except OSError as exc:   # cannot open, or a port that went away (EIO) mid-stream
        err.write("decode: %s: %s\n" % (path, exc.strerror or exc))
        return 2
