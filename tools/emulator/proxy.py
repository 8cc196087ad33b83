"""A TCP proxy between emulated devices and the broker: outages, slow links, byte counts.

    proxy = Proxy(target=("127.0.0.1", 1883)).start()   # listens on 127.0.0.1:proxy.port
    ...                                                 # devices connect to proxy.port
    proxy.delay, proxy.rate = 0.3, 2048                 # 300 ms each way, 2 KiB/s each way
    proxy.cut()                                         # broker outage: every connection dropped
    proxy.restore()                                     # the link is back; clients reconnect
    proxy.bytes_up, proxy.bytes_down, proxy.bytes       # TCP payload forwarded, each way
    proxy.stop()

Also a context manager (`with Proxy(target=...) as proxy:`), and runnable by
hand: `python -m tools.emulator.proxy --target 127.0.0.1:1883 --listen 1884`.
A stopped proxy stays stopped (make a new one); for outages use cut/restore.

Semantics:

- `cut()` drops every open connection with a TCP reset and answers each new
  one with a reset at once, so clients see the outage immediately (a dead
  cellular link is closer to `cut(black_hole=True)`: open connections stay
  open but nothing passes either way and nothing is read, new ones are
  accepted and then ignored; clients only find out by their keepalive).
  `restore()` ends either; connections that were black-holed are reset then,
  as a carrier's NAT forgets them.
- `delay` (seconds) is added to each direction: a byte read at t is written
  at t + delay, and bytes read meanwhile keep flowing behind it (a pipe, not
  stop-and-wait). `rate` (bytes a second, None = no cap) caps each direction
  of each connection (one connection per device: its link). Both may be
  changed at any time and apply to bytes not yet written.
- Counters count bytes written to the other side (payload; IP and TCP
  headers are not in them), so what a cut discards is not counted.
  `stats()` returns them all at once with connection counts.

Threads: one accepting, and per connection two per direction (a reader that
timestamps chunks into a bounded queue, a writer that releases them when
due), so a slow writer pushes back on the sender as a slow link would.
"""

import argparse
import queue
import select
import socket
import struct
import sys
import threading
import time
from typing import List, NamedTuple, Optional, Tuple

_CHUNK = 65536
_QUEUE_CHUNKS = 64           # per direction; a full queue stops reading: back-pressure
_POLL = 0.1                  # how often blocked threads look at the proxy's state
_EOF = b""


class ProxyStats(NamedTuple):
    """What the proxy has carried and seen, since start."""

    bytes_up: int            # client -> target, written to the target
    bytes_down: int          # target -> client, written to the client
    accepted: int            # connections accepted
    active: int              # connections open now
    refused: int             # connections reset at once because the link was cut
    upstream_failed: int     # connections closed because the target did not answer
    cuts: int                # times cut() was called


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (not a FIN): the peer sees the connection broken."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Connection(object):
    """One client connection and its upstream; four threads move its bytes."""

    def __init__(self, proxy: "Proxy", client: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream: Optional[socket.socket] = None
        self.closed = threading.Event()
        self.black_holed = False
        self._lock = threading.Lock()
        self._half_closed = 0

    def run(self) -> None:
        """Connect upstream and start the pipes (in its own thread: connect may take a while)."""
        proxy = self.proxy
        if proxy._state == "black_hole":
            self.black_holed = True
            return   # held open, never read, reset at restore()
        try:
            self.upstream = socket.create_connection(proxy.target, timeout=5.0)
            self.upstream.settimeout(None)
        except OSError:
            proxy._count("upstream_failed", 1)
            self.close(reset=True)
            return
        if self.closed.is_set():     # cut while connecting
            _reset(self.upstream)
            return
        for src, dst, name in ((self.client, self.upstream, "bytes_up"),
                               (self.upstream, self.client, "bytes_down")):
            pipe: queue.Queue[Tuple[float, bytes]] = queue.Queue(_QUEUE_CHUNKS)
            for target, args in ((self._read, (src, pipe)), (self._write, (dst, pipe, name))):
                threading.Thread(target=target, args=args, daemon=True,
                                 name="proxy-%s" % name).start()

    def _read(self, src: socket.socket, pipe: "queue.Queue[Tuple[float, bytes]]") -> None:
        while not self.closed.is_set():
            if self.black_holed:
                self.closed.wait(_POLL)
                continue
            try:
                ready, _, _ = select.select([src], [], [], _POLL)
                if not ready:
                    continue
                data = src.recv(_CHUNK)
            except (OSError, ValueError):
                self.close(reset=True)
                return
            item = (time.monotonic(), data)
            while not self.closed.is_set():
                try:
                    pipe.put(item, timeout=_POLL)
                    break
                except queue.Full:
                    continue
            if not data:
                return

    def _write(self, dst: socket.socket, pipe: "queue.Queue[Tuple[float, bytes]]", name: str) -> None:
        proxy = self.proxy
        next_ok = 0.0            # when the rate cap lets the next byte go
        while not self.closed.is_set():
            try:
                read_at, data = pipe.get(timeout=_POLL)
            except queue.Empty:
                continue
            if not data:
                self._eof(dst)
                return
            view = memoryview(data)
            while len(view) and not self.closed.is_set():
                if self.black_holed:
                    self.closed.wait(_POLL)
                    continue
                rate = proxy.rate
                piece = view if not rate else view[:max(64, int(rate) // 20)]
                due = max(read_at + proxy.delay, next_ok if rate else 0.0)
                wait = due - time.monotonic()
                if wait > 0:
                    self.closed.wait(min(wait, _POLL))
                    continue
                try:
                    dst.sendall(piece)
                except (OSError, ValueError):
                    self.close(reset=True)
                    return
                proxy._count(name, len(piece))
                if rate:
                    next_ok = max(next_ok, time.monotonic()) + len(piece) / float(rate)
                view = view[len(piece):]

    def _eof(self, dst: socket.socket) -> None:
        """Pass a FIN on; when both directions have ended, the connection is done."""
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        with self._lock:
            self._half_closed += 1
            both = self._half_closed == 2
        if both:
            self.close(reset=False)

    def close(self, reset: bool) -> None:
        """End the connection (both sockets); idempotent."""
        with self._lock:
            if self.closed.is_set():
                return
            self.closed.set()
        for sock in (self.client, self.upstream):
            if sock is None:
                continue
            if reset:
                _reset(sock)
            else:
                try:
                    sock.close()
                except OSError:
                    pass
        self.proxy._forget(self)


class Proxy(object):
    """Forwards `host:listen_port` to `target`, with cut/restore, delay, rate and counters."""

    def __init__(self, target: Tuple[str, int], listen_port: int = 0, host: str = "127.0.0.1",
                 delay: float = 0.0, rate: Optional[float] = None) -> None:
        self.target = (str(target[0]), int(target[1]))
        self.host = host
        self.delay = float(delay)
        self.rate = rate
        self.port = listen_port         # the real port once started
        self.bytes_up = 0
        self.bytes_down = 0
        self._counts = {"accepted": 0, "refused": 0, "upstream_failed": 0, "cuts": 0}
        self._state = "up"              # up | cut | black_hole
        self._lock = threading.Lock()
        self._connections: List[_Connection] = []
        self._server: Optional[socket.socket] = None
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # -- life cycle ------------------------------------------------------------------

    def start(self) -> "Proxy":
        """Listen and start forwarding; returns self. `port` is the port listened on."""
        if self._server is not None:
            return self
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((self.host, self.port))
        server.listen(64)
        server.settimeout(_POLL)
        self._server = server
        self.port = server.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True, name="proxy-accept")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and reset every connection."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(2.0)
        if self._server is not None:
            self._server.close()
        for conn in self._snapshot():
            conn.close(reset=True)

    def __enter__(self) -> "Proxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults ----------------------------------------------------------------------

    def cut(self, black_hole: bool = False) -> None:
        """The link is gone: reset every connection and every new one (or, with
        `black_hole`, hold them all silent until restore())."""
        with self._lock:
            self._state = "black_hole" if black_hole else "cut"
            self._counts["cuts"] += 1
        for conn in self._snapshot():
            if black_hole:
                conn.black_holed = True
            else:
                conn.close(reset=True)

    def restore(self) -> None:
        """The link is back: new connections are forwarded; black-holed ones are reset."""
        with self._lock:
            self._state = "up"
        for conn in self._snapshot():
            if conn.black_holed:
                conn.close(reset=True)

    @property
    def is_cut(self) -> bool:
        """True between cut() and restore()."""
        return self._state != "up"

    # -- counters --------------------------------------------------------------------

    @property
    def bytes(self) -> int:
        """Bytes forwarded both ways (what tools/bench/wire.py's CountingProxy counted)."""
        return self.bytes_up + self.bytes_down

    def stats(self) -> ProxyStats:
        """All counters at one moment."""
        with self._lock:
            return ProxyStats(self.bytes_up, self.bytes_down, self._counts["accepted"],
                              len(self._connections), self._counts["refused"],
                              self._counts["upstream_failed"], self._counts["cuts"])

    # -- internals -------------------------------------------------------------------

    def _count(self, name: str, n: int) -> None:
        with self._lock:
            if name in self._counts:
                self._counts[name] += n
            else:
                setattr(self, name, getattr(self, name) + n)

    def _snapshot(self) -> List[_Connection]:
        with self._lock:
            return list(self._connections)

    def _forget(self, conn: _Connection) -> None:
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._server.accept()
            except socket.timeout:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                time.sleep(_POLL)     # e.g. out of file descriptors: keep serving
                continue
            client.settimeout(None)
            with self._lock:
                self._counts["accepted"] += 1
                refuse = self._state == "cut"
                if refuse:
                    self._counts["refused"] += 1
                else:
                    conn = _Connection(self, client)
                    self._connections.append(conn)
            if refuse:
                _reset(client)
                continue
            threading.Thread(target=conn.run, daemon=True, name="proxy-connect").start()


def _address(text: str) -> Tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not port.isdigit():
        raise argparse.ArgumentTypeError("%r is not HOST:PORT" % text)
    return (host or "127.0.0.1", int(port))


def main(argv: Optional[List[str]] = None) -> int:
    """Run a proxy by hand; prints its counters every few seconds; Ctrl-C stops it."""
    from agent.units import parse_duration
    from tools.emulator.faults import parse_rate
    parser = argparse.ArgumentParser(
        prog="python -m tools.emulator.proxy",
        description="A TCP proxy with an added delay, a bandwidth cap and byte counters.")
    parser.add_argument("--target", type=_address, required=True, help="HOST:PORT to forward to")
    parser.add_argument("--listen", type=int, default=0, help="port to listen on (default: any free)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--delay", type=parse_duration, default=0.0, help="added each way, e.g. 300ms")
    parser.add_argument("--rate", type=parse_rate, default=None,
                        help="cap each way, bytes a second, e.g. 2KB/s")
    args = parser.parse_args(argv)
    proxy = Proxy(args.target, args.listen, args.host, args.delay, args.rate).start()
    print("listening on %s:%d -> %s:%d" % (args.host, proxy.port, args.target[0], args.target[1]),
          flush=True)
    try:
        while True:
            time.sleep(5)
            print(proxy.stats(), flush=True)
    except KeyboardInterrupt:
        proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
