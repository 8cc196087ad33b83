"""Edges found by reading the code as a reviewer, each kept fixed here: the longest
`DEVICE@APP` id a profile allows gets through the console's bounds; an application
name of dots never names another folder; agents sharing a flash folder keep their
own replay ids; the serial port works on a descriptor past select's 1024; the CPU
account never deadlocks a signal handler; alert delivery survives a receiver that
does not speak HTTP; the web console reads no more of a body than it will keep;
a `set` or `reload` reaches the tuner."""

import json
import os
import pty
import resource
import socket
import textwrap
import threading
import time

import pytest

from agent import messages
from agent.cputime import CpuAccount
from agent.errors import MessageError
from agent.identity import check_app, with_app
from agent.profile import load
from agent.runtime import Agent
from agent.transports import ttyport
from agent.units import parse_amount
from tools.console.web.delivery import Delivery, Webhook


def _status(device: str) -> bytes:
    return json.dumps({"v": 1, "type": "event", "device": device, "boot": "b1", "seq": 1,
                       "ts": 1.0, "event": "app", "name": "x"}).encode()


def test_the_longest_device_at_app_id_is_recorded_and_one_longer_is_refused():
    longest = "d" * 64 + "@" + "a" * 32
    assert messages.decode(_status(longest))["device"] == longest
    with pytest.raises(MessageError) as refused:
        messages.decode(_status(longest + "x"))
    assert refused.value.reason == "range"


def test_an_application_name_of_dots_is_refused_and_never_used():
    for dots in (".", ".."):
        with pytest.raises(ValueError, match="dots"):
            check_app(dots)
    os.environ["GCAGENT_TEST_APP"] = ".."
    try:
        assert "@" not in with_app("gw-1", "${env:GCAGENT_TEST_APP}")[0]
    finally:
        del os.environ["GCAGENT_TEST_APP"]


def _agent(tmp_path, app: str, extra: str = "") -> Agent:
    key = tmp_path / "key"
    key.write_bytes(b"k" * 32)
    os.chmod(str(key), 0o600)
    path = tmp_path / ("%s.ini" % app)
    path.write_text(textwrap.dedent("""\
        [device]
        id = gw-1
        memory_limit = 64M
        [agent]
        app = %s
        [report]
        urls = memory:%s
        [buffer]
        flash = %s
        [commands]
        key_file = %s
        [rule:low]
        type = low_memory
        below = 10%%
        %s""") % (app, app, tmp_path / "flash", key, extra))
    return Agent.build(load(str(path)))


def test_two_applications_sharing_a_flash_folder_keep_their_own_replay_ids(tmp_path):
    one, two = _agent(tmp_path, "logger"), _agent(tmp_path, "bridge")
    try:
        assert one.commands._ids.path != two.commands._ids.path
        assert one.commands._ids.path.endswith("replay-ids-logger")
    finally:
        one._close()
        two._close()


def test_a_set_or_reload_reaches_the_tuner(tmp_path):
    agent = _agent(tmp_path, "app", "[gc]\ntune = auto\n")
    try:
        assert [b.fraction for b in agent.tuner._belows] == [0.10]
        changed = load(str(tmp_path / "app.ini"))
        rule = changed.rules[0]._replace(below=parse_amount("30%"))
        agent.replace_policy(changed._replace(rules=(rule,)))
        assert [b.fraction for b in agent.tuner._belows] == [0.30]
    finally:
        agent._close()


def test_the_serial_port_works_on_a_descriptor_past_selects_1024():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), max(hard, 2048)))
    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    master, slave = pty.openpty()
    try:
        port = ttyport.serial_for_url(os.ttyname(slave), baudrate=115200, timeout=0.5,
                                      write_timeout=1.0)
        try:
            assert port.fd >= 1024
            os.write(master, b"ping\n")
            assert port.read(64) == b"ping\n"
            port.write(b"pong\n")
            assert os.read(master, 64) == b"pong\n"
        finally:
            port.close()
    finally:
        for fd in filler + [master, slave]:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_cpu_account_is_safe_from_a_signal_handler_inside_it():
    account = CpuAccount(clock=lambda: 1.0)
    done = []

    def handler_inside_add():
        with account._lock:            # the main thread is inside add() ...
            account.begin()            # ... when a signal handler runs stop() on it
            account.end()
            account.add(0.5)
            done.append(account.total_ms())

    worker = threading.Thread(target=handler_inside_add, daemon=True)
    worker.start()
    worker.join(2.0)
    assert done == [500.0]


def test_alert_delivery_goes_on_after_a_receiver_that_does_not_speak_http():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]

    def garbage():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.sendall(b"this is not HTTP\r\n\r\n")
            conn.close()
    threading.Thread(target=garbage, daemon=True).start()
    delivery = Delivery([Webhook("http://127.0.0.1:%d/hook" % port, timeout=2.0)],
                        retry_for=60.0, backoff=0.2).start()
    try:
        delivery.offer({"device": "gw-1", "alert": "offline", "state": "raised"})
        deadline = time.monotonic() + 10
        while delivery.stats["attempts"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert delivery.stats["attempts"] >= 2          # retried: the thread is alive
        assert delivery._thread.is_alive()
    finally:
        delivery.stop()
        server.close()
