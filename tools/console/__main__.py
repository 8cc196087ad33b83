"""gc-console: watch, record and command a fleet of gc-agent devices.

  gc-console watch   [--broker URL | --serial PORT] [--db PATH]   live fleet view
  gc-console ingest  --broker URL [--db PATH]                     headless recorder
  gc-console devices [--db PATH] [--json]                         table of devices
  gc-console plot    DEVICE --out FILE.png [--db PATH]            memory and gc history
  gc-console export  DEVICE [--db PATH] [--out FILE]              samples (or --events) as CSV
  gc-console send    DEVICE COMMAND [ARGS] --broker URL --key FILE   signed command
  gc-console send    --all|--model M|--glob G COMMAND --keys DIR     to many, with a summary
  gc-console keygen  DEVICE [--out FILE]                          a command key file (0600)
  gc-console forget  DEVICE                                       remove a retired device
  gc-console serve   [--broker URL | --serial PORT] [--db PATH] [--listen 127.0.0.1:8080]
                                                                  web pages + /metrics
  gc-console import  FILE... [--db PATH]                          JSON lines into the db

Without --broker or --serial, `watch` starts an embedded MQTT broker on
127.0.0.1 (port 1883 when free) and prints the URL agents should report to.
"""

import argparse
import csv
import json
import logging
import os
import signal
import sqlite3
import sys
import time
from typing import Any, Dict, List, Optional

from agent.units import parse_duration

log = logging.getLogger("gc-console")


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def _margin(text: str) -> float:
    value = float(text.rstrip("%")) / (100.0 if text.endswith("%") or float(text.rstrip("%")) > 1
                                       else 1.0)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError("%r: a margin is a share of the ceiling, e.g. 10%%" % text)
    return value


def build_parser() -> argparse.ArgumentParser:
    from .store import default_db_path
    parser = argparse.ArgumentParser(prog="gc-console", description=__doc__.split("\n\n")[0],
                                     epilog="Run `gc-console COMMAND --help` for each command.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the console does")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    db_help = "SQLite file (default: %s)" % default_db_path()

    def source(p: argparse.ArgumentParser, serial: bool = True) -> None:
        group = p.add_mutually_exclusive_group()
        group.add_argument("--broker", metavar="URL",
                           help="mqtt://[user@]host[:port] or mqtts://... (password in "
                                "$GC_CONSOLE_PASSWORD)")
        if serial:
            group.add_argument("--serial", metavar="PORT",
                               help="a serial port or pyserial URL (/dev/ttyUSB0, loop://, "
                                    "socket://host:port)")
            p.add_argument("--baud", type=int, default=115200, help="serial speed (default 115200)")
        p.add_argument("--prefix", default="gcagent", help="MQTT topic prefix (default gcagent)")
        p.add_argument("--ca", metavar="FILE", help="mqtts: the CA that signed the broker's "
                                                   "certificate (default: the system's)")
        p.add_argument("--cert", metavar="FILE", help="mqtts: the console's client certificate")
        p.add_argument("--cert-key", metavar="FILE", help="mqtts: its private key")

    def fleet_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--db", default=default_db_path(), help=db_help)
        p.add_argument("--share", metavar="GROUP",
                       help="subscribe through $share/GROUP/... so several instances split the "
                            "fleet (MQTT 5 or mosquitto 2; not the embedded broker)")
        p.add_argument("--retain", type=_duration, metavar="AGE",
                       help="delete rows older than AGE (e.g. 30d) at start and hourly")
        p.add_argument("--ceiling-margin", type=_margin, default=0.10, metavar="PCT",
                       help="alert when headroom is under this share of the ceiling (default 10%%)")
        p.add_argument("--default-interval", type=_duration, default=3600.0, metavar="DUR",
                       help="report period assumed before a device's telemetry shows its own; "
                            "a device silent 3x its period is offline (default 1h)")
        p.add_argument("--duration", type=_duration, metavar="DUR", help="stop after DUR")
        p.add_argument("--max-devices", type=int, default=10000, metavar="N",
                       help="devices kept in memory (default 10000); the longest silent are "
                            "dropped from memory first, never from the database")

    watch = sub.add_parser("watch", help="live fleet view",
                           description="Live fleet view, riskiest device first. Without "
                                       "--broker/--serial an embedded broker is started.")
    source(watch)
    fleet_options(watch)
    watch.add_argument("--listen", type=int, metavar="PORT",
                       help="port of the embedded broker (default 1883, or a free one)")
    watch.add_argument("--device", metavar="ID", help="show one device in detail instead")
    watch.add_argument("--once", action="store_true",
                       help="collect for --settle seconds, print one frame and exit")
    watch.add_argument("--settle", type=_duration, default=2.0, metavar="DUR",
                       help="with --once: how long to listen first (default 2s)")
    watch.add_argument("--refresh", type=_duration, default=1.0, metavar="DUR",
                       help="redraw period (default 1s; without a terminal, a frame every 5s)")

    ingest = sub.add_parser("ingest", help="headless recorder",
                            description="Record a fleet into the store until SIGTERM/Ctrl-C.")
    source(ingest)
    fleet_options(ingest)
    ingest.add_argument("--exit-after", type=int, metavar="N",
                        help="stop once N messages are recorded (for benchmarks)")
    ingest.add_argument("--stats", action="store_true",
                        help="print a JSON stats line on stderr at exit (recorded, duplicates, "
                             "bad by reason, rate)")

    devices = sub.add_parser("devices", help="table of devices")
    devices.add_argument("--db", default=default_db_path(), help=db_help)
    devices.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    devices.add_argument("--limit", type=int, default=500, metavar="N",
                         help="rows in the table: the N riskiest (default 500; --json lists all)")

    plot = sub.add_parser("plot", help="memory and gc history of one device, as PNG")
    plot.add_argument("device", metavar="DEVICE")
    plot.add_argument("--db", default=default_db_path(), help=db_help)
    plot.add_argument("--out", required=True, metavar="FILE.png")
    plot.add_argument("--since", type=_duration, metavar="AGE", help="from AGE ago (e.g. 2h)")
    plot.add_argument("--until", type=_duration, metavar="AGE",
                      help="up to AGE ago (e.g. --since 7d --until 6d: one day a week ago)")
    plot.add_argument("--utc", action="store_true", help="times in UTC (default: local time)")

    export = sub.add_parser("export", help="samples or events of one device as CSV")
    export.add_argument("device", metavar="DEVICE")
    export.add_argument("--db", default=default_db_path(), help=db_help)
    export.add_argument("--csv", action="store_true",
                        help="CSV, the only format and the default (accepted for old scripts)")
    export.add_argument("--events", action="store_true", help="events instead of samples")
    export.add_argument("--out", metavar="FILE", help="write here instead of stdout")

    send = sub.add_parser("send", help="send a signed command and print the answer",
                          usage="gc-console send DEVICE COMMAND [ARGS ...] --broker URL --key FILE\n"
                                "       gc-console send (--all | --model M | --glob G) COMMAND "
                                "[ARGS ...] --broker URL (--key FILE | --keys DIR)",
                          description="Commands: collect [generation=N], status, "
                                      "set rule=R key=K value=V, snapshot [top=N seconds=S], reload. "
                                      "With --all, --model or --glob: to every matching device "
                                      "the database knows, with a summary of the answers.")
    send.add_argument("words", nargs="+", metavar="DEVICE COMMAND [ARGS]",
                      help="the device (unless --all/--model/--glob), the command, key=value "
                           "... or one JSON object")
    source(send)
    keys = send.add_mutually_exclusive_group(required=True)
    keys.add_argument("--key", metavar="FILE", help="the device's command key file")
    keys.add_argument("--keys", metavar="DIR", help="one key file per device: DIR/DEVICE.key")
    send.add_argument("--all", action="store_true", help="every device in the database")
    send.add_argument("--model", metavar="MODEL", help="every device of this model (IX20, ...)")
    send.add_argument("--glob", metavar="PATTERN", help="every device whose id matches (ix20-*)")
    send.add_argument("--db", default=default_db_path(), help=db_help)
    send.add_argument("--timeout", type=_duration, metavar="DUR",
                      help="how long to wait for the answer (default 15s, plus a snapshot's own)")

    imp = sub.add_parser("import", help="schema-v1 JSON lines (file:// reports, agent decode "
                                        "output) into the database",
                         description="Load recorded or synthetic histories. Importing a file "
                                     "twice adds nothing (messages are kept once by device, boot "
                                     "and seq). Bad lines are named (FILE:LINE: why) and counted; "
                                     "exit status 1 when any was refused.")
    imp.add_argument("files", nargs="+", metavar="FILE", help="JSON lines files ('-' for stdin)")
    imp.add_argument("--db", default=default_db_path(), help=db_help)

    keygen = sub.add_parser("keygen", help="make a command key file for a device",
                            description="Write a new random command key (mode 0600) and say "
                                        "where it goes on the device.")
    keygen.add_argument("device", metavar="DEVICE")
    keygen.add_argument("--out", metavar="FILE", help="where to write it (default DEVICE.key)")

    forget = sub.add_parser("forget", help="remove a retired device and all its rows",
                            description="Delete every row of DEVICE from the database (stop "
                                        "watch/ingest first; a running serve forgets it from its "
                                        "device page).")
    forget.add_argument("device", metavar="DEVICE")
    forget.add_argument("--db", default=default_db_path(), help=db_help)

    serve = sub.add_parser("serve", help="record the fleet and serve the web console",
                           description="Record the fleet (as ingest does) and serve the fleet "
                                       "and device pages and /metrics. Without --broker/--serial "
                                       "an embedded broker is started.")
    source(serve)
    fleet_options(serve)
    from .web.serve import add_arguments
    add_arguments(serve)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="gc-console: %(message)s")
    # SIGTERM ends a command the way Ctrl-C does: queued rows are written first.
    signal.signal(signal.SIGTERM, _interrupt)
    handler = {"watch": cmd_watch, "ingest": cmd_ingest, "devices": cmd_devices,
               "plot": cmd_plot, "export": cmd_export, "send": cmd_send,
               "serve": cmd_serve, "forget": cmd_forget, "keygen": cmd_keygen,
               "import": cmd_import}[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        # Stopping watch or ingest is how they end; a command cut short did not do its job,
        # and says so as a shell does (128 + the signal: 130 on Ctrl-C).
        if args.command in ("watch", "ingest"):
            return 0
        return 128 + _interrupted_by[0]
    except Fatal as exc:
        print("gc-console: %s" % exc, file=sys.stderr)
        return 2


_interrupted_by = [int(signal.SIGINT)]


def _interrupt(signum: int, frame: Any) -> None:
    _interrupted_by[0] = signum
    raise KeyboardInterrupt()


class Fatal(Exception):
    """Ends the command with exit status 2 and this sentence on stderr."""


def _session(args: argparse.Namespace, **extra: Any):
    from .mqtt_link import LinkError
    from .session import Session
    from .store import StoreError
    if getattr(args, "share", None) and not args.broker:
        raise Fatal("--share needs --broker: the embedded broker (amqtt) has no shared "
                    "subscriptions, and a serial line has nothing to share")
    try:
        return Session(args.db, broker=args.broker, serial=getattr(args, "serial", None),
                       baud=getattr(args, "baud", 115200), prefix=args.prefix,
                       share=getattr(args, "share", None), retain=getattr(args, "retain", None),
                       default_interval=getattr(args, "default_interval", 3600.0),
                       ceiling_margin=getattr(args, "ceiling_margin", 0.10),
                       tls={"ca_file": args.ca, "cert_file": args.cert, "key_file": args.cert_key},
                       max_devices=getattr(args, "max_devices", 10000), **extra).start()
    except (LinkError, RuntimeError, OSError, ValueError, StoreError) as exc:
        raise Fatal(str(exc))


def _deadline(args: argparse.Namespace) -> float:
    return time.monotonic() + args.duration if getattr(args, "duration", None) else float("inf")


# -- watch ------------------------------------------------------------------------------------

def cmd_watch(args: argparse.Namespace) -> int:
    from rich.console import Console

    from . import live
    console = Console()
    session = _session(args, embedded_port=args.listen)
    try:
        if session.embedded is not None:
            console.print("embedded broker listening: agents report to [bold]%s[/]  "
                          "(e.g. python -m agent run --profile P --report %s -- app.py)"
                          % (session.broker_url, session.broker_url), highlight=False)
        if args.once:
            time.sleep(args.settle)
            session.ingestor.tick()
            console.print(live.frame(session, args.default_interval, console.width,
                                     device=args.device))
            return 0
        live.run(session, console, _deadline(args), args.default_interval, args.device,
                 args.refresh)
        return 0
    finally:
        session.stop()


# -- ingest -----------------------------------------------------------------------------------

def cmd_ingest(args: argparse.Namespace) -> int:
    first: Dict[str, float] = {}

    def started(message: Dict[str, Any]) -> None:
        first.setdefault("at", time.monotonic())

    session = _session(args, on_message=started)
    print("gc-console: recording from %s into %s" % (args.serial or session.broker_url, args.db),
          file=sys.stderr, flush=True)
    deadline = _deadline(args)
    try:
        while time.monotonic() < deadline:
            if args.exit_after and session.ingestor.stats["recorded"] >= args.exit_after:
                break
            time.sleep(0.01 if args.exit_after else 0.2)
    finally:
        session.stop()   # writes what is queued
        if args.stats:
            stats = dict(session.ingestor.stats, bad_by_reason=session.ingestor.bad)
            if session.serial is not None:
                stats["serial_bad_lines"] = dict(session.serial.reader.bad)
            seconds = time.monotonic() - first["at"] if "at" in first else 0.0
            stats["seconds"] = round(seconds, 3)
            stats["rate_per_s"] = round(stats["recorded"] / seconds, 1) if seconds > 0 else None
            stats["peak_rss_kb"] = _peak_rss_kb()
            print(json.dumps(stats), file=sys.stderr, flush=True)
    return 0


def _peak_rss_kb() -> Optional[int]:
    """This process's peak RSS (VmHWM), or None where /proc has no such line."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# -- history ----------------------------------------------------------------------------------

def _open_store(path: str):
    from .store import Store, StoreError
    if not os.path.exists(path):
        raise Fatal("no console database at %s (run `gc-console ingest` or `watch` first, "
                    "or give --db)" % path)
    try:
        return Store(path)
    except (StoreError, sqlite3.DatabaseError) as exc:
        raise Fatal("%s: %s" % (path, exc) if isinstance(exc, sqlite3.DatabaseError) else str(exc))


def cmd_devices(args: argparse.Namespace) -> int:
    from rich.console import Console

    from . import fleet, view
    store = _open_store(args.db)
    now = time.time()
    if args.json:   # every device, in the table's order, in flat memory (fleet.py)
        for line in fleet.json_lines(fleet.devices(store), now):
            print(line)
        return 0
    console = Console()
    shown = fleet.top(fleet.devices(store), now, max(0, args.limit))
    console.print(view.fleet_table(shown.rows, now, fleet.summary(shown), width=console.width))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .plot import NothingToPlot, plot
    store = _open_store(args.db)
    import datetime
    now = time.time()
    since = now - args.since if args.since else 0.0
    until = now - args.until if args.until else None
    if until is not None and until <= since:
        raise Fatal("--until must be later than --since (both are ages: --since 7d --until 6d)")
    try:
        drawn = plot(store, args.device, args.out, since, until,
                     tz=datetime.timezone.utc if args.utc else None)
    except NothingToPlot as exc:
        raise Fatal(str(exc))
    print("%s: %d samples, %d collections, %d outages" % (args.out, drawn["samples"],
                                                          drawn["collections"], drawn["outages"]))
    return 0


SAMPLE_COLUMNS = ("ts", "boot", "mem_free_kb", "mem_total_kb", "rss_kb", "gc_collected",
                  "gc_uncollectable", "pause_ms_total", "pause_ms_max")
EVENT_COLUMNS = ("ts", "boot", "seq", "event", "rule", "generation", "collected", "duration_ms",
                 "rss_before_kb", "rss_after_kb", "historical")


def cmd_export(args: argparse.Namespace) -> int:
    store = _open_store(args.db)
    if args.out:
        with open(args.out, "w", newline="") as out:
            _write_csv(store, args, out)
        return 0
    try:
        _write_csv(store, args, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        _die_of_sigpipe()
    return 0


def _die_of_sigpipe() -> None:
    """`export | head`: the reader has gone; end as a Unix tool does, by SIGPIPE, quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())   # nothing left to flush at exit, so no message
    except OSError:
        pass
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGPIPE)
    sys.exit(1)


def _write_csv(store, args: argparse.Namespace, out) -> None:
    from .safetext import csv_cell
    writer = csv.writer(out)
    if args.events:   # device strings: no control bytes, never a spreadsheet formula
        writer.writerow(("time",) + EVENT_COLUMNS)
        for event in store.events(args.device):
            writer.writerow((_iso(event["ts"]),) + tuple(csv_cell(event.get(c, ""))
                                                          for c in EVENT_COLUMNS))
    else:
        writer.writerow(("time",) + SAMPLE_COLUMNS)
        for row in store.samples(args.device):
            writer.writerow((_iso(row["ts"]),) + tuple(csv_cell(row[c]) for c in SAMPLE_COLUMNS))


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".%03dZ" % (ts % 1 * 1000)


# -- import -----------------------------------------------------------------------------------

def cmd_import(args: argparse.Namespace) -> int:
    from . import importer
    from .store import Store, StoreError
    try:
        store = Store(args.db)
    except (StoreError, sqlite3.DatabaseError, OSError) as exc:
        raise Fatal("%s: %s" % (args.db, exc))
    try:
        counts = importer.import_files(args.files, store,
                                       progress=importer.stderr_progress(sys.stderr),
                                       on_refused=importer.print_refusal(sys.stderr))
    except sqlite3.Error as exc:
        raise Fatal("%s cannot be written: %s" % (args.db, exc))
    finally:
        store.close()
    for line in importer.summary(counts):
        print(line, file=sys.stderr)
    return 1 if counts["refused"] or counts["unreadable"] or counts["store_refused"] else 0


# -- send -------------------------------------------------------------------------------------

def cmd_send(args: argparse.Namespace) -> int:
    from agent.commands import load_key
    from agent.errors import AgentError

    from . import fanout, send
    if not args.broker and not args.serial:
        raise Fatal("send needs --broker URL or --serial PORT")
    many = args.all or args.model or args.glob
    words = list(args.words) if many else list(args.words[1:])
    if not words or (not many and len(args.words) < 2):
        raise Fatal("send needs DEVICE COMMAND (or --all/--model/--glob and COMMAND)")
    cmd, rest = words[0], words[1:]
    if cmd not in send.COMMANDS:
        raise Fatal("unknown command %r: one of %s" % (cmd, ", ".join(send.COMMANDS)))
    try:
        command_args = send.parse_args(rest)
    except (send.SendError, ValueError) as exc:
        raise Fatal(str(exc))
    if many:
        return _send_many(args, cmd, command_args)
    device = args.words[0]
    try:
        key = load_key(args.key or fanout.key_file(args.keys, device))
    except (AgentError, ValueError) as exc:
        raise Fatal(str(exc))
    try:
        command = send.build(device, cmd, command_args, key)
    except send.SendError as exc:
        raise Fatal(str(exc))
    waiter = send.Waiter(command["id"])
    topics = [("%s/%s/resp" % (args.prefix, device), 1)]
    session = _session(args, on_message=waiter, topics=topics)
    try:
        session.send_command(device, command)
        resp = waiter.wait(send.timeout_for(cmd, command_args, args.timeout))
    finally:
        session.stop()
    if resp is None:
        raise Fatal("no answer from %s to %s (id %s) within the timeout: is the device online, "
                    "subscribed under prefix %r, and is this its key?"
                    % (device, cmd, command["id"], args.prefix))
    print(json.dumps(resp, indent=2, sort_keys=True))
    return 0 if resp.get("ok") else 1


def _send_many(args: argparse.Namespace, cmd: str, command_args: Dict[str, Any]) -> int:
    from agent.commands import load_key
    from agent.errors import AgentError

    from . import fanout, send
    store = _open_store(args.db)
    devices = fanout.targets(store.devices(), args.all, args.model, args.glob)
    store.close()
    if not devices:
        raise Fatal("no device in %s matches (--all/--model/--glob)" % args.db)
    commands, no_key = {}, []
    for device in devices:
        try:
            key = load_key(args.key or fanout.key_file(args.keys, device))
        except (AgentError, ValueError) as exc:
            if args.key:   # the one shared key: no device can be sent to
                raise Fatal("%s (no command sent to any device)" % exc)
            # Anyone who can publish can add a device to the database: one without a key
            # file is skipped and named, never a reason to send to nobody (docs/console.md).
            no_key.append(device)
            continue
        try:
            commands[device] = send.build(device, cmd, command_args, key)
        except send.SendError as exc:
            raise Fatal("%s (no command sent to any device)" % exc)
    if not commands:
        from .safetext import clean
        print(clean(fanout.no_key_line(no_key, args.keys)))
        return 1
    answers = fanout.Answers({c["id"]: d for d, c in commands.items()})
    session = _session(args, on_message=answers, topics=[("%s/+/resp" % args.prefix, 1)])
    try:
        for device, command in commands.items():
            session.send_command(device, command)
        got = answers.wait(send.timeout_for(cmd, command_args, args.timeout))
    finally:
        session.stop()
    from .safetext import clean
    sent = [d for d in devices if d in commands]
    for line in fanout.summary(sent, got):   # device ids and their error text: no controls
        print(clean(line))
    if no_key:
        print(clean(fanout.no_key_line(no_key, args.keys)))
    ok = len(got) == len(sent) and all(r.get("ok") for r in got.values())
    return 0 if ok and not no_key else 1


def cmd_keygen(args: argparse.Namespace) -> int:
    from .fanout import key_file, keygen
    try:
        path = args.out or key_file(".", args.device)[2:]
    except ValueError as exc:
        raise Fatal("%s: give --out FILE" % exc)
    try:
        keygen(path)
    except FileExistsError:
        raise Fatal("%s exists: a key is not overwritten (delete it first if you mean to)" % path)
    except OSError as exc:
        raise Fatal("cannot write %s: %s" % (path, exc))
    print("wrote %s (mode 0600): a new command key for %s" % (path, args.device))
    print("on the device: copy it to /etc/config/gcagent/%s.key (mode 0600) and name it in the "
          "profile:\n    [commands]\n    key_file = /etc/config/gcagent/%s.key"
          % (args.device, args.device))
    print("on the console: keep it as KEYS/%s.key for `gc-console send --keys KEYS` and "
          "`gc-console serve --keys KEYS`" % args.device)
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    from .forget import forget
    _open_store(args.db).close()   # says so when there is no database there
    deleted = forget(args.db, args.device)
    if not deleted.get("devices") and not deleted.get("messages"):
        raise Fatal("no device %r in %s" % (args.device, args.db))
    print("forgot %s: %s" % (args.device, ", ".join("%d %s" % (n, t) for t, n in deleted.items()
                                                     if n)))
    return 0


# -- serve ------------------------------------------------------------------------------------

def cmd_serve(args: argparse.Namespace) -> int:
    from .web.serve import ServeError, run
    try:
        return run(args, _session)
    except ServeError as exc:
        raise Fatal(str(exc))


if __name__ == "__main__":
    sys.exit(main())
