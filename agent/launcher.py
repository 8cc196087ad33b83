# Run a script as `__main__` in this interpreter, exactly as `python SCRIPT ARGS` would.
#
# Same `sys.argv`, `sys.path[0]` (the script's directory), `__file__`,
# `__name__`, tracebacks without our frames, and exit status: 0, the
# `SystemExit` code, 1 after an uncaught exception, and death by SIGINT after
# an uncaught KeyboardInterrupt (as CPython 3.8+ does).

import builtins
import os
import signal
import sys
import types
from importlib.machinery import SourceFileLoader

from .lean import is_zip

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, List, Optional, Tuple  # noqa: F401 (type comments)


def split_at_dashes(argv):  # type: (List[str]) -> Tuple[List[str], List[str]]
    # `OURS -- SCRIPT ARGS` -> (OURS, [SCRIPT, ARGS...]): what follows `--` is never ours to parse.
    if "--" in argv:
        at = argv.index("--")
        return argv[:at], argv[at + 1:]
    return argv, []


def exit_status(code):  # type: (object) -> int
    # The process exit status Python gives for `SystemExit(code)`.
    if code is None:
        return 0
    if isinstance(code, int) and not isinstance(code, bool):
        return code & 0xFF
    if isinstance(code, bool):
        return int(code)
    try:
        sys.stderr.write("%s\n" % (code,))
    except Exception:
        pass
    return 1


class ScriptResult(object):
    # What running the script came to: an exit status, or a signal to die by.

    def __init__(self, status, die_by=None):  # type: (int, Optional[int]) -> None
        self.status = status
        self.die_by = die_by


def run_script(argv):  # type: (List[str]) -> ScriptResult
    # Execute argv[0] as __main__ with sys.argv = argv (`-m MODULE ARGS`: as `python -m`).
    if argv and argv[0] == "-m":
        return run_module(argv[1:])
    if argv and argv[0].startswith("-m") and len(argv[0]) > 2:
        return run_module([argv[0][2:]] + argv[1:])   # `-mMODULE`, as python accepts it
    path = argv[0]
    full = os.path.abspath(path)
    if os.path.isdir(full) or is_zip(full):
        return _run_main_module(argv, full)
    try:
        with open(full, "rb") as handle:
            source = handle.read()
    except OSError as exc:
        sys.stderr.write("%s: can't open file %r: [Errno %d] %s\n"
                         % (os.path.basename(sys.executable) or "python", full,
                            exc.errno or 0, exc.strerror or exc))
        return ScriptResult(2)
    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=full, __builtins__=builtins, __loader__=SourceFileLoader(
        "__main__", full), __spec__=None, __package__=None, __cached__=None)
    sys.modules["__main__"] = main
    sys.argv[:] = list(argv)
    sys.path[0] = os.path.dirname(full)
    return _outcome(lambda: exec(compile(source, full, "exec", dont_inherit=True), main.__dict__))


def run_module(argv):  # type: (List[str]) -> ScriptResult
    # `python -m MODULE ARGS`: runpy finds MODULE (a package runs its __main__),
    # sets sys.argv[0] to the module's file, and sys.path[0] is the working
    # directory ('' on 3.6, the full path from 3.7 on, as each Python does).
    if not argv:
        sys.stderr.write("Argument expected for the -m option\n")
        return ScriptResult(2)
    import runpy
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main
    sys.argv[:] = ["-m"] + list(argv[1:])   # what python has in argv[0] until runpy finds the file
    sys.path[0] = "" if sys.version_info < (3, 7) else os.getcwd()
    name = argv[0]
    return _outcome(lambda: runpy._run_module_as_main(name, alter_argv=True))


def _run_main_module(argv, full):  # type: (List[str], str) -> ScriptResult
    # A directory or zip file (zipapp .pyz) with __main__.py, as Python runs one:
    # the path itself first on sys.path, then runpy's main-module machinery.
    import runpy
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main
    sys.argv[:] = list(argv)
    sys.path[0] = full
    # The private helper behind `python -m` and `python DIR`: same frames,
    # same "can't find '__main__' module" message (3.6 to 3.13).
    return _outcome(lambda: runpy._run_module_as_main("__main__", alter_argv=False))


def _outcome(run):  # type: (Any) -> ScriptResult
    # Run the script and turn how it ended into what Python would exit with.
    try:
        run()
    except SystemExit as exc:
        return ScriptResult(exit_status(exc.code))
    except KeyboardInterrupt:
        _print_exception(skip=2)   # our two frames: this one and the lambda
        return ScriptResult(130, die_by=signal.SIGINT)
    except BaseException:
        _print_exception(skip=2)
        return ScriptResult(1)
    return ScriptResult(0)


def _print_exception(skip):  # type: (int) -> None
    # Print the current exception through sys.excepthook, minus our own frames.
    kind, value, tb = sys.exc_info()
    for _ in range(skip):
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    if value is not None:
        value.__traceback__ = tb
    try:
        sys.excepthook(kind, value, tb)
    except Exception:
        pass


def die_by(signum):  # type: (int) -> None
    # End the process by `signum` with its default action, as Python does after ^C.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
