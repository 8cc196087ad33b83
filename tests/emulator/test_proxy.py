"""The broker proxy: forwards and counts, cuts and restores (a real paho client and mosquitto),
black-holes, delays and caps bandwidth. Real sockets throughout."""

import socket
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from tools.emulator.proxy import Proxy
from tools.mosquitto import Mosquitto


class Echo(object):
    """A TCP echo server on a free port."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.address = self.server.getsockname()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            try:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        return
                    conn.sendall(data)
            except OSError:
                return


@pytest.fixture
def echo():
    server = Echo()
    yield server
    server.server.close()


@pytest.fixture
def proxy(echo):
    with Proxy(target=echo.address) as started:
        yield started


def connect(proxy: Proxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    return sock


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        data = sock.recv(65536)
        assert data, "connection closed after %d of %d bytes" % (len(got), n)
        got += data
    return bytes(got)


def broken(sock: socket.socket) -> bool:
    """True when the peer has reset or closed the connection."""
    try:
        return sock.recv(1) == b""
    except ConnectionError:
        return True


def refused(proxy: Proxy) -> bool:
    """True when a new connection is reset (during connect or right after it)."""
    try:
        sock = connect(proxy)
    except ConnectionError:
        return True
    with sock:
        return broken(sock)


def test_forwards_both_ways_intact_and_counts_each_direction(proxy):
    payload = bytes(range(256)) * 1024          # 256 KiB
    with connect(proxy) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        assert recv_exactly(sock, len(payload)) == payload
        sender.join()
    # The proxy counts a chunk after writing it: the client may read it first.
    wait_until(lambda: proxy.bytes == 2 * len(payload), "the last chunks counted")
    stats = proxy.stats()
    assert (stats.bytes_up, stats.bytes_down) == (len(payload), len(payload))
    assert proxy.bytes == 2 * len(payload)
    assert stats.accepted == 1


def test_cut_resets_open_and_new_connections_until_restore(proxy):
    with connect(proxy) as sock:
        sock.sendall(b"ping")
        assert recv_exactly(sock, 4) == b"ping"
        proxy.cut()
        assert proxy.is_cut
        assert broken(sock)
    assert refused(proxy)
    proxy.restore()
    with connect(proxy) as sock:
        sock.sendall(b"back")
        assert recv_exactly(sock, 4) == b"back"
    stats = proxy.stats()
    assert stats.cuts == 1 and stats.refused == 1 and stats.accepted == 3
    assert stats.bytes_up == 8                 # what was cut was not counted as carried


def test_black_hole_passes_nothing_then_restore_resets(proxy):
    with connect(proxy) as sock:
        sock.sendall(b"one")
        assert recv_exactly(sock, 3) == b"one"
        proxy.cut(black_hole=True)
        sock.sendall(b"lost")
        sock.settimeout(0.5)
        with pytest.raises(socket.timeout):   # open, and silent
            sock.recv(10)
        sock.settimeout(10)
        proxy.restore()
        assert broken(sock)
    assert proxy.stats().bytes_up == 3


def test_a_target_that_is_down_resets_the_client():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        address = closed.getsockname()       # bound, never listening: connections refused
        with Proxy(target=address) as proxy:
            assert refused(proxy)
            assert proxy.stats().upstream_failed == 1


def test_delay_holds_bytes_back_and_keeps_their_order(proxy):
    proxy.delay = 0.5                        # each way: the echo comes back after 1 s or more
    with connect(proxy) as sock:
        for i in range(5):
            sock.sendall(b"%d," % i)
        sock.settimeout(0.5)
        with pytest.raises(socket.timeout):  # nothing can come back before the delay
            sock.recv(10)
        sock.settimeout(10)
        assert recv_exactly(sock, 10) == b"0,1,2,3,4,"


def test_rate_caps_what_passes(proxy):
    proxy.rate = 4096                        # bytes a second, each way
    payload = b"x" * 16384
    with connect(proxy) as sock:
        started = time.monotonic()
        sock.sendall(payload)
        sock.settimeout(0.2)
        got = 0
        while time.monotonic() - started < 1.0:
            try:
                got += len(sock.recv(65536))
            except socket.timeout:
                pass
        elapsed = time.monotonic() - started
        # the cap lets through at most rate * elapsed, plus one piece (rate / 20) of slack
        assert 0 < got <= 4096 * elapsed + 4096 / 20 * 2, (got, elapsed)
        proxy.rate = None
        sock.settimeout(10)
        assert got + len(recv_exactly(sock, len(payload) - got)) == len(payload)


def test_cut_drops_a_paho_client_and_restore_lets_it_reconnect(tmp_path):
    broker = Mosquitto(str(tmp_path)).start()
    proxy = Proxy(target=("127.0.0.1", broker.port)).start()
    connects, disconnects, got = [], [], []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="device-1")

    def on_connect(c, userdata, flags, reason, props):
        connects.append(reason)
        c.subscribe("t/#", qos=1)

    client.on_connect = on_connect
    client.on_disconnect = lambda c, u, flags, reason, props: disconnects.append(reason)
    client.on_subscribe = lambda c, u, mid, reasons, props: got.append("subscribed")
    client.on_message = lambda c, u, msg: got.append(msg.payload.decode())
    client.reconnect_delay_set(0.1, 0.5)
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="server")
    try:
        client.connect("127.0.0.1", proxy.port, keepalive=30)
        client.loop_start()
        publisher.connect("127.0.0.1", broker.port)
        publisher.loop_start()
        wait_until(lambda: got.count("subscribed") == 1, "the first subscription")
        publisher.publish("t/a", b"before", qos=1).wait_for_publish(5)
        wait_until(lambda: "before" in got, "a message through the proxy")

        proxy.cut()
        wait_until(lambda: len(disconnects) == 1, "the client to notice the cut")
        time.sleep(1.0)                      # it keeps trying; each try is reset
        assert len(connects) == 1
        assert proxy.stats().refused >= 1

        proxy.restore()
        wait_until(lambda: got.count("subscribed") == 2, "a reconnection after restore")
        publisher.publish("t/a", b"after", qos=1).wait_for_publish(5)
        wait_until(lambda: "after" in got, "a message after the restore")
        stats = proxy.stats()
        assert stats.accepted >= 3 and stats.cuts == 1 and stats.active == 1
        assert stats.bytes_up > 0 and stats.bytes_down > 0
    finally:
        client.loop_stop()
        publisher.loop_stop()
        proxy.stop()
        broker.stop()


def wait_until(predicate, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("no %s within %ss" % (what, timeout))


def test_runs_by_hand_with_help():
    shown = subprocess.run([sys.executable, "-m", "tools.emulator.proxy", "--help"],
                           capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0 and "--delay" in shown.stdout and "--rate" in shown.stdout
