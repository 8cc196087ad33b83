# Readings -> `Sample`: the agent's view of memory and the collector.
#
# `Probe` is the facade; the memory backend is chosen once, at construction:
#
# - ``proc``: `/proc/meminfo` and `/proc/self/statm`, both kept open and read
#   with `os.pread` (about 1 us a read, against ~11 us to open each time); first
#   wherever it works (every Linux, DAL included: exact, documented units, no daemon);
# - ``digidevice``: `digidevice.runt` ("system.ram.available"), as on a Digi device
#   without a usable /proc, or when a profile asks for it (`probe = digidevice`);
# - ``psutil``: on desktops without /proc;
# - ``none``: RSS from getrusage's peak only, when nothing better exists.
#
# RSS always comes from /proc/self/statm where it exists, whatever the backend.
# `proc_root` and `sys_root` point elsewhere for tests (tests/fixtures/).

import gc
import os
import sys
import time

from .gcwatch import PauseWatch
from .lean import record

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Callable, Optional, Tuple  # noqa: F401 (type comments)

_UNLIMITED = 1 << 60   # cgroup "no limit" values are near 2**63


class Sample(record(
        "Sample",
        "ts",                                   # float: wall clock (time.time)
        "mono",                                 # float: monotonic clock, for rules
        "mem_free_kb",                          # int: device memory available (MemAvailable)
        "mem_total_kb",                         # int
        "rss_kb",                               # int: this process
        "ceiling_kb",                           # int: what this process may use at most
        "cpu_s",                                # float: this process's CPU time, for idle detection
        "gc_enabled",                           # bool
        "gc_count",                             # Tuple[int, ...]
        "gc_collections",                       # Tuple[int, ...]
        "gc_collected",                         # int: since interpreter start, all generations
        "gc_uncollectable",                     # int
        "gc_pause_ms_total",                    # float: since the previous sample
        "gc_pause_ms_max",                      # float
)):
    # One reading. Memory in KB; times in seconds unless named _ms.

    __slots__ = ()


class Ceiling(record(
        "Ceiling",
        "kb",                                   # int
        "source",                               # str: profile, cgroup-v2, cgroup-v1, rlimit-as, ram
        "candidates",                           # Tuple[Tuple[str, int], ...]
)):
    # The memory ceiling and where each candidate limit came from.

    __slots__ = ()


def gc_flavour():  # type: () -> str
    # Which collector this interpreter runs; see docs/field-facts.md, "CPython's collector".
    free_threaded = False
    if sys.version_info >= (3, 13):   # no free-threaded builds before; sysconfig costs RSS
        try:
            import sysconfig
            free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
        except Exception:
            pass
    if free_threaded:
        return "free-threaded"
    version = sys.version_info[:3]
    if (3, 14, 0) <= version < (3, 14, 5):
        return "incremental"
    if version >= (3, 13):
        return "generational-2000"
    return "generational-700"


# --- /proc readers -------------------------------------------------------------

class _PreadFile(object):
    # A file kept open and re-read from offset 0 on each call.

    def __init__(self, path, size):  # type: (str, int) -> None
        self.path = path
        self._size = size
        self._fd = os.open(path, os.O_RDONLY)

    def read(self):  # type: () -> bytes
        return os.pread(self._fd, self._size, 0)

    def close(self):  # type: () -> None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _meminfo_kb(data, *names):  # type: (bytes, *bytes) -> Tuple[int, ...]
    found = dict.fromkeys(names, 0)
    # MemTotal, MemFree, MemAvailable are the first three lines (Linux 3.14+):
    # look there first and walk the other fifty lines only when one is missing.
    head = data.split(b"\n", 3)
    for line in head[:3]:
        key, _, rest = line.partition(b":")
        if key in found:
            found[key] = int(rest.split()[0])
    if all(found.values()):
        return tuple(found[n] for n in names)
    for line in data.split(b"\n"):
        key, _, rest = line.partition(b":")
        if key in found:
            found[key] = int(rest.split()[0])
    return tuple(found[n] for n in names)


class _ProcMemory(object):
    name = "proc"

    def __init__(self, proc_root):  # type: (str) -> None
        self._meminfo = _PreadFile(os.path.join(proc_root, "meminfo"), 4096)
        self.read()   # fail now, at start, if the format is unusable

    def read(self):  # type: () -> Tuple[int, int]
        data = self._meminfo.read()
        available, total, free = _meminfo_kb(data, b"MemAvailable", b"MemTotal", b"MemFree")
        return (available or free), total   # MemAvailable: Linux 3.14+

    def close(self):  # type: () -> None
        self._meminfo.close()


class _DigiMemory(object):
    name = "digidevice"

    def __init__(self, proc_root):  # type: (str) -> None
        from digidevice import runt  # the Digi way; present on DAL devices only
        start = getattr(runt, "start", None)
        if start is not None:   # Digi's stubs: start() before any get(); stop() when done
            start()
        self._runt = runt
        self._total = 0
        try:
            with open(os.path.join(proc_root, "meminfo"), "rb") as handle:
                self._total = _meminfo_kb(handle.read(4096), b"MemTotal")[0]
        except (OSError, ValueError, IndexError):
            pass
        try:
            self.read()
        except Exception:
            self.close()   # falling back to another backend: leave runtd as we found it
            raise

    def read(self):  # type: () -> Tuple[int, int]
        value = self._runt.get("system.ram.available")
        if value is None:   # "None if the path is not populated" (Digi's stubs)
            raise ValueError("runt has no system.ram.available")
        return runt_ram_kb(value), self._total

    def close(self):  # type: () -> None
        stop = getattr(self._runt, "stop", None)
        if stop is not None:
            try:
                stop()
            except Exception:
                pass


_UNITS = {"": 0, "b": 1, "bytes": 1, "k": 1024, "kb": 1024, "m": 1 << 20, "mb": 1 << 20,
          "g": 1 << 30, "gb": 1 << 30}


def runt_ram_kb(value):  # type: (object) -> int
    # runt's `system.ram.available` in KB. Its unit is undocumented: Digi's own sample
    # reads it with float() and labels it MB, the emulator has published bytes. A unit
    # written after the number wins; a bare number under 2**20 is MB (as bytes it would
    # be under 1 MB free), a larger one bytes. Raises ValueError for anything else.
    text = str(value).strip().lower().replace(" ", "")
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(number):]
    if unit not in _UNITS:
        raise ValueError("runt's system.ram.available %r: unknown unit %r" % (value, unit))
    amount = float(number)
    if amount < 0 or amount != amount or amount == float("inf"):
        raise ValueError("runt's system.ram.available %r is not a size" % (value,))
    scale = _UNITS[unit] or ((1 << 20) if amount < (1 << 20) else 1)
    return int(amount * scale) // 1024


class _PsutilMemory(object):
    name = "psutil"

    def __init__(self, proc_root):  # type: (str) -> None
        import psutil
        self._vm = psutil.virtual_memory
        self.read()

    def read(self):  # type: () -> Tuple[int, int]
        vm = self._vm()
        return vm.available // 1024, vm.total // 1024

    def close(self):  # type: () -> None
        pass


class _NoMemory(object):
    name = "none"

    def __init__(self, proc_root):  # type: (str) -> None
        pass

    def read(self):  # type: () -> Tuple[int, int]
        return 0, 0

    def close(self):  # type: () -> None
        pass


_BACKENDS = (("proc", _ProcMemory), ("digidevice", _DigiMemory), ("psutil", _PsutilMemory))


def _choose_memory(wanted, proc_root):  # type: (str, str) -> Any
    if wanted != "auto":
        return dict(_BACKENDS)[wanted](proc_root)   # asked for by name: let it fail loudly
    for _, backend in _BACKENDS:
        try:
            return backend(proc_root)
        except Exception:
            continue
    return _NoMemory(proc_root)


class _Rss(object):
    # Resident set size of this process, in KB.

    def __init__(self, proc_root):  # type: (str) -> None
        self._page_kb = os.sysconf("SC_PAGE_SIZE") // 1024 if hasattr(os, "sysconf") else 4
        try:
            self._statm = _PreadFile(os.path.join(proc_root, "self", "statm"), 128)
            self.read = self._read_statm
            self.read()
        except (OSError, ValueError, IndexError):
            self._statm = None
            self.read = self._read_rusage

    def _read_statm(self):  # type: () -> int
        return int(self._statm.read().split()[1]) * self._page_kb

    def _read_rusage(self):  # type: () -> int
        import resource  # peak, not current: the best a platform without /proc offers
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak // 1024 if sys.platform == "darwin" else peak

    def close(self):  # type: () -> None
        if self._statm is not None:
            self._statm.close()


# --- the ceiling ------------------------------------------------------------------

def _read_int(path):  # type: (str) -> Optional[int]
    try:
        with open(path) as handle:
            text = handle.read(64).strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if 0 < value < _UNLIMITED else None


def _cgroup_limits(proc_root, sys_root):  # type: (str, str) -> Any
    # Yield (source, bytes) for the memory limits of our cgroup, v2 and v1.
    try:
        with open(os.path.join(proc_root, "self", "cgroup")) as handle:
            lines = handle.read(8192).splitlines()
    except OSError:
        return
    base = os.path.join(sys_root, "fs", "cgroup")
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        rel = path.lstrip("/")
        if hierarchy == "0" and controllers == "":
            candidates = [os.path.join(base, rel, "memory.max"), os.path.join(base, "memory.max")]
            source = "cgroup-v2"
        elif "memory" in controllers.split(","):
            candidates = [os.path.join(base, "memory", rel, "memory.limit_in_bytes"),
                          os.path.join(base, "memory", "memory.limit_in_bytes")]
            source = "cgroup-v1"
        else:
            continue
        # A container sees its own cgroup at the mount root, so try both places.
        for candidate in candidates:
            value = _read_int(candidate)
            if value is not None:
                yield source, value
                break


def _address_space_limit(proc_root):  # type: (str) -> Optional[int]
    # The soft RLIMIT_AS in bytes (-1: none), from /proc/self/limits where there is one:
    # the resource module is an extension, about 30 KB of RSS (docs/footprint.md).
    try:
        with open(os.path.join(proc_root, "self", "limits")) as handle:
            for line in handle:
                if line.startswith("Max address space "):
                    soft = line[18:].split()[0]
                    return -1 if soft == "unlimited" else int(soft)
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
        return resource.getrlimit(resource.RLIMIT_AS)[0]
    except (ImportError, ValueError, OSError):
        return None


def find_ceiling(profile_limit_kb, mem_total_kb, proc_root="/proc", sys_root="/sys"):
    # type: (Optional[int], int, str, str) -> Ceiling
    # The smallest of the profile's limit, cgroup v1/v2, RLIMIT_AS and physical RAM.
    candidates = []
    if profile_limit_kb:
        candidates.append(("profile", profile_limit_kb))
    for source, value in _cgroup_limits(proc_root, sys_root):
        candidates.append((source, value // 1024))
    soft = _address_space_limit(proc_root)
    if soft is not None and 0 < soft < _UNLIMITED:
        candidates.append(("rlimit-as", soft // 1024))
    if mem_total_kb:
        candidates.append(("ram", mem_total_kb))
    if not candidates:
        return Ceiling(0, "unknown", ())
    source, kb = min(candidates, key=lambda c: c[1])
    return Ceiling(kb, source, tuple(candidates))


# --- the facade --------------------------------------------------------------------

class Probe(object):
    # Takes `Sample`s. Construct once at start; `sample()` is the hot path.

    def __init__(self, memory_limit_kb=None, backend="auto", proc_root="/proc", sys_root="/sys",
                 clock=time.time, monotonic=time.monotonic):
        # type: (Optional[int], str, str, str, Callable[[], float], Callable[[], float]) -> None
        self._memory = _choose_memory(backend, proc_root)
        self._rss = _Rss(proc_root)
        self._clock = clock
        self._monotonic = monotonic
        self._cpu = time.process_time
        self.pauses = PauseWatch()
        self.pauses.install()
        total = self._memory.read()[1]
        self.ceiling = find_ceiling(memory_limit_kb, total, proc_root, sys_root)
        self.backend = self._memory.name

    def rss_kb(self):  # type: () -> int
        # Current RSS only: what actions read before and after a collection.
        return self._rss.read()

    def sample(self):  # type: () -> Sample
        # Read everything once. Pause totals are since the previous sample.
        free, total = self._memory.read()
        stats = gc.get_stats()
        pause_total, pause_max, _ = self.pauses.take()
        return Sample(
            self._clock(), self._monotonic(), free, total, self._rss.read(), self.ceiling.kb,
            self._cpu(), gc.isenabled(), gc.get_count(),
            tuple(s["collections"] for s in stats),
            sum(s["collected"] for s in stats), sum(s["uncollectable"] for s in stats),
            pause_total, pause_max)

    def close(self):  # type: () -> None
        # Release the open files and the gc hook.
        self.pauses.uninstall()
        self._memory.close()
        self._rss.close()
