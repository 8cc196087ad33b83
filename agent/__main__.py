# Command line: python -m agent {check,run,decode} (see `python -m agent --help`).

import atexit
import logging
import os
import signal
import sys
import threading

from .cputime import thread_cpu
from .launcher import split_at_dashes

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, List, Optional  # noqa: F401 (type comments)

RUN_FLAGS = ("--profile", "--report", "--log")   # the run options that take a value


class RunArgs(object):
    # A `run` command line, as argparse would give it.

    command = "run"

    def __init__(self):  # type: () -> None
        self.profile = None   # type: Optional[str]
        self.report = None    # type: Optional[List[str]]
        self.log = None       # type: Optional[str]
        self.strict = False


def _plain_run(ours):  # type: (List[str]) -> Optional[RunArgs]
    # `run --profile P [--report URL]... [--log FILE] [--strict]` without argparse (which
    # the application would pay for in RSS: docs/footprint.md); None for anything else
    # (help, errors, abbreviations), which argparse then reads and answers as ever.
    if not ours or ours[0] != "run":
        return None
    args, rest = RunArgs(), list(ours[1:])
    while rest:
        word = rest.pop(0)
        flag, equals, value = word.partition("=")
        if flag == "--strict" and not equals:
            args.strict = True
            continue
        if flag not in RUN_FLAGS:
            return None
        if not equals:
            if not rest or rest[0].startswith("-"):
                return None
            value = rest.pop(0)
        if flag == "--report":
            args.report = (args.report or []) + [value]
        else:
            setattr(args, flag[2:], value)
    return args if args.profile is not None else None


def main(argv=None, began=None):  # type: (Optional[List[str]], Optional[float]) -> int
    # Entry point; returns the exit status. `began`: the thread's CPU clock when the
    # agent's own code started loading (`python -m agent`), else now.
    argv = list(sys.argv[1:] if argv is None else argv)
    if began is None:
        began = thread_cpu()   # from here to the script's start, CPU is the agent's (agent_cpu_ms)
    from .bundle import refuse_if_tampered
    tampered = refuse_if_tampered()   # from a gc-bundle .pyz: every file as built, or no start
    if tampered:
        sys.stderr.write("gc-agent: %s\n" % tampered)
        return 2
    ours, script = split_at_dashes(argv)
    plain = _plain_run(ours)
    if plain is not None:
        return _run(plain, script, began)
    from .cli import build_parser
    parser = build_parser()
    args, extra = parser.parse_known_args(ours)
    if extra:
        hint = " (put the script or -m MODULE after --: run --profile P -- %s)" % " ".join(extra) \
            if args.command == "run" else ""
        parser.error("unrecognized arguments: %s%s" % (" ".join(extra), hint))
    if args.command == "check":
        return _check(args.profiles, args.verbose)
    if args.command == "run":
        return _run(args, script, began)
    if args.command == "decode":
        from .decode import decode_file
        return decode_file(args.file, sys.stdout, sys.stderr, args.max_line)
    parser.print_help(sys.stderr)
    return 2


def _check(paths, verbose):  # type: (List[str], bool) -> int
    from .errors import ProfileError
    from .profile import describe, load
    status = 0
    for path in paths:
        try:
            profile = load(path)
        except ProfileError as exc:
            for problem in exc.problems:
                sys.stderr.write(str(problem) + "\n")
            status = 2
            continue
        if verbose:
            sys.stdout.write("%s: ok: %s\n" % (path, describe(profile)))
    return status


def _run(args, script, began):  # type: (RunArgs, List[str], float) -> int
    from . import running, start, stop
    from .errors import AgentError
    if args.log:
        _log_to(args.log)
    if script and not script[0].startswith("-m") and not os.path.exists(script[0]):
        profile = None   # nothing to watch: let the launcher say what Python says
    else:
        try:
            profile = _validated(args)
        except AgentError as exc:
            sys.stderr.write("gc-agent: %s\n" % exc)
            if not script or args.strict:
                return 2
            sys.stderr.write("gc-agent: running %s without the agent\n" % script[0])
            profile = None
    before_start = thread_cpu()
    from .identity import set_script
    set_script(script)   # `[agent] app = ${script}`: the script's or module's name
    started = profile is not None and start(profile, args.report)
    after_start = thread_cpu()   # start() counts its own CPU
    if started and profile.agent.signals:
        _install_signals(with_script=bool(script))
    from .launcher import die_by, run_script
    current = running()
    if current is not None:
        current.cpu.add(before_start - began + thread_cpu() - after_start)
    if not script:
        return _wait_for_signal(stop) if started else 2
    result = run_script(script)
    if result.die_by is not None:
        # Python runs atexit handlers (the script's, then our stop) and dies by
        # the signal; do the same, in that order.
        atexit._run_exitfuncs()
        die_by(result.die_by)
    return result.status


def _validated(args):  # type: (RunArgs) -> Any
    # The profile, with its device id resolvable and every --report URL usable.
    from .errors import TransportError
    from .profile import load, resolve_device_id
    from .transports import check_url
    profile = load(args.profile)
    resolve_device_id(profile)   # ${serial}, ${env:NAME}: only knowable here, at start
    for url in args.report or ():
        try:
            check_url(url)
        except ValueError as exc:
            raise TransportError("--report %s" % exc) from exc
    return profile


def _log_to(path):  # type: (str) -> None
    try:
        handler = logging.FileHandler(path)
    except OSError as exc:
        sys.stderr.write("gc-agent: --log %s: %s; diagnostics go nowhere\n"
                         % (path, exc.strerror or exc))
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logging.getLogger("gcagent").addHandler(handler)
    logging.getLogger("gcagent").setLevel(logging.INFO)


_stop_requested = threading.Event()


def _install_signals(with_script):  # type: (bool) -> None
    from . import running

    def on_usr1(signum, frame):
        current = running()
        if current is not None:
            current.post("signal", wake=True)

    def on_term(signum, frame):
        from . import stop
        stop()
        if with_script:   # die as the script would have without us
            from .launcher import die_by
            die_by(signum)
        _stop_requested.set()

    if threading.current_thread() is not threading.main_thread():
        return
    for signum, handler in ((signal.SIGUSR1, on_usr1), (signal.SIGTERM, on_term),
                            (signal.SIGHUP, on_term)):
        if signal.getsignal(signum) == signal.SIG_DFL:
            signal.signal(signum, handler)
    if not with_script:   # with a script, ^C stays the script's KeyboardInterrupt
        signal.signal(signal.SIGINT, on_term)


def _wait_for_signal(stop):  # type: (Any) -> int
    try:
        while not _stop_requested.wait(3600):
            pass
    except KeyboardInterrupt:
        pass
    stop()
    return 0


if __name__ == "__main__":
    from . import _IMPORT_CPU
    sys.exit(main(began=_IMPORT_CPU))
