"""Flash full, emulated without root: the journal directory answers ENOSPC while a flag file exists.

A small size-capped filesystem (tmpfs, loop device) needs root, and making the
directory read-only does nothing against root, so the fault is injected in the
device's own Python instead, at the system calls agent/journal.py uses:

- `os.open` of a path under the journal directory: remembered; while full,
  creating a file that does not exist yet fails with ENOSPC (UBIFS, the DAL
  flash filesystem, cannot create files when full either);
- `os.write` to a remembered descriptor: ENOSPC while full;
- `os.close`: forgets the descriptor.

Everything else (stdout, sockets, other directories, reads, shrinking with
ftruncate) is untouched, as on a device whose journal has its own partition.
"Full" means: the flag file exists. The emulator creates it at the fault's
`at` and removes it after its `for` (`set_full(flag, True/False)`), so the
device process needs no signal and no thread.

Loaded in the device process before the agent starts, from the emulator's
`sitecustomize` (or any start-up hook), either directly:

    import flashfull; flashfull.install("/tmp/dev1/journal", "/tmp/dev1/FLASH_FULL")

or from the environment, which does nothing when the variables are unset:

    GC_EMULATOR_JOURNAL_DIR=/tmp/dev1/journal GC_EMULATOR_FLASH_FULL=/tmp/dev1/FLASH_FULL
    import flashfull; flashfull.install_from_env()

Standard library only, Python 3.6+, no imports from this repository: the
device process may put this file's folder on sys.path and import it as
`flashfull`. Not covered: writes through Python file objects (`open(...,
"wb").write`), which the journal does not use.
"""

import errno
import os
from typing import Callable, Dict, Mapping, Optional, Set

ENV_DIR = "GC_EMULATOR_JOURNAL_DIR"
ENV_FLAG = "GC_EMULATOR_FLASH_FULL"

_originals: Dict[str, Callable] = {}
_fds: Set[int] = set()
_state = {"dir": "", "flag": ""}
stats = {"refused_writes": 0, "refused_creates": 0}   # what the fault has refused so far


def _under(path: object) -> bool:
    try:
        full = os.path.realpath(os.fsdecode(path))   # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return full == _state["dir"] or full.startswith(_state["dir"] + os.sep)


def _full() -> bool:
    return os.path.exists(_state["flag"])


def _enospc(what: str) -> OSError:
    return OSError(errno.ENOSPC, "%s (emulated flash full)" % os.strerror(errno.ENOSPC), what)


def _open(path, flags, mode=0o777, *args, **kwargs):
    ours = isinstance(path, (str, bytes, os.PathLike)) and _under(path)
    if ours and flags & os.O_CREAT and _full() and not os.path.exists(path):
        stats["refused_creates"] += 1
        raise _enospc(os.fsdecode(path))
    fd = _originals["open"](path, flags, mode, *args, **kwargs)
    if ours:
        _fds.add(fd)
    return fd


def _write(fd, data):
    if fd in _fds and _full():
        stats["refused_writes"] += 1
        raise _enospc("fd %d" % fd)
    return _originals["write"](fd, data)


def _close(fd):
    _fds.discard(fd)
    return _originals["close"](fd)


def install(directory: str, flag: str) -> None:
    """Make `directory` answer ENOSPC whenever the file `flag` exists. Idempotent;
    a second call moves the fault to the new directory and flag."""
    _state["dir"] = os.path.realpath(directory)
    _state["flag"] = os.path.abspath(flag)
    if _originals:
        return
    for name, replacement in (("open", _open), ("write", _write), ("close", _close)):
        _originals[name] = getattr(os, name)
        setattr(os, name, replacement)


def install_from_env(environ: Optional[Mapping[str, str]] = None) -> bool:
    """install() from GC_EMULATOR_JOURNAL_DIR and GC_EMULATOR_FLASH_FULL; False when unset."""
    env = os.environ if environ is None else environ
    directory, flag = env.get(ENV_DIR, ""), env.get(ENV_FLAG, "")
    if not directory or not flag:
        return False
    install(directory, flag)
    return True


def uninstall() -> None:
    """Put the os functions back (for tests)."""
    for name, original in _originals.items():
        setattr(os, name, original)
    _originals.clear()
    _fds.clear()


def set_full(flag: str, full: bool) -> None:
    """Emulator side: start (True) or end (False) the fault by creating or removing the flag."""
    if full:
        with open(flag, "w") as handle:
            handle.write("flash full\n")
    else:
        try:
            os.remove(flag)
        except FileNotFoundError:
            pass
