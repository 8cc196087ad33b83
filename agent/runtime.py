"""The agent thread: sample -> decide -> act -> report, once per tick.

The agent is a guest in the application's process, so this module's first
duty is to stay out of the way:

- nothing here raises into the application: every step runs guarded; an
  unexpected exception is counted, reported as an `error` event, and the loop
  goes on with back-off; after `MAX_FAILURES` in a row the failing part (the
  rules, one transport, ...) is disabled, never the application;
- the application's calls (`event`, `collect`) only append to bounded queues
  or run one measured collection in the caller's thread;
- transports are written from this thread only, each behind its own outbox,
  with its own back-off, so one dead link does not hold up another.
"""

import collections
import logging
import os
import sys
import threading
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

from . import __version__
from .actions import ActionResult, Actor
from .errors import TransportError
from .messages import Envelope
from .outbox import Outbox, outgoing
from .probes import Probe, Sample, gc_flavour
from .profile import Profile, resolve_device_id
from .rules import Decision, Policy
from .transports import open_transport
from .transports.base import Transport

log = logging.getLogger("gcagent")

MAX_FAILURES = 5          # unexpected errors in a row before a part is disabled
MAX_BACKOFF = 60.0        # seconds
EVENT_QUEUE = 256         # application events waiting for the next tick
SEND_PER_TICK = 200       # messages one reporter sends in one tick at most


class Reporter(object):
    """One transport and its outbox, with back-off while the transport fails."""

    def __init__(self, transport: Transport, outbox: Outbox) -> None:
        self.transport = transport
        self.outbox = outbox
        self.failures = 0
        self.next_try = 0.0
        self.opened = False
        self.sent = 0
        self.last_error = ""

    def pump(self, now: float, limit: int = SEND_PER_TICK) -> Optional[str]:
        """Send what is queued; returns the error text when the transport just started failing."""
        if now < self.next_try:
            return None
        try:
            if not self.opened:
                self.transport.open()
                self.opened = True
            for _ in range(limit):
                item = self.outbox.peek()
                if item is None:
                    break
                self.transport.send(item)
                self.outbox.pop(item)
                self.sent += 1
        except TransportError as exc:
            self.failures += 1
            delay = min(MAX_BACKOFF, 2.0 ** min(self.failures - 1, 10))
            self.next_try = now + delay * (0.8 + 0.4 * os.urandom(1)[0] / 255.0)   # jitter
            first = self.failures == 1
            self.last_error = str(exc)
            return self.last_error if first else None
        self.failures = 0
        return None


class Agent(object):
    """One running agent. Use `agent.start()` rather than this class directly."""

    def __init__(self, profile: Profile, reports: Optional[Sequence[str]] = None,
                 probe: Optional[Probe] = None, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.profile = profile
        self._clock = clock
        self._monotonic = monotonic
        self.device_id = resolve_device_id(profile)
        self.envelope = Envelope(self.device_id, clock=clock)
        # The same URL twice would mean two writers on one file: keep one.
        urls = list(dict.fromkeys(reports if reports else profile.report.urls))
        # Open transports' modules now, before a launched script changes sys.path.
        self.reporters = [Reporter(open_transport(url), Outbox(profile.buffer.ram_bytes))
                          for url in urls]
        self.probe = probe or Probe(profile.device.memory_limit_kb, profile.agent.probe)
        self.actor = Actor(self.probe.rss_kb)
        self.started_at = monotonic()
        self.policy = Policy(profile.rules, self.started_at, profile.agent.budget,
                             profile.agent.budget_window, profile.gc.freeze_after)
        self._policy_lock = threading.RLock()
        self._emit_lock = threading.RLock()   # re-entrant: a signal handler may stop us mid-emit
        self._events: Deque[Tuple[str, Dict]] = collections.deque(maxlen=EVENT_QUEUE)
        self.events_dropped = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._failures: Dict[str, int] = {}
        self._retry_at: Dict[str, float] = {}
        self.disabled = set()
        self.errors = 0
        self._batch: List[Dict[str, Any]] = []
        self._next_telemetry = self.started_at
        self._pause_total = 0.0
        self._pause_max = 0.0
        self.last_sample: Optional[Sample] = None
        self._thread_cpu = 0.0
        self._stopped = False

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> None:
        """Apply start-up settings, announce ourselves, start the thread."""
        before, after = self.actor.set_thresholds(self.profile.gc.thresholds)
        for reporter in self.reporters:
            # Open now so a destination that cannot work is said at start, where
            # people look; the agent still runs and keeps retrying it.
            try:
                reporter.transport.open()
                reporter.opened = True
            except TransportError as exc:
                log.warning("gc-agent: report %s: %s (will keep retrying)",
                            reporter.transport.describe(), exc)
        self._emit_status("online")
        if before != after:
            self._emit_event("threshold", rule="start", before=list(before), after=list(after))
        self._thread = threading.Thread(target=self._run, name="gc-agent", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Final telemetry, status offline, flush the outboxes, close. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        self._wake.set()
        deadline = self._monotonic() + timeout
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(max(0.0, timeout / 2))
        self._guarded("events", self._drain_events)   # the application's last words
        self._guarded("telemetry", self._final_telemetry)
        self._guarded("status", self._emit_status, "offline")
        for reporter in self.reporters:
            reporter.next_try = 0.0   # a last try, whatever the back-off said
            while len(reporter.outbox) and self._monotonic() < deadline:
                before = len(reporter.outbox)
                self._guarded("transport " + reporter.transport.describe(), reporter.pump,
                              self._monotonic())
                if len(reporter.outbox) >= before:
                    break
            try:
                reporter.transport.close()
            except Exception as exc:
                log.debug("closing %s: %s", reporter.transport.describe(), exc)
        self.probe.close()

    @property
    def running(self) -> bool:
        """True while the agent thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    # -- what the application and signal handlers call --------------------------------

    def post(self, trigger: str, fields: Optional[Dict[str, Any]] = None, wake: bool = False) -> None:
        """Queue a trigger (app:NAME, signal, link_down...) for the next tick. Never blocks."""
        if len(self._events) == self._events.maxlen:
            self.events_dropped += 1
        self._events.append((trigger, fields or {}))
        if wake:
            self._wake.set()

    def collect(self, generation: int, reason: str) -> ActionResult:
        """A collection asked for by the application or an operator, in the caller's thread."""
        result = self.actor.collect(generation, reason)
        self._after_action(Decision("collect", reason, generation), result)
        return result

    def add_low_memory_callback(self, callback: Callable[[dict], object]) -> None:
        """Register a callback for the low-memory `callbacks` step."""
        self.actor.add_callback(callback)

    # -- the loop ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                delay = self._tick()
            except Exception as exc:   # a bug in the loop itself: keep going, slower
                self._fault("loop", exc)
                delay = min(MAX_BACKOFF, self.profile.agent.tick * 2 ** self._failures["loop"])
            self._wake.wait(delay)
            self._wake.clear()

    def _tick(self) -> float:
        now = self._monotonic()
        sample = self._guarded("probe", self.probe.sample)
        if sample is not None:
            self.last_sample = sample
            triggers = self._drain_events()
            decisions = self._guarded("rules", self._decide, sample, triggers, now) or []
            for decision in decisions:
                self._guarded("actions", self._act, decision)
            self._guarded("telemetry", self._telemetry, sample, now)
        for reporter in self.reporters:
            part = "transport " + reporter.transport.describe()
            if part in self.disabled:
                continue
            error = self._guarded(part, reporter.pump, self._monotonic())
            if error:
                self.errors += 1
                log.info("gc-agent: %s failed: %s", part, error)
                self._emit_event("error", part=part, error=error)
        return self.profile.agent.tick

    def _decide(self, sample: Sample, triggers: List[str], now: float) -> List[Decision]:
        with self._policy_lock:
            return self.policy.decide(sample, triggers, now)

    def _drain_events(self) -> List[str]:
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

    def _act(self, decision: Decision) -> None:
        if decision.action == "event":
            fields = dict(decision.fields)
            if decision.rule:   # gc_disabled / gc_enabled belong to no rule
                fields["rule"] = decision.rule
            self._emit_event(decision.event, **fields)
            return
        result = self.actor.perform(decision)
        self._after_action(decision, result)

    def _after_action(self, decision: Decision, result: ActionResult) -> None:
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
        with self._policy_lock:
            follow = self.policy.record(decision, result.reclaimed_kb,
                                        result.duration_ms / 1000.0, self._monotonic())
        for extra in follow:
            self._emit_event(extra.event, rule=extra.rule, **dict(extra.fields))

    # -- telemetry and status ---------------------------------------------------------------

    def _telemetry(self, sample: Sample, now: float) -> None:
        self._pause_total += sample.gc_pause_ms_total
        self._pause_max = max(self._pause_max, sample.gc_pause_ms_max)
        if now < self._next_telemetry:
            return
        self._next_telemetry = now + self.profile.report.interval
        self._batch.append(self._sample_fields(sample))
        self._pause_total = self._pause_max = 0.0
        if len(self._batch) >= self.profile.report.batch:
            self._send_batch()

    def _sample_fields(self, sample: Sample) -> Dict[str, Any]:
        return {
            "ts": round(sample.ts, 3), "mem_free_kb": sample.mem_free_kb,
            "mem_total_kb": sample.mem_total_kb, "rss_kb": sample.rss_kb,
            "gc_count": list(sample.gc_count), "gc_collections": list(sample.gc_collections),
            "gc_collected": sample.gc_collected, "gc_uncollectable": sample.gc_uncollectable,
            "gc_pause_ms_total": round(self._pause_total, 3),
            "gc_pause_ms_max": round(self._pause_max, 3),
        }

    def _final_telemetry(self) -> None:
        if self.last_sample is not None and not self._batch:
            self._batch.append(self._sample_fields(self.last_sample))
        if self._batch:
            self._send_batch()

    def _send_batch(self) -> None:
        batch, self._batch = self._batch, []
        self._emit("telemetry", samples=batch, buffered=max(len(r.outbox) for r in self.reporters),
                   dropped=sum(r.outbox.dropped for r in self.reporters) + self.events_dropped,
                   agent_cpu_ms=round(self._agent_cpu_ms(), 3), agent_errors=self.errors)

    def _agent_cpu_ms(self) -> float:
        clock_id = getattr(time, "CLOCK_THREAD_CPUTIME_ID", None)
        if clock_id is None or threading.current_thread() is not self._thread:
            return self._thread_cpu
        self._thread_cpu = time.clock_gettime(clock_id) * 1000.0
        return self._thread_cpu

    def _emit_status(self, state: str) -> None:
        ceiling = self.probe.ceiling
        self._emit("status", state=state, agent=__version__, python="%d.%d.%d" % sys.version_info[:3],
                   gc_flavour=gc_flavour(), model=self.profile.device.model,
                   profile=self.profile.path, profile_sha256=self.profile.sha256,
                   ceiling_kb=ceiling.kb, uptime_s=round(self._monotonic() - self.started_at, 3),
                   ceiling_source=ceiling.source, probe=self.probe.backend,
                   reports=[r.transport.describe() for r in self.reporters])

    def _emit_event(self, event: str, **fields: Any) -> None:
        self._emit("event", event=event, **fields)

    def _emit(self, type_: str, **fields: Any) -> None:
        # One lock from seq to outbox, so messages made on two threads (the
        # agent's, and the application's through collect()) queue in seq order.
        with self._emit_lock:
            item = outgoing(self.envelope.make(type_, **fields))
            for reporter in self.reporters:
                reporter.outbox.put(item)

    # -- staying alive --------------------------------------------------------------------

    def _guarded(self, part: str, fn: Callable, *args: Any) -> Any:
        """Run one part of the loop; a failing part backs off on its own, the rest go on."""
        if part in self.disabled or self._monotonic() < self._retry_at.get(part, 0.0):
            return None
        try:
            result = fn(*args)
        except Exception as exc:
            self._fault(part, exc)
            return None
        self._failures[part] = 0
        return result

    def _fault(self, part: str, exc: Exception) -> None:
        count = self._failures[part] = self._failures.get(part, 0) + 1
        self.errors += 1
        self._retry_at[part] = self._monotonic() + min(
            MAX_BACKOFF, self.profile.agent.tick * 2 ** min(count, 8))
        log.info("gc-agent: %s failed (%d in a row): %s: %s", part, count, type(exc).__name__, exc)
        try:
            self._emit_event("error", part=part, error="%s: %s" % (type(exc).__name__, exc),
                             count=count)
            if count >= MAX_FAILURES:
                self.disabled.add(part)
                self._emit_event("disabled", part=part, after_failures=count)
        except Exception:   # reporting the fault failed too; the counters still say it
            pass

