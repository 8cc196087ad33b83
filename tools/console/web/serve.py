"""`gc-console serve`: record the fleet (as `ingest` does) and serve the web console.

One process: the console's Session (broker link or serial port, the embedded
broker when no source is given, the same database and ingestor as `ingest`),
and uvicorn serving the Starlette application on `--listen`. Ctrl-C or
SIGTERM stops the web server first, then writes what is queued.
"""

import argparse
import os
import socket
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

from .security import AuthError, Guard, is_loopback, load_users


class ServeError(Exception):
    """serve cannot start as asked; the message says why."""


def parse_listen(text: str) -> Tuple[str, int]:
    """HOST:PORT (or a bare PORT on 127.0.0.1); [::1]:8080 for IPv6."""
    host, colon, port = text.rpartition(":")
    if not colon:
        host, port = "127.0.0.1", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
        if not 0 <= number <= 65535:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError("%r: give HOST:PORT, e.g. 127.0.0.1:8080" % text)
    return host, number


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 8080),
                   metavar="HOST:PORT", help="where the web console listens (default "
                                             "127.0.0.1:8080; any other than loopback needs "
                                             "--auth)")
    p.add_argument("--auth", metavar="FILE", help="NAME:SECRET lines (mode 600): sign-in for "
                                                  "the pages, Bearer tokens for /metrics and "
                                                  "scripts")
    p.add_argument("--keys", metavar="DIR", help="command keys (DIR/DEVICE.key): with --auth, "
                                                 "the device page can send commands")
    p.add_argument("--mqtt-port", type=int, metavar="PORT",
                   help="port of the embedded broker (default 1883, or a free one)")
    p.add_argument("--config", metavar="FILE", help="console config (alert delivery: webhook, "
                                                    "mail), see docs/web-console.md")


def chain(*calls: Optional[Callable[[Dict[str, Any]], None]]) -> Callable[[Dict[str, Any]], None]:
    live = [c for c in calls if c is not None]

    def call(item: Dict[str, Any]) -> None:
        for one in live:
            one(item)
    return call


def _sender(session: Any) -> Callable[[str, Dict[str, Any]], None]:
    """Session.send_command for web threads: the row is written under the ingestor's lock, as
    its batches are (one SQLite connection, one transaction at a time); the publish is not."""
    import json

    def send(device: str, command: Dict[str, Any]) -> None:
        with session.ingestor.lock:
            session.store.record_command(command, device)
        if session.serial is not None:
            session.serial.send_command(command)
        else:
            session.mqtt.publish("%s/%s/cmd" % (session.prefix, device),
                                 json.dumps(command, separators=(",", ":")).encode("utf-8"),
                                 wait=5.0)
    return send


def build(session: Any, args: argparse.Namespace, guard: Guard, extra_alert: List = ()) -> Any:
    """The Starlette app over a started Session (tests call this too)."""
    from .app import create_app
    from .backend import Backend
    from .metrics import FleetCollector, Tally, registry
    from .notes import AlertBook, Notes

    session.ingestor.flush()   # the tables exist and hold what was already there
    notes = Notes(session.store.path)
    book = AlertBook(session.store.path)
    tally = Tally(session.store.path)
    session.ingestor.on_message = chain(session.ingestor.on_message, tally)
    session.ingestor.on_alert = chain(session.ingestor.on_alert, book.change, *extra_alert)
    backend = Backend(session.ingestor, session.store.path, notes, book,
                      default_interval=args.default_interval, keys_dir=args.keys,
                      send=_sender(session) if guard.required else None)
    collector = FleetCollector(backend.snapshot, tally, args.default_interval)
    app = create_app(backend, guard, registry(collector))
    app.state.backend = backend
    app.state.notes = notes
    app.state.tally = tally
    return app


def run(args: argparse.Namespace, make_session: Callable[..., Any]) -> int:
    import uvicorn

    host, port = args.listen
    users = None
    if args.auth:
        try:
            users = load_users(args.auth)
        except AuthError as exc:
            raise ServeError(str(exc))
    elif not is_loopback(host):
        raise ServeError("--listen %s is beyond loopback: give --auth FILE (NAME:SECRET lines, "
                         "mode 600) so only those who know a secret see the fleet" % host)
    if args.keys and not users:
        raise ServeError("--keys needs --auth: commands are sent by someone who signed in")
    if args.keys and not os.path.isdir(args.keys):
        raise ServeError("--keys %s is not a directory" % args.keys)
    if port == 0:
        from ..broker import free_port
        port = free_port()
    guard = Guard(users)
    delivery = None
    if args.config:
        from .delivery import load_delivery
        try:
            delivery = load_delivery(args.config)
        except ValueError as exc:
            raise ServeError(str(exc))
    listener = _listen(host, port)   # before anything starts: a port in use is said, not logged
    session = make_session(args, embedded_port=args.mqtt_port)
    try:
        app = build(session, args, guard, [delivery.offer] if delivery else [])
        if delivery is not None:
            delivery.silenced = app.state.notes.silenced
            delivery.start()
        if session.embedded is not None:
            print("gc-console: embedded broker listening: agents report to %s"
                  % session.broker_url, file=sys.stderr, flush=True)
        shown = "[%s]" % host if ":" in host else host
        print("gc-console: web console at http://%s:%d/ (metrics at /metrics), recording into %s"
              % (shown, port, args.db), file=sys.stderr, flush=True)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                access_log=False, lifespan="off", timeout_graceful_shutdown=2)
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        listener.close()
        if delivery is not None:
            delivery.stop()
        session.stop()
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """The web console's listening socket, or ServeError saying why there is none."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ServeError("cannot listen on %s:%d: %s (another console? choose with --listen)"
                         % (host, port, exc.strerror or exc)) from exc
    return sock


class Background(object):
    """The web console on a thread of its own beside another console view (`make demo`)."""

    def __init__(self, session: Any, port: int, default_interval: float,
                 host: str = "127.0.0.1") -> None:
        import threading

        import uvicorn
        args = argparse.Namespace(default_interval=default_interval, keys=None)
        app = build(session, args, Guard(None))
        self.url = "http://%s:%d/" % (host, port)
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                                    access_log=False, lifespan="off",
                                                    timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, name="gc-console-web", daemon=True)

    def start(self) -> "Background":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5.0)
