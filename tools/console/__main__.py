"""gc-console: watch, record and command a fleet of gc-agent devices.

  gc-console watch   [--broker URL | --serial PORT] [--db PATH]   live fleet view
  gc-console ingest  --broker URL [--db PATH]                     headless recorder
  gc-console devices [--db PATH] [--json]                         table of devices
  gc-console plot    DEVICE --out FILE.png [--db PATH]            memory and gc history
  gc-console export  DEVICE --csv [--db PATH] [--out FILE]        samples (or --events) as CSV
  gc-console send    DEVICE COMMAND [ARGS] --broker URL --key FILE   signed command

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

    plot = sub.add_parser("plot", help="memory and gc history of one device, as PNG")
    plot.add_argument("device", metavar="DEVICE")
    plot.add_argument("--db", default=default_db_path(), help=db_help)
    plot.add_argument("--out", required=True, metavar="FILE.png")
    plot.add_argument("--since", type=_duration, metavar="AGE", help="only the last AGE (e.g. 2h)")

    export = sub.add_parser("export", help="samples or events of one device as CSV")
    export.add_argument("device", metavar="DEVICE")
    export.add_argument("--db", default=default_db_path(), help=db_help)
    export.add_argument("--csv", action="store_true", required=True, help="CSV (the only format)")
    export.add_argument("--events", action="store_true", help="events instead of samples")
    export.add_argument("--out", metavar="FILE", help="write here instead of stdout")

    send = sub.add_parser("send", help="send a signed command and print the answer",
                          description="Commands: collect [generation=N], status, "
                                      "set rule=R key=K value=V, snapshot [top=N seconds=S], reload.")
    send.add_argument("device", metavar="DEVICE")
    send.add_argument("cmd", metavar="COMMAND", choices=("collect", "status", "set", "snapshot",
                                                         "reload"))
    send.add_argument("args", nargs="*", metavar="ARGS", help="key=value ... or one JSON object")
    source(send)
    send.add_argument("--key", required=True, metavar="FILE", help="the device's command key file")
    send.add_argument("--db", default=default_db_path(), help=db_help)
    send.add_argument("--timeout", type=_duration, metavar="DUR",
                      help="how long to wait for the answer (default 15s, plus a snapshot's own)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="gc-console: %(message)s")
    # SIGTERM ends a command the way Ctrl-C does: queued rows are written first.
    signal.signal(signal.SIGTERM, _interrupt)
    handler = {"watch": cmd_watch, "ingest": cmd_ingest, "devices": cmd_devices,
               "plot": cmd_plot, "export": cmd_export, "send": cmd_send}[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 0
    except Fatal as exc:
        print("gc-console: %s" % exc, file=sys.stderr)
        return 2


def _interrupt(signum: int, frame: Any) -> None:
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
                       **extra).start()
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

    from . import leaks, view
    store = _open_store(args.db)
    now = time.time()
    devices = view.ordered(leaks.annotate(store, store.devices()), now)
    if args.json:
        for device in devices:
            device["state_now"] = view.state_of(device, now)
            print(json.dumps(device, sort_keys=True))
        return 0
    console = Console()
    console.print(view.fleet_table(devices, now, view.summary(devices, now), width=console.width))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .plot import NothingToPlot, plot
    store = _open_store(args.db)
    since = time.time() - args.since if args.since else 0.0
    try:
        drawn = plot(store, args.device, args.out, since)
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
    else:
        _write_csv(store, args, sys.stdout)
    return 0


def _write_csv(store, args: argparse.Namespace, out) -> None:
    writer = csv.writer(out)
    if args.events:
        writer.writerow(("time",) + EVENT_COLUMNS)
        for event in store.events(args.device):
            writer.writerow((_iso(event["ts"]),) + tuple(event.get(c, "") for c in EVENT_COLUMNS))
    else:
        writer.writerow(("time",) + SAMPLE_COLUMNS)
        for row in store.samples(args.device):
            writer.writerow((_iso(row["ts"]),) + tuple(row[c] for c in SAMPLE_COLUMNS))


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".%03dZ" % (ts % 1 * 1000)


# -- send -------------------------------------------------------------------------------------

def cmd_send(args: argparse.Namespace) -> int:
    from agent.commands import load_key
    from agent.errors import AgentError

    from . import send
    if not args.broker and not args.serial:
        raise Fatal("send needs --broker URL or --serial PORT")
    try:
        key = load_key(args.key)
        command_args = send.parse_args(args.args)
    except (AgentError, send.SendError, ValueError) as exc:
        raise Fatal(str(exc))
    command = send.build(args.device, args.cmd, command_args, key)
    waiter = send.Waiter(command["id"])
    topics = [("%s/%s/resp" % (args.prefix, args.device), 1)]
    session = _session(args, on_message=waiter, topics=topics)
    try:
        session.send_command(args.device, command)
        resp = waiter.wait(send.timeout_for(args.cmd, command_args, args.timeout))
    finally:
        session.stop()
    if resp is None:
        raise Fatal("no answer from %s to %s (id %s) within the timeout: is the device online, "
                    "subscribed under prefix %r, and is this its key?"
                    % (args.device, args.cmd, command["id"], args.prefix))
    print(json.dumps(resp, indent=2, sort_keys=True))
    return 0 if resp.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
