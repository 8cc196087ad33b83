# gc-agent: keeps long-running Python applications on Digi gateways out of memory trouble.
#
# Embed it::
#
#     import agent
#     agent.start("/etc/config/gcagent/ix20.ini")
#     agent.on_low_memory(lambda info: my_cache.clear())
#     agent.event("client_disconnected")          # feeds rules with on = app:client_disconnected
#
# or wrap a script: ``python -m agent run --profile P -- app.py ARGS``.
#
# No function here raises into the application because of an agent fault;
# mistakes in how they are called are logged on the "gcagent" logger (which,
# with no logging set up, prints warnings to stderr) and ignored.

import gc
import logging
import re
import threading

from .cputime import thread_cpu as _thread_cpu

# The agent's own code starts loading here (the standard modules above are ones
# an application has anyway): `python -m agent run` counts its CPU from this point.
_IMPORT_CPU = _thread_cpu()

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Callable, List, Optional, Sequence, Union  # noqa: F401 (type comments)

__version__ = "0.1.0"
__all__ = ["start", "stop", "event", "collect", "on_low_memory", "__version__"]

log = logging.getLogger("gcagent")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_lock = threading.RLock()
_agent = None          # the running Agent, if any
_callbacks = []  # type: List[Callable[[dict], object]]  # registered before start()


def start(profile, report=None):  # type: (Any, Union[str, Sequence[str], None]) -> bool
    # Start the agent thread in this process; True when it is running.
    #
    # `profile` is a path to an INI profile (or an `agent.profile.Profile`);
    # `report` overrides the profile's `[report] urls` with one URL or a list.
    # A bad profile or URL is reported on stderr and the agent stays off.
    global _agent
    with _lock:
        if _agent is not None:
            log.warning("gc-agent: start() called twice; the agent is already running")
            return True
        began = _thread_cpu()   # what starting costs is the agent's (agent_cpu_ms)
        try:
            from . import runtime
            from .errors import AgentError
            from .profile import Profile, load
            loaded = profile if isinstance(profile, Profile) else load(str(profile))
            urls = [report] if isinstance(report, str) else report
            candidate = runtime.Agent.build(loaded, urls)
        except AgentError as exc:
            log.warning("gc-agent: not started:\n%s", exc)
            return False
        except Exception as exc:   # an agent bug must not stop the application starting
            log.warning("gc-agent: not started: %s: %s", type(exc).__name__, exc)
            return False
        for callback in _callbacks:
            candidate.add_low_memory_callback(callback)
        try:
            candidate.start()
        except Exception as exc:
            log.warning("gc-agent: not started: %s: %s", type(exc).__name__, exc)
            return False
        _agent = candidate
        import atexit
        atexit.register(stop)
        candidate.cpu.add(_thread_cpu() - began)
        return True


def stop(timeout=5.0):  # type: (float) -> None
    # Send final telemetry and status offline, then stop the agent thread.
    global _agent
    with _lock:
        current, _agent = _agent, None
    if current is not None:
        try:
            current.stop(timeout)
        except Exception as exc:
            log.info("gc-agent: stop: %s: %s", type(exc).__name__, exc)


def event(name, **fields):  # type: (str, **Any) -> None
    # Tell the agent something happened (an `app:NAME` trigger for event rules).
    #
    # Returns at once; the event is reported with `fields` (JSON-able values,
    # others by repr) on the agent's next tick.
    if not isinstance(name, str) or not _NAME.match(name):
        log.warning("gc-agent: event(%r): a name is 1-64 letters, digits, '_', '.' or '-'", name)
        return
    current = _agent
    if current is not None:
        try:
            current.post("app:" + name, _jsonable(fields))
        except Exception as exc:
            log.info("gc-agent: event: %s: %s", type(exc).__name__, exc)


def collect(generation=2, reason="manual"):  # type: (int, str) -> int
    # Run a measured collection now, in the caller's thread; returns objects collected.
    #
    # Works without a running agent too (then it is just gc.collect).
    current = _agent
    # After stop() (or before start()) it is a plain gc.collect: say so, not only "using 2".
    idle = "" if current is not None else " (the agent is not running: not measured or reported)"
    if isinstance(generation, str):   # collect("after-import"): a reason where the generation goes
        log.warning("gc-agent: collect(%r): the first argument is the generation (0, 1 or 2); "
                    "write collect(2, reason=%r). Collecting generation 2%s", generation[:64],
                    generation[:64], idle)
        reason, generation = generation if type(reason) is str and reason == "manual" else reason, 2
    elif not (isinstance(generation, int) and not isinstance(generation, bool)
              and 0 <= generation <= 2):   # no ==: an object's own __eq__ may raise
        log.warning("gc-agent: collect(generation=%s): generation is 0, 1 or 2; using 2%s",
                    _shown(generation), idle)
        generation = 2
    if not isinstance(reason, str) or not _NAME.match(reason):
        reason = "manual"
    if current is None:
        return gc.collect(generation)
    try:
        return current.collect(generation, reason).collected
    except Exception as exc:
        log.info("gc-agent: collect: %s: %s", type(exc).__name__, exc)
        return 0


def _shown(value):  # type: (object) -> str
    # repr(value), short, or its type's name when its repr raises.
    try:
        return repr(value)[:40]
    except Exception:
        return "<%s>" % type(value).__name__


def on_low_memory(callback):  # type: (Callable[[dict], object]) -> None
    # Register `callback(info)` for low-memory rules whose escalation has `callbacks`.
    #
    # `info` holds headroom_kb, below_kb and ceiling_kb. Use it to drop caches.
    # A callback that raises is reported and the others still run.
    if not callable(callback):
        log.warning("gc-agent: on_low_memory(%r): not callable; ignored", callback)
        return
    with _lock:
        _callbacks.append(callback)
        current = _agent
    if current is not None:
        current.add_low_memory_callback(callback)


def running():  # type: () -> Optional[Any]
    # The running `agent.runtime.Agent`, or None (for tests and tools).
    return _agent


def _jsonable(fields):  # type: (dict) -> dict
    import json
    try:
        text = json.dumps(fields, default=repr, allow_nan=False)
    except (TypeError, ValueError):
        text = json.dumps({k: repr(v) for k, v in fields.items()})
    if len(text) > 2048:
        log.warning("gc-agent: event fields over 2048 bytes; dropped")
        return {"truncated": True}
    return json.loads(text)
