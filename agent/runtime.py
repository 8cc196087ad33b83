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
import sys
import threading
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

from . import __version__
from .actions import ActionResult, Actor
from .bundle import bundle_field
from .errors import AgentError, TransportError
from .leak import LeakWatch
from .messages import Envelope
from .outbox import Outbox, outgoing
from .probes import Probe, Sample, gc_flavour
from .profile import Profile, resolve_device_id
from .reporter import Reporter
from .rules import Decision, Policy
from .transports import open_transport
from .transports.base import Context, TransportEvent
from .tuning import TunerDriver, can_freeze

log = logging.getLogger("gcagent")

MAX_FAILURES = 5          # unexpected errors in a row before a part is disabled
MAX_BACKOFF = 60.0        # seconds
EVENT_QUEUE = 256         # application events waiting for the next tick


def _report_name(transport) -> str:
    note = transport.note()
    return "%s (%s)" % (transport.describe(), note) if note else transport.describe()


def journal_folder(flash: str, destination: str) -> str:
    """Each report destination keeps its own journal under [buffer] flash."""
    return "%s/%s" % (flash, "".join(c if c.isalnum() else "_" for c in destination))


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
        self.probe = probe or Probe(profile.device.memory_limit_kb, profile.agent.probe)
        self.actor = Actor(self.probe.rss_kb)
        self.started_at = monotonic()
        # The same URL twice would mean two writers on one file: keep one.
        urls = list(dict.fromkeys(reports if reports else profile.report.urls))
        context = Context(self.device_id, self._will(), profile.report)
        # Transports' modules are imported now, before a launched script changes sys.path.
        self.reporters = [self._reporter(open_transport(url, context)) for url in urls]
        self._been_up = set()
        self.commands = None
        if profile.commands.key_file:
            from .control import make_commands
            self.commands = make_commands(self)
        # [gc] tune = auto: the tuner owns thresholds and freeze (docs/tuner.md). Without
        # gc.freeze (Python 3.6) freeze_after_start is skipped, said in status, not an error.
        self.tuner = TunerDriver(profile, self.probe, self.started_at) \
            if profile.gc.tune == "auto" else None
        freeze_after = profile.gc.freeze_after if self.tuner is None and can_freeze() else None
        self.policy = Policy(profile.rules, self.started_at, profile.agent.budget,
                             profile.agent.budget_window, freeze_after)
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
        self.leaks = LeakWatch()   # the floor of the reported samples (docs/leaks.md)
        self._thread_cpu = 0.0
        self._stopped = False

    def _will(self) -> bytes:
        """The retained status "offline" the broker publishes if we vanish (seq 0)."""
        from .messages import encode
        will = self._status_fields("offline")
        will.update(v=1, type="status", device=self.device_id, boot=self.envelope.boot, seq=0,
                    ts=round(self._clock(), 3), will=True)
        return encode(will, self.profile.report.compress)

    def _reporter(self, transport) -> Reporter:
        journal = None
        buffer = self.profile.buffer
        if buffer.flash and transport.has_link:
            from .journal import Journal
            try:
                journal = Journal(journal_folder(buffer.flash, transport.describe()),
                                  buffer.flash_max_bytes, sync_every=buffer.sync_every)
            except AgentError as exc:
                log.warning("gc-agent: flash buffer off for %s: %s", transport.describe(), exc)
        return Reporter(transport, Outbox(buffer.ram_bytes), journal, buffer.spill_after,
                        self.profile.report.replay_rate)

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> None:
        """Apply start-up settings, announce ourselves, start the thread."""
        before, after = self.actor.set_thresholds(
            self.profile.gc.thresholds if self.tuner is None else None)
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
        # Deliver what we can (an MQTT "offline" needs its PUBACK) until the deadline;
        # what is left goes to the journal when the reporter closes.
        for reporter in self.reporters:
            reporter.next_try = 0.0   # a last try, whatever the back-off said
        waiting = list(self.reporters)
        while waiting and self._monotonic() < deadline:
            last_second = deadline - self._monotonic() < 1.0
            for reporter in list(waiting):
                self._pump(reporter, hurry=True, ungated=last_second)
                if reporter.settled() or not reporter.link_up or reporter.failures:
                    waiting.remove(reporter)
            if waiting:
                time.sleep(0.02)
        for reporter in self.reporters:
            try:
                reporter.close()
            except Exception as exc:
                log.info("gc-agent: closing %s: %s", reporter.transport.describe(), exc)
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
            if self.tuner is not None:
                tuned = self._guarded("tuner", self._tune, sample, triggers, decisions, now)
                decisions = decisions if tuned is None else tuned
            for decision in decisions:
                self._guarded("actions", self._act, decision)
            self._guarded("telemetry", self._telemetry, sample, now)
        for reporter in self.reporters:
            self._pump(reporter)
        return self.profile.agent.tick

    def _pump(self, reporter: Reporter, hurry: bool = False, ungated: bool = False) -> None:
        part = "transport " + reporter.transport.describe()
        for event in self._guarded(part, reporter.pump, self._monotonic(), hurry, ungated) or ():
            self._guarded(part, self._transport_event, reporter, part, event)

    def _transport_event(self, reporter: Reporter, part: str, event: TransportEvent) -> None:
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

    def _decide(self, sample: Sample, triggers: List[str], now: float) -> List[Decision]:
        with self._policy_lock:
            return self.policy.decide(sample, triggers, now)

    def _tune(self, sample: Sample, triggers: List[str], decisions: List[Decision],
              now: float) -> List[Decision]:
        """The tuner's changes, each a `tune` event; returns the rule decisions it keeps."""
        kept, changes = self.tuner.step(sample, triggers, decisions, now)
        for change in changes:
            if change.what == "collect":
                self._guarded("actions", self._act, Decision(
                    "collect", "tune", change.generation, fields=(("why", change.why),)))
                continue
            fields = self.tuner.apply(change)
            if fields is not None:
                self._emit_event("tune", **fields)
        return kept

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
        if self.tuner is not None and result.action == "collect" and result.ok:
            self.tuner.record(result.generation, result.reclaimed_kb, result.collected,
                              result.rss_after_kb, self._monotonic())
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
        self._guarded("leak", self._judge_leak, sample)
        if len(self._batch) >= self.profile.report.batch:
            self._send_batch()

    def _judge_leak(self, sample: Sample) -> None:
        # Judged on the samples the console also receives, so both reach one verdict.
        change = self.leaks.observe(sample.ts, sample.rss_kb, sample.ceiling_kb,
                                    sample.gc_collections)
        if change is not None:
            self._emit_event(change[0], **change[1])

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
        # The newest sample goes in unless it is already the batch's last: pauses and
        # collections since the previous report must not be lost at stop.
        sample = self.last_sample
        if sample is not None and (not self._batch or self._batch[-1]["ts"] < round(sample.ts, 3)):
            self._batch.append(self._sample_fields(sample))
        if self._batch:
            self._send_batch()

    def _send_batch(self) -> None:
        batch, self._batch = self._batch, []
        self._emit("telemetry", samples=batch, buffered=max(r.buffered for r in self.reporters),
                   dropped=sum(r.dropped for r in self.reporters) + self.events_dropped,
                   agent_cpu_ms=round(self._agent_cpu_ms(), 3), agent_errors=self.errors)

    def _agent_cpu_ms(self) -> float:
        clock_id = getattr(time, "CLOCK_THREAD_CPUTIME_ID", None)
        if clock_id is None or threading.current_thread() is not self._thread:
            return self._thread_cpu
        self._thread_cpu = time.clock_gettime(clock_id) * 1000.0
        return self._thread_cpu

    def _status_fields(self, state: str) -> Dict[str, Any]:
        ceiling = self.probe.ceiling
        return dict(state=state, agent=__version__, python="%d.%d.%d" % sys.version_info[:3],
                    gc_flavour=gc_flavour(), model=self.profile.device.model,
                    profile=self.profile.path, profile_sha256=self.profile.sha256,
                    ceiling_kb=ceiling.kb, uptime_s=round(self._monotonic() - self.started_at, 3),
                    ceiling_source=ceiling.source, probe=self.probe.backend,
                    freeze="available" if can_freeze() else "unavailable (Python 3.7+)",
                    **self._tune_field(), **bundle_field())

    def _tune_field(self) -> Dict[str, Any]:
        return {"tune": self.tuner.state()} if getattr(self, "tuner", None) is not None else {}

    def _emit_status(self, state: str) -> None:
        self._emit("status", reports=[_report_name(r.transport) for r in self.reporters],
                   **self._status_fields(state))

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

