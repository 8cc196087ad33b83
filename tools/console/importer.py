"""`gc-console import`: schema-v1 JSON lines from files into the console's database.

Reads what `file://` reports write (one message a line), the output of
`python -m agent decode`, and raw serial captures (`JSON*CRC` lines). Each
message goes through the same decode and ingest path as a live one
(`agent.messages.decode`, then `Ingestor.accept`), with the message's own `ts`
as the time it was received, so a fleet's past is recorded as it would have
been live: samples, events, boots and missing counts, device rows, alerts.

Idempotent: messages are kept once by (device, boot, seq), so importing a file
twice adds nothing. A bad line (not JSON, another schema, a value out of
range, over the size cap) is named by FILE:LINE and why, counted, and the
import goes on. Acks and commands in a serial capture are not device messages:
they are skipped and counted apart. Memory stays bounded whatever the file's
size: a line at a time, an overlong line skipped as it streams by.

Callable from Python: `import_files(paths, store)` returns the counts.
"""

import json
import os
import sys
from typing import IO, Any, Callable, Dict, Iterable, List, Optional

from agent import framing, messages
from agent.errors import MessageError

from .ingest import Ingestor
from .safetext import clean
from .store import Store

MAX_LINE = messages.MAX_BYTES + 64     # a message at the cap, framed (`*CRC`), plus a newline
PROGRESS_EVERY = 10000                 # lines between progress calls
DETAILS_KEPT = 100                     # refusals kept (and said) one by one; the rest are counted

Progress = Callable[[str, int, int, int], None]      # path, lines, bytes read, file size
Refused = Callable[[str, int, str, str], None]       # path, line, reason code, why


class _Clock(object):
    """The time the ingestor sees: the `ts` of the message being imported."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def import_files(paths: Iterable[str], store: Store, progress: Optional[Progress] = None,
                 on_refused: Optional[Refused] = None) -> Dict[str, Any]:
    """Import every file in `paths` ('-' is stdin) into `store`; returns the counts.

    Counts: files, lines (non-blank), new, duplicates, refused (with by_reason),
    skipped (acks, commands), unreadable (files that could not be read), and
    `refusals`, the first DETAILS_KEPT as (path, line, reason, why).
    Raises sqlite3.Error only when the database itself cannot be written.
    """
    clock = _Clock()
    ingest = Ingestor(store, clock=clock)
    counts: Dict[str, Any] = {"files": 0, "lines": 0, "new": 0, "duplicates": 0, "refused": 0,
                              "skipped": 0, "unreadable": 0, "by_reason": {}, "refusals": []}

    def refuse(path: str, line: int, reason: str, why: str) -> None:
        counts["refused"] += 1
        counts["by_reason"][reason] = counts["by_reason"].get(reason, 0) + 1
        if len(counts["refusals"]) < DETAILS_KEPT:
            counts["refusals"].append((path, line, reason, why))
            if on_refused is not None:
                on_refused(path, line, reason, why)

    for path in paths:
        try:
            if path == "-":
                counts["files"] += 1
                _one_file(path, sys.stdin.buffer, 0, ingest, clock, counts, refuse, progress)
                continue
            with open(path, "rb") as stream:
                counts["files"] += 1
                size = os.fstat(stream.fileno()).st_size
                _one_file(path, stream, size, ingest, clock, counts, refuse, progress)
        except OSError as exc:   # cannot open, or a read error part-way (what was read is kept)
            counts["unreadable"] += 1
            if on_refused is not None:
                on_refused(path, 0, "unreadable", exc.strerror or str(exc))
    ingest.flush()
    counts["store_refused"] = ingest.stats["store_refused"]
    return counts


def _one_file(path: str, stream: IO[bytes], size: int, ingest: Ingestor, clock: _Clock,
              counts: Dict[str, Any], refuse: Callable[[str, int, str, str], None],
              progress: Optional[Progress]) -> None:
    number = done = 0
    while True:
        line = stream.readline(MAX_LINE + 1)
        if not line:
            break
        number += 1
        done += len(line)
        if len(line) > MAX_LINE and not line.endswith(b"\n"):
            while True:   # the rest of an overlong line, never held whole
                rest = stream.readline(MAX_LINE)
                done += len(rest)
                if not rest or rest.endswith(b"\n"):
                    break
            refuse(path, number, "too_large", "line longer than %d bytes" % MAX_LINE)
        else:
            _one_line(path, number, line.strip(), ingest, clock, counts, refuse)
        if progress is not None and number % PROGRESS_EVERY == 0:
            progress(path, number, done, size)
    if progress is not None:
        progress(path, number, done, size)


def _one_line(path: str, number: int, line: bytes, ingest: Ingestor, clock: _Clock,
              counts: Dict[str, Any], refuse: Callable[[str, int, str, str], None]) -> None:
    if not line:
        return
    counts["lines"] += 1
    if number == 1 and line.startswith(b"\xef\xbb\xbf"):   # a BOM some editors write
        line = line[3:]
    body = line
    if line[-9:-8] == b"*" and not line.endswith(b"}"):   # a serial frame, JSON*CRC
        body = framing.unframe(line)
        if body is None:
            refuse(path, number, "crc", "a JSON*CRC frame whose CRC-32 does not match")
            return
    try:
        message = messages.decode(body)
    except MessageError as exc:
        if _not_a_message(body):
            counts["skipped"] += 1
        else:   # the ingestor's reason code (one mapping), decode's sentence
            refuse(path, number, ingest.accept(body).reason or "schema", clean(str(exc)[:300]))
        return
    clock.now = message["ts"]
    outcome = ingest.accept(body)
    if outcome.status == "new":
        counts["new"] += 1
    elif outcome.status == "duplicate":
        counts["duplicates"] += 1
    else:   # decoded above, so only what accept checks beyond decode lands here
        refuse(path, number, outcome.reason, "refused by the ingestor (%s)" % outcome.reason)


def _not_a_message(body: bytes) -> bool:
    """An ack or a command (what a serial capture also holds), not a device's message."""
    try:
        value = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(value, dict) and "v" not in value and (
        value.get("type") == "ack" or ("cmd" in value and "sig" in value))


def stderr_progress(stream: IO[str]) -> Progress:
    """Progress on `stream`: one line redrawn in a terminal, a line now and then otherwise."""
    tty = hasattr(stream, "isatty") and stream.isatty()
    every = PROGRESS_EVERY

    def show(path: str, lines: int, done: int, size: int) -> None:
        final = size > 0 and done >= size
        if lines % every and not final:
            return
        share = " (%d%%)" % (100 * done // size) if size else ""
        text = "import: %s: %d lines%s" % (clean(path), lines, share)
        if tty:
            stream.write("\r" + text + ("\n" if final else ""))
        elif lines >= every:
            stream.write(text + "\n")
        stream.flush()
    return show


def print_refusal(stream: IO[str]) -> Refused:
    """Says each refused line as FILE:LINE: reason: why (the first DETAILS_KEPT)."""
    def say(path: str, line: int, reason: str, why: str) -> None:
        where = "%s:%d" % (clean(path), line) if line else clean(path)
        stream.write("import: %s: %s: %s\n" % (where, reason, why))
    return say


def summary(counts: Dict[str, Any]) -> List[str]:
    """The closing lines of `gc-console import`."""
    lines = ["import: %d new messages, %d already recorded, %d refused, %d not messages "
             "(acks, commands); %d lines in %d files" % (counts["new"], counts["duplicates"],
                                                       counts["refused"], counts["skipped"],
                                                       counts["lines"], counts["files"])]
    if counts["by_reason"]:
        lines.append("import: refused by reason: %s" % ", ".join(
            "%s %d" % kv for kv in sorted(counts["by_reason"].items())))
    if counts["refused"] > len(counts["refusals"]):
        lines.append("import: only the first %d refused lines are named above"
                     % len(counts["refusals"]))
    if counts["unreadable"]:
        lines.append("import: %d files could not be read" % counts["unreadable"])
    if counts.get("store_refused"):
        lines.append("import: the database refused %d rows (see the log above)"
                     % counts["store_refused"])
    return lines
