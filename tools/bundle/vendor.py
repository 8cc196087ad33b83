"""Pure-Python copies of paho-mqtt and pyserial, taken from wheels fetched at `make setup`.

Nothing is downloaded here: `make setup` puts the wheels in .venv/wheels
(`pip download`/`pip wheel --no-deps`), and a bundle is built from them, so
the same inputs always give the same bundle. paho-mqtt 2.x needs Python 3.7+,
so a bundle for a 3.6 device carries 1.6.x.

Only what runs on a Linux device goes in: no tests, docs, type stubs or
compiled files, and none of pyserial's Windows/Java/.NET/macOS backends or
its terminal program. Each library's licence files go under licenses/.
"""

import fnmatch
import os
import re
import zipfile
from typing import Dict, List, NamedTuple, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_VENDOR = os.path.join(REPO, ".venv", "wheels")

# Never shipped: byte code, stubs, tests, docs, and code for other platforms.
_DROP = ("*.pyc", "*.pyo", "*.pyi", "*/py.typed", "*/__pycache__/*", "*/tests/*", "*/test/*",
         "*/docs/*", "serial/serialwin32.py", "serial/win32.py", "serial/serialjava.py",
         "serial/serialcli.py", "serial/tools/list_ports_windows.py",
         "serial/tools/list_ports_osx.py", "serial/tools/miniterm.py", "serial/__main__.py")


class Library(NamedTuple):
    """One vendored distribution: its wheel, its version and the files taken from it."""

    name: str
    version: str
    wheel: str
    files: Dict[str, bytes]


class VendorError(Exception):
    """A wheel the bundle needs is missing; the message says how to get it."""


def paho_series(python: Tuple[int, int]) -> str:
    """Which paho-mqtt a device with this Python runs: 1.6 below 3.7, 2 otherwise."""
    return "1.6" if python < (3, 7) else "2"


def libraries(python: Tuple[int, int], vendor: str = DEFAULT_VENDOR) -> List[Library]:
    """paho-mqtt (the series this Python needs) and pyserial, read from wheels in `vendor`."""
    paho = "1.6." if paho_series(python) == "1.6" else "2."
    return [_library(vendor, "paho-mqtt", "paho_mqtt", paho, ("paho/",)),
            _library(vendor, "pyserial", "pyserial", "3.", ("serial/",))]


def _library(vendor: str, name: str, stem: str, series: str, packages: Tuple[str, ...]) -> Library:
    wheel = _find_wheel(vendor, name, stem, series)
    version = os.path.basename(wheel).split("-")[1]
    files: Dict[str, bytes] = {}
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            if member.endswith("/"):
                continue
            if member.startswith(packages) and not _dropped(member):
                files[member] = archive.read(member)
            elif re.match(r"[^/]+\.dist-info/(licenses/|LICENSE|COPYING)", member):
                files["licenses/%s/%s" % (name, member.rsplit("/", 1)[1])] = archive.read(member)
    if not any(m.endswith(".py") for m in files):
        raise VendorError("%s has no Python files under %s" % (wheel, ", ".join(packages)))
    return Library(name, version, wheel, files)


def _find_wheel(vendor: str, name: str, stem: str, series: str) -> str:
    hint = ("run `make setup` (it fetches the wheels into .venv/wheels), or pass --vendor DIR "
            "with a folder holding %s-%s*-py3-none-any.whl" % (stem, series))
    if not os.path.isdir(vendor):
        raise VendorError("no vendor folder %s: %s" % (vendor, hint))
    found = sorted((f for f in os.listdir(vendor)
                    if f.startswith("%s-%s" % (stem, series)) and f.endswith(".whl")),
                   key=_version_key)
    if not found:
        raise VendorError("no %s %sx wheel in %s: %s" % (name, series, vendor, hint))
    return os.path.join(vendor, found[-1])


def _version_key(filename: str) -> Tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", filename.split("-")[1]))


def _dropped(member: str) -> bool:
    return any(fnmatch.fnmatch(member, pattern) for pattern in _DROP)
