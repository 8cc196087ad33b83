"""The agent's life cycle: a failed start leaves nothing behind; a wedged agent
thread keeps its reporters to itself; control uses the agent's public interface."""

import ast
import gc
import os
import textwrap
import threading
import time

import agent
from agent import profile as profiles
from agent import transports
from agent.outbox import Outgoing
from agent.runtime import Agent
from agent.transports.base import Transport

PROFILE = """
[device]
id = life-1
memory_limit = 64M
[agent]
tick = 1s
[rule:every]
type = periodic
every = 1h
[report]
urls = memory:life
"""


class ExplodingOpen(Transport):
    """A transport with a bug: open() raises something that is not a TransportError."""

    def open(self) -> None:
        raise RuntimeError("transport bug at open")

    def send(self, item: Outgoing) -> bool:
        return True


class ExplodingInit(Transport):
    """A transport that cannot even be constructed."""

    def __init__(self, url, context=None) -> None:
        raise RuntimeError("transport bug at construction")

    def send(self, item: Outgoing) -> bool:
        return True


class Wedged(Transport):
    """send() blocks until released; every call is recorded with its thread."""

    instances = []

    def __init__(self, url, context=None) -> None:
        super(Wedged, self).__init__(url, context)
        self.calls = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.closed = threading.Event()
        self.sent = []
        Wedged.instances.append(self)

    def _call(self, name: str) -> None:
        self.calls.append((name, threading.current_thread().name))

    def open(self) -> None:
        self._call("open")

    def ready(self) -> bool:
        self._call("ready")
        return True

    def poll(self):
        self._call("poll")
        return []

    def send(self, item: Outgoing) -> bool:
        self._call("send")
        self.entered.set()
        self.release.wait(10)
        self.sent.append(item)
        return True

    def close(self) -> None:
        self._call("close")
        self.closed.set()


def _profile(tmp_path, extra=""):
    path = tmp_path / "life.ini"
    path.write_text(textwrap.dedent(PROFILE) + textwrap.dedent(extra))
    return str(path)


def _register(monkeypatch):
    monkeypatch.setitem(transports.SCHEMES, "boomopen", (__name__, "ExplodingOpen"))
    monkeypatch.setitem(transports.SCHEMES, "boominit", (__name__, "ExplodingInit"))
    monkeypatch.setitem(transports.SCHEMES, "wedged", (__name__, "Wedged"))


def _threads():
    return sorted(t.name for t in threading.enumerate())


def _assert_failed_twice_leaves_nothing(start):
    hooks = list(gc.callbacks)
    thresholds = gc.get_threshold()
    threads = _threads()
    fds = _open_files()
    for _ in range(2):
        assert start() is False
        assert agent.running() is None
        assert gc.callbacks == hooks   # no pause-timing hook left in the application
        assert _threads() == threads   # the serial port's I/O thread was ended too
        # Nothing this start opened is left open (other tests' leftovers may close meanwhile).
        assert _open_files() - fds == set()
        assert gc.get_threshold() == thresholds


def _open_files() -> set:
    """(descriptor, what it points at) for every open descriptor of this process."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.add((fd, os.readlink("/proc/self/fd/" + fd)))
        except OSError:   # the listing's own descriptor, closed already
            pass
    return out


def test_a_start_whose_transport_fails_to_open_leaves_gc_hooks_and_threads_as_they_were(
        tmp_path, monkeypatch):
    _register(monkeypatch)
    path = _profile(tmp_path, """
        [gc]
        thresholds = 5000, 20, 20
        """)
    # loop:// opens first (a real pyserial port and its I/O thread), then the bug.
    _assert_failed_twice_leaves_nothing(lambda: agent.start(path, ["loop://", "boomopen:"]))


def test_a_start_whose_transport_cannot_be_built_leaves_nothing_behind(tmp_path, monkeypatch):
    _register(monkeypatch)
    path = _profile(tmp_path)
    _assert_failed_twice_leaves_nothing(lambda: agent.start(path, ["loop://", "boominit:"]))


def test_a_profile_failing_at_a_later_build_step_leaves_nothing_behind(tmp_path):
    # The key file is read only when the agent is built, after the probe hooked gc.
    path = _profile(tmp_path, """
        [commands]
        key_file = %s
        """ % (tmp_path / "no-such-key"))
    _assert_failed_twice_leaves_nothing(lambda: agent.start(path, ["loop://"]))


def test_a_good_start_after_failed_ones_hooks_gc_once_and_stop_unhooks(tmp_path, monkeypatch):
    _register(monkeypatch)
    path = _profile(tmp_path)
    hooks = list(gc.callbacks)
    assert agent.start(path, ["boomopen:"]) is False
    assert agent.start(path, ["memory:life"]) is True
    try:
        assert len(gc.callbacks) == len(hooks) + 1
    finally:
        agent.stop(timeout=1.0)
        agent._agent = None   # let later tests start their own
    assert gc.callbacks == hooks


def test_stop_with_a_wedged_agent_thread_leaves_the_reporters_to_that_thread(tmp_path, monkeypatch):
    _register(monkeypatch)
    Wedged.instances[:] = []
    running = Agent.build(profiles.load(_profile(tmp_path)), ["wedged:"])
    running.start()
    [link] = Wedged.instances
    assert link.entered.wait(10), "the agent thread never sent"
    caller = threading.current_thread().name
    del link.calls[:]   # start() opened it from here, before the agent thread existed
    began = time.monotonic()
    running.stop(timeout=0.4)
    assert time.monotonic() - began < 2.0   # stop returns; it does not wait for the wedge
    assert [c for c in link.calls if c[1] == caller] == []
    assert not link.closed.is_set()
    link.release.set()   # the wedge clears: the agent thread runs the shutdown itself
    assert link.closed.wait(10), "the agent thread never closed its transport"
    assert {thread for _, thread in link.calls} == {"gc-agent"}
    assert ("close", "gc-agent") in link.calls
    states = [b'"state":"offline"' in item.body for item in link.sent]
    assert states and states[-1]   # its last message is status offline
    deadline = time.monotonic() + 5
    while running.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not running.running


def test_control_uses_only_the_agents_public_interface():
    with open(os.path.join(os.path.dirname(agent.__file__), "control.py")) as handle:
        source = handle.read()
    tree = ast.parse(source)
    private = [node.attr for node in ast.walk(tree)
               if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
               and node.value.id == "agent" and node.attr.startswith("_")]
    assigned = [node.attr for node in ast.walk(tree)
                if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name) and node.value.id == "agent"]
    assert private == [] and assigned == []
    assert "agent.emit(" in source and "agent.replace_policy(" in source


def test_stop_waits_for_a_slow_agent_thread_to_send_offline_itself(tmp_path, monkeypatch):
    _register(monkeypatch)
    Wedged.instances[:] = []
    running = Agent.build(profiles.load(_profile(tmp_path)), ["wedged:"])
    running.start()
    [link] = Wedged.instances
    assert link.entered.wait(10), "the agent thread never sent"
    del link.calls[:]
    # Slow, not wedged: back after half of stop's timeout, well before all of it.
    threading.Timer(2.5, link.release.set).start()
    running.stop(timeout=4.0)
    assert link.closed.is_set()   # stop returned after the agent thread's own shutdown
    assert {thread for _, thread in link.calls} == {"gc-agent"}
    assert b'"state":"offline"' in link.sent[-1].body
