"""A real kernel memory limit for one emulated device: a child memory cgroup.

A Digi gateway enforces a script's "Maximum memory" in the kernel, so the
emulator does the same where it can: as root it makes a child of its own
memory cgroup (v2 `memory.max`, v1 `memory.limit_in_bytes`), starts each of
the device's scripts inside it, and lets the kernel's OOM killer end a script
that goes over. That counts everything the kernel charges (page cache,
spikes between two RSS readings), which a poll of /proc/PID/statm misses.
The device's agent, with `memory_limit = auto`, finds the same limit
(`ceiling_source` cgroup-v1 or cgroup-v2) as it would on the device.

An OOM kill is recognised by its signature: the script died by SIGKILL and the
cgroup's own count of OOM kills went up (v1 `memory.oom_control` oom_kill,
v2 `memory.events` oom_kill; older v1 kernels without that count: `failcnt`
went up). See docs/field.md, "Memory limits in the emulator".
"""

import os
import time
from typing import List, Optional, Tuple

CGROUP_ROOT = "/sys/fs/cgroup"


class MemoryCgroup(object):
    """One child memory cgroup with a limit; `remove()` when the run is over."""

    def __init__(self, path: str, version: int, limit_bytes: int) -> None:
        self.path = path
        self.version = version
        self.limit_bytes = limit_bytes

    @property
    def source(self) -> str:
        """What the agent inside reports as its ceiling_source."""
        return "cgroup-v%d" % self.version

    def describe(self) -> str:
        return "a cgroup-v%d memory limit (%s = %d, the kernel's OOM killer)" % (
            self.version, "memory.max" if self.version == 2 else "memory.limit_in_bytes",
            self.limit_bytes)

    def wrap(self, command: List[str]) -> List[str]:
        """`command`, entering the cgroup before exec: the same process, limited from its
        first byte (moving it in after Popen would leave its start-up outside)."""
        procs = os.path.join(self.path, "cgroup.procs")
        return ["/bin/sh", "-c", 'echo $$ > "$0" || exit 125; exec "$@"', procs] + list(command)

    def oom_kills(self) -> int:
        """How many OOM kills the kernel has done in this cgroup (or failcnt on old v1)."""
        if self.version == 2:
            return _field(os.path.join(self.path, "memory.events"), "oom_kill")
        found = _field(os.path.join(self.path, "memory.oom_control"), "oom_kill", missing=-1)
        if found >= 0:
            return found
        return _read_int(os.path.join(self.path, "memory.failcnt"))

    def peak_kb(self) -> int:
        """The most the kernel ever charged to the cgroup (0 when it cannot say)."""
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        return _read_int(os.path.join(self.path, name)) // 1024

    def reset_peak(self) -> None:
        if self.version == 1:
            _write(os.path.join(self.path, "memory.max_usage_in_bytes"), "0")

    def remove(self) -> bool:
        """rmdir the cgroup (once its processes are gone); True when it is gone."""
        for _ in range(50):   # the kernel may take a moment to let go of a reaped process
            try:
                os.rmdir(self.path)
            except FileNotFoundError:
                return True
            except OSError:
                time.sleep(0.02)
                continue
            return True
        return False


def make(name: str, limit_bytes: int, proc_root: str = "/proc",
         root: str = CGROUP_ROOT) -> Tuple[Optional[MemoryCgroup], str]:
    """A child of our own memory cgroup named `name`, limited to `limit_bytes`;
    (None, why not) when this machine or user cannot make one."""
    parent, version = own_memory_cgroup(proc_root, root)
    if parent is None:
        return None, "no memory cgroup controller found (%s)" % root
    _remove_stale(parent)
    path = os.path.join(parent, name)
    try:
        os.mkdir(path)
    except FileExistsError:
        pass
    except OSError as exc:
        return None, "cannot create %s: %s (make real limits as root)" % (path, exc.strerror or exc)
    limit_file = "memory.max" if version == 2 else "memory.limit_in_bytes"
    if version == 2 and not os.path.exists(os.path.join(path, limit_file)):
        # the memory controller must be delegated to our children first
        _write(os.path.join(parent, "cgroup.subtree_control"), "+memory")
    if not _write(os.path.join(path, limit_file), str(int(limit_bytes))):
        _rmdir(path)
        return None, "cannot set %s in %s" % (limit_file, path)
    if version == 1:   # swap would let the script live past the limit: no swap either
        _write(os.path.join(path, "memory.memsw.limit_in_bytes"), str(int(limit_bytes)))
        _write(os.path.join(path, "memory.swappiness"), "0")
    else:
        _write(os.path.join(path, "memory.swap.max"), "0")
    return MemoryCgroup(path, version, int(limit_bytes)), ""


def own_memory_cgroup(proc_root: str = "/proc", root: str = CGROUP_ROOT) -> Tuple[Optional[str], int]:
    """(directory of this process's memory cgroup, 1 or 2), or (None, 0)."""
    try:
        with open(os.path.join(proc_root, "self", "cgroup")) as handle:
            lines = handle.read(8192).splitlines()
    except OSError:
        return None, 0
    v2_path = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, rel = parts
        rel = rel.lstrip("/")
        if "memory" in controllers.split(","):
            for candidate in (os.path.join(root, "memory", rel), os.path.join(root, "memory")):
                if os.path.exists(os.path.join(candidate, "memory.limit_in_bytes")):
                    return candidate, 1
        elif hierarchy == "0" and controllers == "":
            v2_path = rel
    if v2_path is not None:
        # a container sees its own cgroup at the mount root, so try both places
        for candidate in (os.path.join(root, v2_path), root):
            if "memory" in _read(os.path.join(candidate, "cgroup.controllers")).split():
                return candidate, 2
    return None, 0


def _remove_stale(parent: str) -> None:
    """Cgroups an emulator left behind when it was killed (gc-emulator-PID-*, PID gone)."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        parts = name.split("-")
        if name.startswith("gc-emulator-") and len(parts) > 2 and parts[2].isdigit() \
                and not os.path.exists("/proc/%s" % parts[2]):
            _rmdir(os.path.join(parent, name))


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read(4096)
    except OSError:
        return ""


def _read_int(path: str) -> int:
    try:
        return int(_read(path).strip() or 0)
    except ValueError:
        return 0


def _field(path: str, key: str, missing: int = 0) -> int:
    for line in _read(path).splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == key:
            try:
                return int(words[1])
            except ValueError:
                return missing
    return missing


def _write(path: str, text: str) -> bool:
    try:
        with open(path, "w") as handle:
            handle.write(text)
        return True
    except OSError:
        return False


def _rmdir(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass
