# The command line's argparse parser: built only when `agent.__main__` needs it.
#
# argparse (with gettext, and on 3.6 textwrap, copy and locale) costs the
# application's process RSS (docs/footprint.md), so a well-formed
# `python -m agent run` line is read by `agent.__main__` itself and this module
# is imported only for `check`, `decode`, help, and lines it does not recognise.

import argparse
import os
import sys

from . import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Optional  # noqa: F401 (type comments)

EPILOG = """examples:
  python -m agent check device_profiles/*.ini
  python -m agent run --profile device_profiles/ix20.ini \\
      --report file:///tmp/gcagent.jsonl -- app.py --port 8080
  python -m agent run --profile device_profiles/emulator.ini --report stdout:
  python -m agent run --profile device_profiles/ix20.ini \\
      --report file:///tmp/gcagent.jsonl -- -m myapp.server --port 8080
  python -m agent decode capture.txt        # serial frames -> JSON lines

exit status: check gives 0 when every profile is valid, 2 otherwise; run with a
script gives the script's own exit status.
"""


def _columns():  # type: () -> int
    # What shutil.get_terminal_size() says, without importing shutil.
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


class _Help(argparse.HelpFormatter):
    # argparse sizes its help through shutil, which imports bz2, lzma and fnmatch into
    # the application's process (about 2 MB of RSS) on every start, help or not.

    def __init__(self, prog, indent_increment=2, max_help_position=24, width=None):
        # type: (str, int, int, Optional[int]) -> None
        super().__init__(prog, indent_increment, max_help_position,
                         _columns() - 2 if width is None else width)


class _RawHelp(_Help, argparse.RawDescriptionHelpFormatter):
    pass


def _prog():  # type: () -> str
    # How this was started, for help and errors: a gc-bundle .pyz, or the package.
    from .bundle import archive_of
    archive = archive_of()
    return "python3 %s" % os.path.basename(archive) if archive else "python -m agent"


def build_parser():  # type: () -> argparse.ArgumentParser
    prog = _prog()
    parser = argparse.ArgumentParser(
        prog=prog, epilog=EPILOG.replace("python -m agent", prog), formatter_class=_RawHelp,
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
        usage=prog + " run --profile PROFILE [--report URL ...] [--log FILE] [--strict]\n"
              "                          [-- SCRIPT [ARGS ...] | -- -m MODULE [ARGS ...]]",
        description="Run the agent. With `-- SCRIPT ARGS` the script runs in this interpreter as "
                    "__main__, exactly as `python SCRIPT ARGS` would (`-- -m MODULE ARGS`: as "
                    "`python -m MODULE ARGS`), with the agent thread "
                    "alongside; the exit status is the script's. Without a script the agent runs "
                    "until SIGTERM or SIGINT. SIGUSR1 asks for a full collection.")
    run.add_argument("--profile", required=True, metavar="PROFILE", help="device profile (INI)")
    run.add_argument("--report", action="append", metavar="URL",
                     help="where messages go, instead of the profile's [report] urls "
                          "(repeatable): stdout:, file:///path.jsonl[?max=10M&keep=1], "
                          "mqtt://[user@]host[:port], mqtts://..., serial:///dev/ttyS1?baud=115200, "
                          "drm:[?batch=20&flush=5s&rate=60], memory:NAME")
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
