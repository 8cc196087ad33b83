"""What the remote commands do to a running agent.

The allow-list is fixed here, and no command runs code or names a file:

- ``collect`` {generation}: a measured collection now;
- ``status``: what the agent sees and how it is doing;
- ``set`` {rule, key, value}: change one rule setting listed in
  `[commands] settable`, validated exactly as the profile is; it lasts until
  the next `reload` or restart;
- ``snapshot`` {top, seconds}: tracemalloc's top allocation sites over a
  time-boxed window (at most 30 s), in a thread of its own; tracing is stopped
  afterwards (unless the application was already tracing), so it costs
  nothing later;
- ``reload``: read the profile again from its own path; an invalid profile
  is refused and the old one stays. Rules, tick and budget take effect at
  once; report URLs, buffers and commands at the next start.

Verification (signature, replay window, remembered ids) is `agent.commands`.
"""

import configparser
import io
import json
import threading
import time
from typing import Any, Dict

from .commands import CommandRefused, Commands, load_key
from .errors import ProfileError
from .profile import Profile, load, loads
from .rules import Policy, headroom_kb

SNAPSHOT_MAX_SECONDS = 30.0
SNAPSHOT_MAX_TOP = 50


def make_commands(agent) -> Commands:
    """The verifier and handlers for `agent`, from its profile's [commands]."""
    settings = agent.profile.commands
    handlers = {
        "collect": lambda args: _collect(agent, args),
        "status": lambda args: _status(agent),
        "set": lambda args: _set(agent, args),
        "snapshot": lambda args: {},   # runs in its own thread: see handle_command
        "reload": lambda args: _reload(agent),
    }
    return Commands(load_key(settings.key_file), agent.device_id, handlers,
                    allow=settings.allow, window=settings.window)


def handle_command(agent, payload: bytes) -> None:
    """Verify, run and answer one command payload (agent thread; never raises)."""
    commands = agent.commands
    if _names(payload) == "snapshot":   # seconds long: verified here, run in a thread
        try:
            command = commands.verify(payload)
        except CommandRefused:
            agent._emit("resp", **commands.handle(payload))   # the same refusal, counted
            return
        threading.Thread(target=_snapshot_and_answer, args=(agent, command),
                         name="gc-agent-snapshot", daemon=True).start()
        return
    agent._emit("resp", **commands.handle(payload))


def _names(payload: bytes) -> str:
    try:
        return str(json.loads(payload.decode("utf-8")).get("cmd", ""))
    except Exception:
        return ""


def _int_arg(args: Dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = args.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CommandRefused("bad_args", "%s must be a whole number from %d to %d" % (name, low, high))
    return value


def _collect(agent, args: Dict[str, Any]) -> Dict[str, Any]:
    generation = _int_arg(args, "generation", 2, 0, 2)
    result = agent.collect(generation, "command")
    return {"generation": generation, "collected": result.collected,
            "duration_ms": result.duration_ms, "rss_before_kb": result.rss_before_kb,
            "rss_after_kb": result.rss_after_kb}


def _status(agent) -> Dict[str, Any]:
    sample = agent.last_sample
    with agent._policy_lock:
        policy = agent.policy.state()
    return {
        "uptime_s": round(agent._monotonic() - agent.started_at, 3),
        "rss_kb": sample.rss_kb if sample else None,
        "headroom_kb": headroom_kb(sample) if sample else None,
        "ceiling_kb": agent.probe.ceiling.kb,
        "gc_enabled": sample.gc_enabled if sample else None,
        "rules": [r.name for r in agent.policy.rules],
        "low_memory": policy["low"],
        "budget_skipped": policy["budget_skipped"],
        "buffered": max(r.buffered for r in agent.reporters),
        "dropped": sum(r.dropped for r in agent.reporters),
        "errors": agent.errors,
        "disabled": sorted(agent.disabled),
        "refused": dict(agent.commands.refused),
        "profile_sha256": agent.profile.sha256,
        "tune": agent.tuner.state() if agent.tuner is not None else None,
    }


def _set(agent, args: Dict[str, Any]) -> Dict[str, Any]:
    rule, key, value = args.get("rule"), args.get("key"), args.get("value")
    if not all(isinstance(x, str) for x in (rule, key)) or not isinstance(value, (str, int, float)) \
            or isinstance(value, bool):
        raise CommandRefused("bad_args", "set needs rule, key (strings) and value")
    if "%s.%s" % (rule, key) not in agent.profile.commands.settable:
        raise CommandRefused("not_allowed", "%s.%s is not in [commands] settable" % (rule, key))
    parser = configparser.ConfigParser(interpolation=None, default_section="\x00")
    parser.read_string(agent.profile.text)
    section = "rule:" + rule
    if not parser.has_section(section):
        raise CommandRefused("bad_args", "no rule %r" % rule)
    before = parser.get(section, key, fallback=None)
    parser.set(section, key, str(value))
    text = io.StringIO()
    parser.write(text)
    try:
        changed = loads(text.getvalue(), agent.profile.path)
    except ProfileError as exc:
        raise CommandRefused("bad_args", "; ".join(p.message for p in exc.problems))
    # The flattened text of the live profile changes; its path and hash say what was loaded.
    _apply(agent, agent.profile._replace(rules=changed.rules))
    return {"rule": rule, "key": key, "before": before, "after": str(value)}


def _reload(agent) -> Dict[str, Any]:
    try:
        fresh = load(agent.profile.path)
    except ProfileError as exc:
        raise CommandRefused("bad_args", "profile not reloaded, the old one stays: %s"
                             % "; ".join(str(p) for p in exc.problems[:5]))
    before = agent.profile.sha256
    _apply(agent, fresh)
    return {"profile": fresh.path, "sha256_before": before, "sha256_after": fresh.sha256,
            "note": "rules, tick and budget now; report URLs, buffers, commands at next start"}


def _apply(agent, profile: Profile) -> None:
    with agent._policy_lock:
        agent.profile = agent.profile._replace(rules=profile.rules, agent=profile.agent,
                                               gc=profile.gc, sha256=profile.sha256,
                                               text=profile.text)
        # A new policy starts its schedules afresh; freeze already happened at start.
        agent.policy = Policy(profile.rules, agent._monotonic(), profile.agent.budget,
                              profile.agent.budget_window, None)


def _snapshot_and_answer(agent, command: Dict[str, Any]) -> None:
    def snapshot(args: Dict[str, Any]) -> Dict[str, Any]:
        import tracemalloc
        top = _int_arg(args, "top", 10, 1, SNAPSHOT_MAX_TOP)
        seconds = args.get("seconds", 5)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) \
                or not 0 < seconds <= SNAPSHOT_MAX_SECONDS:
            raise CommandRefused("bad_args", "seconds must be above 0 and at most %g"
                                 % SNAPSHOT_MAX_SECONDS)
        already = tracemalloc.is_tracing()
        if not already:
            tracemalloc.start()
        try:
            time.sleep(seconds)
            taken = tracemalloc.take_snapshot()
        finally:
            if not already:
                tracemalloc.stop()   # tracing costs ~3x run time: never leave it on
        stats = taken.statistics("lineno")[:top]
        return {"seconds": seconds, "top": [
            {"file": s.traceback[0].filename, "line": s.traceback[0].lineno,
             "size_kb": round(s.size / 1024.0, 1), "count": s.count} for s in stats]}

    ident = command["id"]
    try:
        resp = {"id": ident, "ok": True, "result": snapshot(command.get("args") or {})}
    except CommandRefused as exc:
        resp = {"id": ident, "ok": False, "error": "%s: %s" % (exc.reason, exc)}
    except Exception as exc:
        resp = {"id": ident, "ok": False, "error": "failed: %s: %s" % (type(exc).__name__, exc)}
    if not resp["ok"]:
        reason = resp["error"].split(":", 1)[0]
        agent.commands.refused[reason] = agent.commands.refused.get(reason, 0) + 1
    try:
        agent._emit("resp", **resp)
    except Exception:
        pass
