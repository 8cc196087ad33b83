# `stdout:` and `file:///path` transports: schema-v1 JSON, one message a line.
#
# `stdout:` writes whole lines straight to file descriptor 1, never through
# `sys.stdout`: the application's own writes hold that object's lock, and the
# agent must not wait on it (nor make the application wait on ours).
#
# `file:///path?max=10M&keep=1` appends to a file and rotates it to PATH.1 ...
# PATH.KEEP when it passes `max`, so a device's flash never fills up.

import os

from ..errors import TransportError
from ..lean import query_items, split_url
from ..units import parse_size
from .base import Transport

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any  # noqa: F401 (type comments)

    from ..outbox import Outgoing  # noqa: F401 (type comments)

DEFAULT_MAX = 10 * 1024 * 1024


def _write_all(fd, data):  # type: (int, bytes) -> None
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class StdoutTransport(Transport):
    # JSON lines on the process's standard output.

    scheme = "stdout"

    def send(self, item):  # type: (Outgoing) -> bool
        try:
            _write_all(1, item.body + b"\n")
        except OSError as exc:
            raise TransportError("stdout: %s" % (exc.strerror or exc)) from exc
        return True


def parse_file_url(url):  # type: (str) -> Any
    # file:///path?max=10M&keep=1 -> (path, max_bytes, keep); ValueError says what is wrong.
    _, netloc, path, query = split_url(url)
    if netloc or not path.startswith("/"):
        raise ValueError("%r: a file URL needs three slashes and an absolute path: file:///path"
                         % url)
    if not path or path.endswith("/"):
        raise ValueError("%r names no file" % url)
    options = {}
    for name, value in query_items(query):
        options.setdefault(name, []).append(value)
    unknown = sorted(set(options) - {"max", "keep"})
    if unknown:
        raise ValueError("%r: unknown option %s (known: max, keep)" % (url, ", ".join(unknown)))
    max_bytes = parse_size(options["max"][-1]) if "max" in options else DEFAULT_MAX
    keep = int(options["keep"][-1]) if "keep" in options else 1
    if max_bytes < 4096 or not 0 <= keep <= 9:
        raise ValueError("%r: max must be at least 4K and keep 0..9" % url)
    return path, max_bytes, keep


class FileTransport(Transport):
    # JSON lines appended to a file, rotated at a size bound.

    scheme = "file"

    @classmethod
    def check_url(cls, url):  # type: (str) -> None
        parse_file_url(url)

    def __init__(self, url, context=None):  # type: (str, Any) -> None
        super(FileTransport, self).__init__(url, context)
        self.path, self.max_bytes, self.keep = parse_file_url(url)
        self._fd = -1
        self._size = 0

    def open(self):  # type: () -> None
        try:
            directory = os.path.dirname(self.path)
            if directory and not os.path.isdir(directory):
                os.makedirs(directory)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._size = os.fstat(self._fd).st_size
        except OSError as exc:
            raise TransportError("%s: %s" % (self.path, _why(self.path, exc))) from exc

    def send(self, item):  # type: (Outgoing) -> bool
        if self._fd < 0:
            self.open()
        line = item.body + b"\n"
        try:
            if self._size and self._size + len(line) > self.max_bytes:
                self._rotate()
            _write_all(self._fd, line)
            self._size += len(line)
        except OSError as exc:
            self.close()   # reopen on the next try: the file may have been removed
            raise TransportError("%s: %s" % (self.path, exc.strerror or exc)) from exc
        return True

    def _rotate(self):  # type: () -> None
        os.close(self._fd)
        self._fd = -1
        if self.keep == 0:
            os.unlink(self.path)
        else:
            for n in range(self.keep - 1, 0, -1):
                if os.path.exists("%s.%d" % (self.path, n)):
                    os.replace("%s.%d" % (self.path, n), "%s.%d" % (self.path, n + 1))
            os.replace(self.path, self.path + ".1")
        self.open()

    def close(self):  # type: () -> None
        if self._fd >= 0:
            try:
                os.close(self._fd)
            finally:
                self._fd = -1


def _why(path, exc):  # type: (str, OSError) -> str
    # What is wrong with `path`, for people: "File exists" from makedirs means a file
    # sits where a directory of the path should be.
    parent = os.path.dirname(path)
    while parent and parent != os.path.dirname(parent):
        if os.path.exists(parent) and not os.path.isdir(parent):
            return "%s is a file, not a directory" % parent
        parent = os.path.dirname(parent)
    return str(exc.strerror or exc)
