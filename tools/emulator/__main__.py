"""gc-emulator: emulated Digi devices on a desktop, each running the real agent and a workload.

    gc-emulator run --profile PROFILE --workload NAME [--devices N] [--duration S]
                    [--report URL] [--fault SPEC ...] [--json] [-- WORKLOAD ARGS]
    gc-emulator compare --workload NAME [--profile PROFILE ...] [--json] [--seconds S]
                    [--limit SIZE] [--base PROFILE] [--rounds N] [-- WORKLOAD ARGS]
"""

import argparse
import json
import os
import shutil
import signal
import sys
from typing import List, Optional

from agent.launcher import split_at_dashes
from agent.units import parse_duration, parse_size

from .compare import KINDS

REPO_PROFILES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "device_profiles")

COMPARE_EPILOG = """examples:
  gc-emulator compare --workload server --seconds 24 -- --busy 3 --idle 3
  gc-emulator compare --workload server --seconds 24 --rounds 3 --only default,floor,auto -- --busy 3 --idle 3
  gc-emulator compare --workload webheap --limit 128M --json
  gc-emulator compare --workload cycles --limit 40M --profile device_profiles/ix20.ini

policies, one after another: CPython default; no collection (gc disabled, no
memory limit: the latency floor only); gc.freeze() after start-up; Synapse's
gc manager; the agent with each --profile; the agent with [gc] tune = auto over
--base. Arguments after -- go to the workload. The longest busy pause is wall
time, with the collector's own CPU time in brackets. docs/tuner.md reads the
table.
"""

EPILOG = """examples:
  gc-emulator run --profile device_profiles/ix20.ini --workload cycles --duration 30
  gc-emulator run --profile device_profiles/ix20.ini --workload cycles --limit 40M --no-agent
  gc-emulator run --profile device_profiles/emulator.ini --workload leak --devices 20 --json
  gc-emulator run --profile device_profiles/emulator.ini --workload cycles \\
      --report mqtt://127.0.0.1:1883 --fault broker-outage:at=10s,for=30s
  gc-emulator run --profile device_profiles/ix20.ini --workload cycles -- --rate 4

workloads: tools/emulator/workloads/ (cycles, bigfree, leak, server, gcoff, webheap,
relay), or a path
to any script. Arguments after -- go to the workload.

what it models: the model's RAM and the script's "Maximum memory" (the profile's
[device] ram and memory_limit, or --limit) enforced by a memory cgroup per device
(the kernel's OOM killer, as root) or else by SIGKILL over the limit measured from
outside, the auto-start exit action ([device] exit_action: none, restart, reboot,
with rapid-reboot back-off), digidevice (runt, datapoint, cli, appmonitor), a pty
console port per device, and faults at a proxy in front of the broker.

exit status: 0 when every device survived, 1 when any was killed or failed,
2 for bad options.
"""


def _size(text: str) -> int:
    try:
        return parse_size(text) // 1024
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gc-emulator", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Emulated Digi gateways: each device is a subprocess running the real agent "
                    "around a workload, killed like the device kills a script over its memory limit.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", help="run emulated devices and print a summary",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                         description="Run N emulated devices for a while, then print one row per "
                                     "device: survived or killed, peak RSS against the limit, "
                                     "collections, reclaimed memory, pauses, messages.")
    run.add_argument("--profile", required=True, help="device profile (INI), e.g. device_profiles/ix20.ini")
    run.add_argument("--workload", required=True,
                     help="cycles, bigfree, leak, server, gcoff, webheap, relay "
                          "(tools/emulator/workloads/) or a script path")
    run.add_argument("--devices", type=int, default=1, metavar="N", help="how many devices (default 1)")
    run.add_argument("--duration", type=_duration, default=30.0, metavar="S",
                     help="how long each device runs (default 30s; 90s, 2m...)")
    run.add_argument("--report", action="append", default=[], metavar="URL",
                     help="where the agents report, besides the emulator's own file per device "
                          "(repeatable): mqtt://HOST:PORT (through the fault proxy), drm: (emulated "
                          "Remote Manager), console (each device's pty console port), file:///...")
    run.add_argument("--fault", action="append", default=[], metavar="SPEC",
                     help="a fault to inject (repeatable), e.g. broker-outage:at=10s,for=30s, "
                          "power-loss:at=20s, serial-noise:share=1%%, flash-full:at=5s, drm-stall:at=5s, "
                          "slow-link:delay=300ms,rate=2KB/s")
    run.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    run.add_argument("--no-agent", action="store_true",
                     help="run the workload alone, without the agent (to see what the limit does to it)")
    run.add_argument("--limit", type=_size, metavar="SIZE",
                     help="the script's Maximum memory (default: the profile's [device] memory_limit)")
    run.add_argument("--enforce", choices=("auto", "cgroup", "poll"), default="auto",
                     help="how the memory limit is enforced: cgroup (a memory cgroup per device, "
                          "the kernel's OOM killer, as on the device; needs root), poll (RSS read "
                          "every 0.1 s, SIGKILL over the limit), auto (cgroup when it can make one; "
                          "default)")
    run.add_argument("--exit-action", choices=("none", "restart", "reboot"),
                     help="what follows the script's end or kill (default: [device] exit_action)")
    run.add_argument("--baseline", type=_size, default=64 * 1024, metavar="SIZE",
                     help="RAM the firmware holds before scripts run (default 64M)")
    run.add_argument("--stagger", type=_duration, default=0.5, metavar="S",
                     help="seconds between two devices' power-on (default 0.5)")
    run.add_argument("--reboot-delay", type=_duration, default=3.0, metavar="S",
                     help="how long a reboot takes (default 3s)")
    run.add_argument("--rapid-reboot", default="3,20m,10m", metavar="N,WINDOW,WAIT",
                     help="rapid-reboot back-off, as Digi's Dia did: when the last N starts average "
                          "under WINDOW apart, wait WAIT before booting (default 3,20m,10m)")
    run.add_argument("--python", default=sys.executable, metavar="PATH",
                     help="the device's Python (default: this one; e.g. a 3.6 to match older firmware)")
    run.add_argument("--workdir", metavar="DIR",
                     help="keep each device's files here (default: a new folder under /tmp)")
    run.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    cmp = sub.add_parser(
        "compare", help="one workload under CPython's default, peers' policies, profiles and tune = auto",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=COMPARE_EPILOG,
        description="Run one workload under each gc policy in turn (one emulated device each) and "
                    "print one table: request latency, gc time in busy and idle phases, the longest "
                    "busy pause, peak RSS, OOM kills, collections by generation, automatic full "
                    "collections inside busy phases.")
    cmp.add_argument("--workload", required=True, help="as for run (server, webheap, relay, ...)")
    cmp.add_argument("--profile", action="append", default=[], metavar="PROFILE",
                     help="also run the agent with this profile (repeatable)")
    cmp.add_argument("--base", default=os.path.join(REPO_PROFILES, "emulator.ini"), metavar="PROFILE",
                     help="the device, and the profile tune = auto extends (default "
                          "device_profiles/emulator.ini)")
    cmp.add_argument("--seconds", type=_duration, default=24.0, metavar="S",
                     help="how long each policy runs (default 24s)")
    cmp.add_argument("--limit", type=_size, metavar="SIZE",
                     help="the script's Maximum memory (default: the base profile's memory_limit)")
    cmp.add_argument("--python", default=sys.executable, metavar="PATH", help="the device's Python")
    cmp.add_argument("--workdir", metavar="DIR",
                     help="keep each run's files (messages, logs) here; without it they go to a "
                          "temporary folder removed at the end")
    cmp.add_argument("--only", metavar="KINDS", default=",".join(KINDS),
                     help="policies to run, comma-separated (default all: %s)" % ",".join(KINDS))
    cmp.add_argument("--rounds", type=int, default=1, metavar="N",
                     help="run every policy N times, taking turns, and report each figure's median "
                          "(the worst round for OOM kills, full collections in busy phases and the "
                          "longest pauses); "
                          "a virtual machine's latency moves between runs (default 1)")
    cmp.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    cmp.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of `gc-emulator` and `python -m tools.emulator`; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, workload_args = split_at_dashes(argv)
    parser = _parser()
    args = parser.parse_args(ours)
    if args.command == "compare":
        return _compare(args, workload_args)
    if args.command != "run":
        parser.print_help(sys.stderr)
        return 2
    return _run(parser, args, workload_args)


def _compare(args: argparse.Namespace, workload_args: List[str]) -> int:
    from agent.errors import ProfileError

    from .compare import compare, table
    log = (lambda text: None) if args.quiet else (lambda text: sys.stderr.write("gc-emulator: %s\n" % text))
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        only = [k.strip() for k in args.only.split(",") if k.strip()]
        unknown = sorted(set(only) - set(KINDS))
        if unknown:
            raise ValueError("--only: unknown %s (known: %s)" % (", ".join(unknown), ", ".join(KINDS)))
        if args.rounds < 1:
            raise ValueError("--rounds: give 1 or more (got %d)" % args.rounds)
        rows = compare(args.workload, args.profile, args.base, args.seconds, args.limit,
                       workload_args, args.python, args.workdir or "", log, only, args.rounds)
    except ProfileError as exc:
        for problem in exc.problems:
            sys.stderr.write(str(problem) + "\n")
        return 2
    except (ValueError, OSError) as exc:
        sys.stderr.write("gc-emulator: %s\n" % exc)
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("gc-emulator: interrupted\n")
        return 130
    if args.json:
        sys.stdout.write(json.dumps({"workload": args.workload, "seconds": args.seconds,
                                     "rounds": args.rounds, "rows": rows}, indent=1) + "\n")
    else:
        sys.stdout.write(table(args.workload, rows) + "\n")
    return 0


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt


def _timing(parser: argparse.ArgumentParser, args: argparse.Namespace):
    from .device import Timing
    try:
        count, window, wait = args.rapid_reboot.split(",")
        return Timing(args.reboot_delay, parse_duration(window), parse_duration(wait), int(count))
    except ValueError:
        parser.error("--rapid-reboot %r: write N,WINDOW,WAIT such as 3,20m,10m" % args.rapid_reboot)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace, workload_args: List[str]) -> int:
    from agent.errors import ProfileError

    from .fleet import Run, RunOptions
    from .model import model_from_profile
    from .summary import table
    if args.devices < 1:
        parser.error("--devices must be at least 1")
    try:
        model = model_from_profile(args.profile, args.limit, args.exit_action, args.baseline)
    except ProfileError as exc:
        for problem in exc.problems:
            sys.stderr.write(str(problem) + "\n")
        return 2
    faults = ()
    if args.fault:
        try:
            from .faults import parse_faults
        except ImportError:
            sys.stderr.write("gc-emulator: --fault needs tools/emulator/faults.py, missing here\n")
            return 2
        try:
            faults = tuple(parse_faults(args.fault))
        except ValueError as exc:
            sys.stderr.write("gc-emulator: %s\n" % exc)
            return 2
    log = (lambda text: None) if args.quiet else (lambda text: sys.stderr.write("gc-emulator: %s\n" % text))
    options = RunOptions(model=model, workload=args.workload, workload_args=tuple(workload_args),
                         devices=args.devices, duration=args.duration, reports=tuple(args.report),
                         faults=faults, no_agent=args.no_agent, stagger=args.stagger,
                         python=args.python, workdir=args.workdir or "", timing=_timing(parser, args),
                         enforce=args.enforce)
    run = None
    try:
        run = Run(options, log)
        run.setup()
    except (ValueError, OSError) as exc:
        sys.stderr.write("gc-emulator: %s\n" % exc)
        if run is not None:
            run.close()
            if not args.workdir:
                shutil.rmtree(run.folder, ignore_errors=True)
        return 2
    version = "%d.%d" % sys.version_info[:2] if args.python == sys.executable else ""
    if version and model.python and version not in model.python:
        log("the profile says the device runs Python %s; this is %s (use --python to match, "
            "e.g. a 3.6 for older firmware)" % (model.python, version))
    log("%d device(s): %s; workload %s%s; %gs each; files in %s"
        % (args.devices, model.describe(), args.workload, " without the agent" if args.no_agent else "",
           args.duration, run.folder))
    log(run.enforcement())
    signal.signal(signal.SIGTERM, _interrupted)   # stop devices cleanly, as on Ctrl-C
    try:
        reports = run.execute()   # Ctrl-C: the devices stop, and the summary covers what ran
    except KeyboardInterrupt:     # a second Ctrl-C while they stop
        sys.stderr.write("gc-emulator: interrupted\n")
        return 130
    finally:
        run.close()
    if args.json:
        sys.stdout.write(json.dumps({"profile": model.profile_path, "model": model._asdict(),
                                     "workload": args.workload, "agent": not args.no_agent,
                                     "duration_s": args.duration, "folder": run.folder,
                                     "enforced_by": run.enforced_by, "enforcement": run.enforcement(),
                                     "interrupted": run.interrupted,
                                     "proxy": run.proxy_stats, "devices": reports}, indent=1) + "\n")
    else:
        sys.stdout.write(table(reports) + "\n")
        sys.stdout.write(run.enforcement() + "\n")
        if run.proxy_stats:
            sys.stdout.write("uplink (proxy): %(bytes_up)d bytes up, %(bytes_down)d down, %(accepted)d "
                             "connections, %(refused)d refused during outages\n" % run.proxy_stats)
        sys.stdout.write("files: %s\n" % run.folder)
        if run.interrupted:
            sys.stdout.write("interrupted: the table covers the run until Ctrl-C\n")
    if run.interrupted:
        return 130
    return 0 if all(r["outcome"] == "survived" for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
