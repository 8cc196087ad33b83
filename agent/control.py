# What the remote commands do to a running agent.
#
# The allow-list is fixed here, and no command runs code or names a file:
#
# - ``collect`` {generation}: a measured collection now;
# - ``status``: what the agent sees and how it is doing;
# - ``set`` {rule, key, value}: change one rule setting listed in
#   `[commands] settable`, validated exactly as the profile is; changes
#   accumulate (each starts from the rules the last one left) and last until
#   the next `reload` or restart; `before` is the value in effect;
# - ``snapshot`` {top, seconds}: tracemalloc's top allocation sites over a
#   time-boxed window (at most 30 s), in a thread of its own, one at a time
#   (another is refused `busy` meanwhile); tracing is stopped
#   afterwards (unless the application was already tracing), so it costs
#   nothing later;
# - ``reload``: read the profile again from its own path; an invalid profile
#   is refused and the old one stays. Rules, tick and budget take effect at
#   once; report URLs, buffers and commands at the next start.
#
# Verification (signature, replay window, remembered ids) is `agent.commands`.
# The agent is reached only through its public interface (`emit`, `now`,
# `policy_state`, `replace_policy`, `collect` and its read-only attributes),
# never its private state: see docs/architecture.md.
# Refusals are answered within a rate, the rest counted (docs/hardening.md).

import configparser
import io
import json
import logging
import os
import stat
import threading
import time

from .commands import CommandRefused, Commands, load_key
from .errors import ProfileError
from .profile import load, loads
from .rules import headroom_kb

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Dict  # noqa: F401 (type comments)

SNAPSHOT_MAX_SECONDS = 30.0
SNAPSHOT_MAX_TOP = 50
REPLAY_IDS_FILE = "replay-ids"   # beside the journals under [buffer] flash

log = logging.getLogger("gcagent")


def make_commands(agent):  # type: (Any) -> Commands
    # The verifier and handlers for `agent`, from its profile's [commands].
    settings = agent.profile.commands
    handlers = {
        "collect": lambda args: _collect(agent, args),
        "status": lambda args: _status(agent),
        "set": lambda args: _set(agent, args),
        "snapshot": lambda args: {},   # runs in its own thread: see handle_command
        "reload": lambda args: _reload(agent),
    }
    key = load_key(settings.key_file)
    warning = key_file_warning(settings.key_file)
    if warning:
        log.warning("gc-agent: %s", warning)
    ids = None
    if agent.profile.buffer.flash:
        from .replay_guard import ReplayIds
        try:
            os.makedirs(agent.profile.buffer.flash, exist_ok=True)
        except OSError:
            pass   # ReplayIds counts the failure when it cannot write there
        # One file per application: agents sharing a profile on a gateway share the
        # flash folder, and one's rewrite would drop the other's ids (docs/field.md).
        from .identity import app_fields
        app = app_fields(agent.device_id).get("app")
        name = REPLAY_IDS_FILE + ("-" + app if app else "")
        ids = ReplayIds(os.path.join(agent.profile.buffer.flash, name), 1024, settings.window)
    out = Commands(key, agent.device_id, handlers, allow=settings.allow, window=settings.window,
                   ids=ids)
    out.key_file_warning = warning
    return out


def key_file_warning(path):  # type: (str) -> str
    # A sentence when the key file can be read by group or others, else ''.
    #
    # Warned about, not refused (docs/hardening.md): refusing would take remote
    # management away from a fleet over a file mode; the warning is on stderr at
    # start, in an `error` event and in `status` until the mode is fixed.
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return ""
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return ("key file %s is readable by group or others (mode %03o): anyone on the device "
                "who can read it can sign commands; chmod 600 it" % (path, stat.S_IMODE(mode)))
    return ""


def handle_command(agent, payload):  # type: (Any, bytes) -> None
    # Verify, run and answer one command payload (agent thread; never raises).
    commands = agent.commands
    if _names(payload) == "snapshot":   # seconds long: verified here, run in a thread
        try:
            command = commands.verify(payload)
        except CommandRefused:
            _answer(agent, commands.handle(payload))   # the same refusal, counted
            return
        # One at a time: tracemalloc is one per process, and the first snapshot to
        # finish would stop tracing under the others.
        if not agent.commands.snapshot_lock.acquire(blocking=False):
            _count(agent, "busy")
            _answer(agent, {"id": command["id"], "ok": False,
                            "error": "busy: a snapshot is already running; try again after it"})
            return
        try:
            threading.Thread(target=_snapshot_and_answer, args=(agent, command),
                             name="gc-agent-snapshot", daemon=True).start()
        except Exception:
            agent.commands.snapshot_lock.release()
            raise
        return
    _answer(agent, commands.handle(payload))


def _answer(agent, resp):  # type: (Any, Dict[str, Any]) -> None
    # Emit a resp; refusals only within the answer rate (agent/limits.py), the rest counted.
    if resp.get("ok") or agent.commands.answers.take():
        agent.emit("resp", **resp)


def _count(agent, reason):  # type: (Any, str) -> None
    refused = agent.commands.refused
    refused[reason] = refused.get(reason, 0) + 1


def _names(payload):  # type: (bytes) -> str
    try:
        return str(json.loads(payload.decode("utf-8")).get("cmd", ""))
    except Exception:
        return ""


def _int_arg(args, name, default, low, high):  # type: (Dict[str, Any], str, int, int, int) -> int
    value = args.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CommandRefused("bad_args", "%s must be a whole number from %d to %d" % (name, low, high))
    return value


def _collect(agent, args):  # type: (Any, Dict[str, Any]) -> Dict[str, Any]
    generation = _int_arg(args, "generation", 2, 0, 2)
    result = agent.collect(generation, "command")
    return {"generation": generation, "collected": result.collected,
            "duration_ms": result.duration_ms, "rss_before_kb": result.rss_before_kb,
            "rss_after_kb": result.rss_after_kb}


def _status(agent):  # type: (Any) -> Dict[str, Any]
    sample = agent.last_sample
    policy = agent.policy_state()
    return {
        "uptime_s": round(agent.now() - agent.started_at, 3),
        "rss_kb": sample.rss_kb if sample else None,
        "headroom_kb": headroom_kb(sample) if sample else None,
        "ceiling_kb": agent.probe.ceiling.kb,
        "gc_enabled": sample.gc_enabled if sample else None,
        "rules": policy["rules"],
        "low_memory": policy["low"],
        "budget_skipped": policy["budget_skipped"],
        "buffered": max(r.buffered for r in agent.reporters),
        "dropped": sum(r.dropped for r in agent.reporters),
        "errors": agent.errors,
        "disabled": sorted(agent.disabled),
        "refused": dict(agent.commands.refused),
        "refused_unanswered": agent.commands.answers.denied,
        "commands_dropped": sum(getattr(r.transport, "commands_dropped", 0)
                                for r in agent.reporters),
        "journal_errors": sum(r.journal_errors for r in agent.reporters),
        "key_file_warning": agent.commands.key_file_warning if agent.commands else "",
        "profile_sha256": agent.profile.sha256,
        "tune": agent.tuner.state() if agent.tuner is not None else None,
    }


def _set(agent, args):  # type: (Any, Dict[str, Any]) -> Dict[str, Any]
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
    if before is None:   # not in the profile: the rule's default is what applied
        before = _live_value(agent, rule, key)
    parser.set(section, key, str(value))
    text = io.StringIO()
    parser.write(text)
    try:
        changed = loads(text.getvalue(), agent.profile.path)
    except ProfileError as exc:
        raise CommandRefused("bad_args", "; ".join(p.message for p in exc.problems)) from exc
    # The flattened text of the live profile changes, so the next `set` starts from
    # this one; its path and hash still say what was loaded.
    agent.replace_policy(agent.profile._replace(rules=changed.rules, text=text.getvalue()))
    return {"rule": rule, "key": key, "before": before, "after": str(value)}


def _live_value(agent, rule, key):  # type: (Any, str, str) -> Any
    # The running rule's value of `key` (a default), as JSON can carry it.
    from .rules.table import value
    for settings in agent.profile.rules:
        if settings.name == rule:
            found = value(settings, key)
            return found if isinstance(found, (str, int, float, type(None))) else str(found)
    return None


def _reload(agent):  # type: (Any) -> Dict[str, Any]
    try:
        fresh = load(agent.profile.path)
    except ProfileError as exc:
        raise CommandRefused("bad_args", "profile not reloaded, the old one stays: %s"
                             % "; ".join(str(p) for p in exc.problems[:5])) from exc
    before = agent.profile.sha256
    agent.replace_policy(fresh)
    return {"profile": fresh.path, "sha256_before": before, "sha256_after": fresh.sha256,
            "note": "rules, tick and budget now; report URLs, buffers, commands at next start"}


def _snapshot_and_answer(agent, command):  # type: (Any, Dict[str, Any]) -> None
    def snapshot(args):  # type: (Dict[str, Any]) -> Dict[str, Any]
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
    agent.commands.snapshot_lock.release()   # tracing is already off: the next snapshot may start
    if not resp["ok"]:
        _count(agent, resp["error"].split(":", 1)[0])
    try:
        _answer(agent, resp)
    except Exception:
        pass
