"""Command line: python -m agent {check,run,decode} (see `python -m agent --help`)."""

import argparse
import atexit
import logging
import os
import signal
import sys
import threading
from typing import List, Optional

from . import __version__
from .launcher import split_at_dashes

EPILOG = """examples:
  python -m agent check device_profiles/*.ini
  python -m agent run --profile device_profiles/ix20.ini -- app.py --port 8080
  python -m agent run --profile device_profiles/emulator.ini --report stdout:
  python -m agent decode capture.txt        # serial frames -> JSON lines

exit status: check gives 0 when every profile is valid, 2 otherwise; run with a
script gives the script's own exit status.
"""


def _columns() -> int:
    """What shutil.get_terminal_size() says, without importing shutil."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


class _Help(argparse.HelpFormatter):
    """argparse sizes its help through shutil, which imports bz2, lzma and fnmatch into
    the application's process (about 2 MB of RSS) on every start, help or not."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: Optional[int] = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         _columns() - 2 if width is None else width)


class _RawHelp(_Help, argparse.RawDescriptionHelpFormatter):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agent", epilog=EPILOG, formatter_class=_RawHelp,
        description="gc-agent: samples memory and the garbage collector inside a Python "
                    "application, collects on the rules of a device profile, and reports.")
    parser.add_argument("--version", action="version", version="gc-agent " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = sub.add_parser("check", help="validate profiles", formatter_class=_Help,
                           description="Validate profiles. Problems are printed on stderr, one "
                                       "per line: PATH:LINE: [section] key: what is wrong.")
    check.add_argument("profiles", nargs="+", metavar="PROFILE")
    check.add_argument("-v", "--verbose", action="store_true",
                       help="also print what each valid profile does")
    run = sub.add_parser(
        "run", help="run the agent, alone or around a script", formatter_class=_Help,
        usage="python -m agent run --profile PROFILE [--report URL ...] [--log FILE] [--strict]\n"
              "                          [-- SCRIPT [ARGS ...]]",
        description="Run the agent. With `-- SCRIPT ARGS` the script runs in this interpreter as "
                    "__main__, exactly as `python SCRIPT ARGS` would, with the agent thread "
                    "alongside; the exit status is the script's. Without a script the agent runs "
                    "until SIGTERM or SIGINT. SIGUSR1 asks for a full collection.")
    run.add_argument("--profile", required=True, metavar="PROFILE", help="device profile (INI)")
    run.add_argument("--report", action="append", metavar="URL",
                     help="where messages go, instead of the profile's [report] urls "
                          "(repeatable): stdout:, file:///path.jsonl[?max=10M&keep=1]")
    run.add_argument("--log", metavar="FILE",
                     help="write the agent's own diagnostics here (default: nowhere)")
    run.add_argument("--strict", action="store_true",
                     help="with a script: refuse to run it when the profile is invalid "
                          "(default: warn and run it without the agent)")
    decode = sub.add_parser(
        "decode", help="turn captured wire frames into JSON lines", formatter_class=_Help,
        description="Read serial frames (JSON*CRC lines), JSON lines, or zlib MQTT payloads from "
                    "FILE (a capture, or a live port such as /dev/ttyS1) or stdin, and print each "
                    "message as one JSON line. Lines that fail their check are reported on stderr "
                    "with their line number; exit status 1 when any was refused.")
    decode.add_argument("file", nargs="?", metavar="FILE", help="capture or port (default: stdin)")
    decode.add_argument("--max-line", type=int, default=64 * 1024, metavar="BYTES",
                        help="longest line accepted (default 65536)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from .bundle import refuse_if_tampered
    tampered = refuse_if_tampered()   # from a gc-bundle .pyz: every file as built, or no start
    if tampered:
        sys.stderr.write("gc-agent: %s\n" % tampered)
        return 2
    ours, script = split_at_dashes(argv)
    parser = _parser()
    args, extra = parser.parse_known_args(ours)
    if extra:
        hint = " (put the script after --: run --profile P -- %s)" % " ".join(extra) \
            if args.command == "run" else ""
        parser.error("unrecognized arguments: %s%s" % (" ".join(extra), hint))
    if args.command == "check":
        return _check(args.profiles, args.verbose)
    if args.command == "run":
        return _run(args, script)
    if args.command == "decode":
        from .decode import decode_file
        return decode_file(args.file, sys.stdout, sys.stderr, args.max_line)
    parser.print_help(sys.stderr)
    return 2


def _check(paths: List[str], verbose: bool) -> int:
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


def _run(args: argparse.Namespace, script: List[str]) -> int:
    from . import start, stop
    from .errors import AgentError
    if args.log:
        _log_to(args.log)
    if script and not os.path.exists(script[0]):
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
    started = profile is not None and start(profile, args.report)
    if started and profile.agent.signals:
        _install_signals(with_script=bool(script))
    if not script:
        return _wait_for_signal(stop) if started else 2
    from .launcher import die_by, run_script
    result = run_script(script)
    if result.die_by is not None:
        # Python runs atexit handlers (the script's, then our stop) and dies by
        # the signal; do the same, in that order.
        atexit._run_exitfuncs()
        die_by(result.die_by)
    return result.status


def _validated(args: argparse.Namespace):
    """The profile, with its device id resolvable and every --report URL usable."""
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


def _log_to(path: str) -> None:
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


def _install_signals(with_script: bool) -> None:
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


def _wait_for_signal(stop) -> int:
    try:
        while not _stop_requested.wait(3600):
            pass
    except KeyboardInterrupt:
        pass
    stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
