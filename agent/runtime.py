# The agent thread: sample -> decide -> act -> report, once per tick.
#
# The agent is a guest in the application's process, so this module's first
# duty is to stay out of the way:
#
# - nothing here raises into the application: every step runs guarded
#   (agent/guard.py): an unexpected exception is counted and reported as an
#   `error` event, that part backs off, and after `MAX_FAILURES` in a row it is
#   disabled, never the application;
# - the application's calls (`event`, `collect`) only append to bounded queues
#   or run one measured collection in the caller's thread;
# - transports are written from this thread only, each behind its own outbox
#   and back-off, so one dead link does not hold up another.

import collections
import logging
import threading
import time

from . import __version__
from .assembly import build_parts, close_parts
from .cputime import CpuAccount
from .errors import TransportError
from .guard import Guard
from .leak import LeakWatch
from .messaging import Messaging
from .rules import Decision, Policy
from .telemetry import TelemetryBatch
from .transports import scheme_of
from .tuning import TunerDriver
from .wakeup import Wakeup

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple  # noqa: F401 (type comments)

    from .actions import ActionResult  # noqa: F401 (type comments)
    from .assembly import Parts  # noqa: F401 (type comments)
    from .probes import Sample  # noqa: F401 (type comments)
    from .profile import Profile  # noqa: F401 (type comments)
    from .reporter import Reporter  # noqa: F401 (type comments)
    from .transports.base import TransportEvent  # noqa: F401 (type comments)

log = logging.getLogger("gcagent")

EVENT_QUEUE = 256         # application events waiting for the next tick


class Agent(Messaging):
    # One running agent. Use `agent.start()`, or `Agent.build(...)`, rather than this class directly.

    version = __version__   # what status says (agent/messaging.py)

    @classmethod
    def build(cls, profile, reports=None, probe=None, clock=time.time, monotonic=time.monotonic):
        # type: (Profile, Optional[Sequence[str]], Optional[Any], Callable[[], float], Callable[[], float]) -> Agent
        # An agent made from its parts (agent.assembly); nothing is left behind if a step fails.
        parts = build_parts(profile, __version__, reports, probe, clock, monotonic)
        try:
            return cls(profile, parts, clock, monotonic)
        except BaseException:
            close_parts(parts.reporters, parts.probe)
            raise

    def __init__(self, profile, parts, clock=time.time, monotonic=time.monotonic):
        # type: (Profile, Parts, Callable[[], float], Callable[[], float]) -> None
        self.profile = profile
        self.problems = []  # type: List[str]  # what keeps a report from working, said at start (preflight.py)
        self._problems_said = 0         # how many of them a status message carried
        self._clock = clock
        self._monotonic = monotonic
        self.device_id = parts.device_id
        self.envelope = parts.envelope
        self.probe = parts.probe
        self.actor = parts.actor
        self.started_at = parts.started_at
        self.reporters = parts.reporters
        self._policy = parts.policy
        # [gc] tune = auto: agent/tuner.py decides, agent/tuning.py applies (docs/tuner.md)
        self.tuner = TunerDriver(profile, self.probe, self.started_at) \
            if profile.gc.tune == "auto" else None
        self._been_up = set()
        self._policy_lock = threading.RLock()
        self._emit_lock = threading.RLock()   # re-entrant: a signal handler may stop us mid-emit
        self._events = collections.deque(maxlen=EVENT_QUEUE)  # type: Deque[Tuple[str, Dict]]
        self.events_dropped = 0
        self._wake = Wakeup()
        self._stopping = threading.Event()
        self._thread = None  # type: Optional[threading.Thread]
        self._guard = Guard(lambda: self.profile.agent.tick, monotonic, self._on_fault)
        self.disabled = self._guard.disabled   # parts given up on (shown by `status`)
        self.errors = 0
        self._telemetry_batch = TelemetryBatch(profile.report.interval, profile.report.batch,
                                               self.started_at)
        self.last_sample = None  # type: Optional[Sample]
        self.leaks = LeakWatch()   # the floor of the reported samples (docs/leaks.md)
        self.cpu = CpuAccount()   # agent_cpu_ms: this thread, and start/stop elsewhere
        self._stopped = False
        self._closed = False
        # Who runs the shutdown (see stop()): decided once, under this lock.
        self._owner_lock = threading.Lock()
        self._handed_over = False
        self._thread_done = False
        self._deadline = 0.0
        self.commands = None
        if profile.commands.key_file:
            from .control import make_commands
            self.commands = make_commands(self)

    # -- the interface agent.control uses -------------------------------------------

    def now(self):  # type: () -> float
        # The agent's monotonic clock, in seconds.
        return self._monotonic()

    def policy_state(self):  # type: () -> Dict[str, Any]
        # The policy's rule names and state (low memory, budget), read under its lock.
        with self._policy_lock:
            state = dict(self._policy.state())
            state["rules"] = [r.name for r in self._policy.rules]
        return state

    def replace_policy(self, profile):  # type: (Profile) -> None
        # Take `profile`'s rules, [agent] and [gc] now (report URLs, buffers, commands stay).
        with self._policy_lock:
            self.profile = self.profile._replace(rules=profile.rules, agent=profile.agent,
                                                 gc=profile.gc, sha256=profile.sha256,
                                                 text=profile.text)
            # freeze already happened at start: the new policy does not repeat it.
            self._policy = Policy(profile.rules, self._monotonic(), profile.agent.budget,
                                  profile.agent.budget_window, None)
            if self.tuner is not None:
                self.tuner.take_rules(profile)

    @property
    def policy(self):  # type: () -> Policy
        # The policy deciding now (read-only: change it with `replace_policy`).
        return self._policy

    # -- life cycle ---------------------------------------------------------------

    def start(self):  # type: () -> None
        # Apply start-up settings, announce ourselves, start the thread.
        #
        # If a step raises, all this agent holds is closed (reporters, transport
        # threads, journals, the gc hook), gc thresholds are put back, and the
        # error goes on: a failed start leaves nothing behind.
        before = None
        try:
            before, after = self.actor.set_thresholds(
                self.profile.gc.thresholds if self.tuner is None else None)
            for reporter in self.reporters:
                # Open now so a destination that cannot work is said at start, where
                # people look; the agent still runs and keeps retrying it.
                try:
                    reporter.open()
                except TransportError as exc:
                    self.problems.append("report %s: %s" % (reporter.transport.describe(), exc))
                    log.warning("gc-agent: report %s: %s (will keep retrying)",
                                reporter.transport.describe(), exc)
            if any(scheme_of(r.transport.url) in ("mqtt", "mqtts") for r in self.reporters):
                # Unreachable brokers: said too. Only a broker has a server to check, so
                # other reports never load the check (docs/footprint.md).
                from .preflight import check_reporters
                check_reporters(self.reporters, self.problems)
            self._emit_status("online")
            if self.commands is not None and self.commands.key_file_warning:
                self._emit_event("error", part="commands", error=self.commands.key_file_warning)
            if before != after:
                self._emit_event("threshold", rule="start", before=list(before), after=list(after))
            # Known before it runs: its first tick may send telemetry, whose
            # agent_cpu_ms reads the thread's own clock only when it knows the thread.
            self._thread = threading.Thread(target=self._run, name="gc-agent", daemon=True)
            self._thread.start()
        except BaseException:
            self._stopped = True
            if before is not None:
                self.actor.set_thresholds(before)
            self._close()
            raise

    def stop(self, timeout=5.0):  # type: (float) -> None
        # Final telemetry, status offline, flush the outboxes, close. Safe to call twice.
        #
        # One thread at a time drives the reporters: if the agent thread has not
        # ended within `timeout / 2` (slow, or wedged in a transport, probe or
        # callback), the shutdown is handed to it, to run when it comes back,
        # and this call waits for that until `timeout` at most, never touching
        # the reporters itself. If the process exits first, the broker publishes
        # the Will, as after a crash (docs/architecture.md).
        if self._stopped:
            return
        self.cpu.begin()   # the final telemetry, made below, counts this call so far
        try:
            self._stop(timeout)
        finally:
            self.cpu.end()

    def _stop(self, timeout):  # type: (float) -> None
        self._stopped = True
        self._stopping.set()
        self._wake.set()
        deadline = self._monotonic() + timeout
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, timeout / 2))
        with self._owner_lock:
            self._deadline = deadline
            if thread is not None and thread is not threading.current_thread() \
                    and not self._thread_done and thread.is_alive():
                self._handed_over = True
        if self._handed_over:
            thread.join(max(0.0, deadline - self._monotonic()))
            if thread.is_alive():
                log.warning("gc-agent: stop: the agent thread did not end within %.1f s; "
                            "it will finish the shutdown itself if it comes back", timeout)
            return
        self._finish(deadline)

    def _finish(self, deadline):  # type: (float) -> None
        # The shutdown sequence, run by the one thread that owns the reporters.
        self._guard.run("events", self._drain_events)   # the application's last words
        self._guard.run("telemetry", self._final_telemetry)
        self._guard.run("status", self._emit_status, "offline")
        # Deliver what we can (an MQTT "offline" needs its PUBACK) until the deadline;
        # what is left goes to the journal when the reporter closes.
        for reporter in self.reporters:
            reporter.retry_now()   # a last try, whatever the back-off said
        waiting = list(self.reporters)
        while waiting and self._monotonic() < deadline:
            last_second = deadline - self._monotonic() < 1.0
            for reporter in list(waiting):
                self._pump(reporter, hurry=True, ungated=last_second)
                if reporter.settled() or not reporter.link_up or reporter.failures:
                    waiting.remove(reporter)
            if waiting:
                time.sleep(0.02)
        self._close()

    def _close(self):  # type: () -> None
        if not self._closed:
            self._closed = True
            close_parts(self.reporters, self.probe)

    @property
    def running(self):  # type: () -> bool
        # True while the agent thread is alive.
        return self._thread is not None and self._thread.is_alive()

    # -- what the application and signal handlers call --------------------------------

    def post(self, trigger, fields=None, wake=False):  # type: (str, Optional[Dict[str, Any]], bool) -> None
        # Queue a trigger (app:NAME, signal, link_down...) for the next tick. Never blocks.
        if len(self._events) == self._events.maxlen:
            self.events_dropped += 1
        self._events.append((trigger, fields or {}))
        if wake:
            self._wake.set()

    def collect(self, generation, reason):  # type: (int, str) -> ActionResult
        # A collection asked for by the application or an operator, in the caller's thread.
        result = self.actor.collect(generation, reason)
        self._after_action(Decision("collect", reason, generation), result)
        return result

    def add_low_memory_callback(self, callback):  # type: (Callable[[dict], object]) -> None
        # Register a callback for the low-memory `callbacks` step.
        self.actor.add_callback(callback)

    # -- the loop ----------------------------------------------------------------------

    def _run(self):  # type: () -> None
        while not self._stopping.is_set():
            try:
                delay = self._tick()
            except Exception as exc:   # a bug in the loop itself: keep going, slower
                delay = self._guard.backoff(self._guard.fault("loop", exc))
            self.cpu.thread_mark()
            self._wake.wait(delay)
        with self._owner_lock:
            self._thread_done = True
            handed_over = self._handed_over
        if handed_over:   # stop() gave up waiting for us: the shutdown is ours to run
            try:
                self._finish(max(self._deadline, self._monotonic() + 1.0))
            except Exception as exc:
                log.info("gc-agent: late shutdown: %s: %s", type(exc).__name__, exc)

    def _tick(self):  # type: () -> float
        now = self._monotonic()
        sample = self._guard.run("probe", self.probe.sample)
        if sample is not None:
            self.last_sample = sample
            triggers = self._drain_events()
            decisions = self._guard.run("rules", self._decide, sample, triggers, now) or []
            if self.tuner is not None:
                tuned = self._guard.run("tuner", self._tune, sample, triggers, decisions, now)
                decisions = decisions if tuned is None else tuned
            for decision in decisions:
                self._guard.run("actions", self._act, decision)
            self._guard.run("telemetry", self._telemetry, sample, now)
        if len(self.problems) > self._problems_said:   # the start-up check found more: say it
            self._guard.run("status", self._emit_status, "online")
        for reporter in self.reporters:
            self._pump(reporter)
        return self.profile.agent.tick

    def _pump(self, reporter, hurry=False, ungated=False):  # type: (Reporter, bool, bool) -> None
        part = "transport " + reporter.transport.describe()
        for event in self._guard.run(part, reporter.pump, self._monotonic(), hurry, ungated) or ():
            self._guard.run(part, self._transport_event, reporter, part, event)

    def _transport_event(self, reporter, part, event):  # type: (Reporter, str, TransportEvent) -> None
        if event.kind == "error":
            self.errors += 1
            log.info("gc-agent: %s: %s", part, event.value)
            self._emit_event("error", part=part, error=event.value)
        elif event.kind == "link":
            trigger = "link_up" if event.value else "link_down"
            self.post(trigger, {"transport": reporter.transport.describe()})
            if event.value:
                if reporter in self._been_up and not self._stopping.is_set():
                    self._emit_status("online")   # the broker published our Will meanwhile
                self._been_up.add(reporter)
        elif event.kind == "mode" and not self._stopping.is_set():
            self._emit_status("online")   # say how this transport delivers now
        elif event.kind == "command" and self.commands is not None:
            from .control import handle_command
            handle_command(self, event.value)

    def _decide(self, sample, triggers, now):  # type: (Sample, List[str], float) -> List[Decision]
        with self._policy_lock:
            return self._policy.decide(sample, triggers, now)

    def _drain_events(self):  # type: () -> List[str]
        triggers = []
        while self._events:
            try:
                trigger, fields = self._events.popleft()
            except IndexError:
                break
            triggers.append(trigger)
            if trigger.startswith("app:"):
                self._emit_event("app", name=trigger[4:], data=fields)
            elif trigger in ("link_down", "link_up"):
                self._emit_event(trigger, **fields)
        return triggers

    def _tune(self, sample, triggers, decisions, now):
        # type: (Sample, List[str], List[Decision], float) -> List[Decision]
        # The tuner's changes, each a `tune` event; returns the rule decisions it keeps.
        kept, changes = self.tuner.step(sample, triggers, decisions, now)
        for change in changes:
            if change.what == "collect":
                self._guard.run("actions", self._act, Decision(
                    "collect", "tune", change.generation, fields=(("why", change.why),)))
                continue
            fields = self.tuner.apply(change)
            if fields is not None:
                self._emit_event("tune", **fields)
        with self._policy_lock:   # last: should the above raise, every decision runs, none twice
            self._policy.dropped([d for d in decisions if d not in kept], now, self.tuner.futile())
        return kept

    def _act(self, decision):  # type: (Decision) -> None
        if decision.action == "event":
            fields = dict(decision.fields)
            if decision.rule:   # gc_disabled / gc_enabled belong to no rule
                fields["rule"] = decision.rule
            self._emit_event(decision.event, **fields)
            return
        result = self.actor.perform(decision)
        self._after_action(decision, result)

    def _after_action(self, decision, result):  # type: (Decision, ActionResult) -> None
        fields = dict(decision.fields)
        if not result.ok:
            self._emit_event("error", part="actions", rule=result.rule, action=result.action,
                             error=result.error)
        if result.action == "collect":
            fields.update(generation=result.generation, collected=result.collected,
                          uncollectable=result.uncollectable)
        elif result.action == "freeze":
            fields.update(frozen=result.collected)
        elif result.action == "callbacks":
            fields.update(callbacks=result.collected)
        if result.ok or result.action == "callbacks":
            if result.action != "freeze":   # freeze gives nothing back: no RSS to report
                fields.update(rss_before_kb=result.rss_before_kb, rss_after_kb=result.rss_after_kb)
            self._emit_event(result.action, rule=result.rule, duration_ms=result.duration_ms,
                             **fields)
        if self.tuner is not None and result.action == "collect" and result.ok:
            self.tuner.record(result.generation, result.reclaimed_kb, result.collected,
                              result.rss_after_kb, self._monotonic())
        with self._policy_lock:
            follow = self._policy.record(decision, result.reclaimed_kb,
                                        result.duration_ms / 1000.0, self._monotonic())
        for extra in follow:
            self._emit_event(extra.event, rule=extra.rule, **dict(extra.fields))
