# Command ids already run, kept on flash so a restart does not forget them.
#
# A captured signed command stays valid for its `window` (its `ts` must be
# within that of the device's clock). Ids kept only in memory would let it run
# again after the agent restarts inside that window; this file, beside the
# journal under `[buffer] flash`, remembers them across restarts.
#
# One line per accepted command: `TS ID-AS-JSON`, appended and fsynced before
# the command runs (only signed, verified commands are written, so nobody
# without the key can make the agent write flash). The file is bounded: when
# it holds twice `remember` lines, it is rewritten with the newest `remember`
# still inside the window (a temporary file renamed over it). Read back, it is
# size-checked first and every line validated; a damaged line is skipped.

import json
import os

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, List, Tuple  # noqa: F401 (type comments)

_LINE_MAX = 320   # bytes: a ts, a space, and a JSON string of at most 64 characters (UTF-8)


class ReplayIds(object):
    # The file of accepted command ids; never raises, counts its failures in `errors`.

    def __init__(self, path, remember, window):  # type: (str, int, float) -> None
        self.path = path
        self.remember = max(1, int(remember))
        self.window = float(window)
        self.errors = 0
        self._lines = 0
        self._kept = []  # type: List[Tuple[float, str]]

    def load(self, now):  # type: (float) -> List[str]
        # The ids accepted within `window` of `now`, oldest first, at most `remember`.
        kept = []  # type: List[Tuple[float, str]]
        try:
            with open(self.path, "rb") as handle:
                # The newest entries are at the end; a file grown past its bound
                # (a rewrite that failed) is read from where they are.
                limit = 2 * self.remember * _LINE_MAX
                handle.seek(max(0, os.fstat(handle.fileno()).st_size - limit))
                data = handle.read(limit)
        except FileNotFoundError:
            data = b""
        except OSError:
            self.errors += 1
            data = b""
        for line in data.split(b"\n"):
            entry = _parse(line)
            if entry is not None and abs(now - entry[0]) <= self.window:
                kept.append(entry)
        self._kept = kept[-self.remember:]
        self._lines = len(data.split(b"\n")) - 1
        return [ident for _, ident in self._kept]

    def add(self, ident, ts, now):  # type: (str, float, float) -> None
        # Remember one accepted id, on flash before the command runs.
        self._kept.append((ts, ident))
        self._kept = self._kept[-self.remember:]
        if self._lines + 1 >= 2 * self.remember:
            self._rewrite(now)
            return
        line = _line(ts, ident)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            self._lines += 1
        except OSError:
            self.errors += 1

    def _rewrite(self, now):  # type: (float) -> None
        self._kept = [e for e in self._kept if abs(now - e[0]) <= self.window]
        body = b"".join(_line(ts, i) for ts, i in self._kept)
        temporary = self.path + ".tmp"
        try:
            with open(temporary, "wb") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
            self._lines = len(self._kept)
        except OSError:
            self.errors += 1


def _line(ts, ident):  # type: (float, str) -> bytes
    return ("%r %s\n" % (float(ts), json.dumps(ident, ensure_ascii=False))).encode("utf-8")


def _parse(line):  # type: (bytes) -> Any
    # (ts, id) from one line, or None when it is not a valid entry.
    if not line or len(line) > _LINE_MAX:
        return None
    try:
        ts_text, ident = line.decode("utf-8").split(" ", 1)
        ts = float(ts_text)
        ident = json.loads(ident)
    except ValueError:
        return None
    if not isinstance(ident, str) or not 0 < len(ident) <= 64 or ts != ts:
        return None
    return ts, ident
