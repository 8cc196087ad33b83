# The agent's outgoing side: status, events and telemetry, stamped and queued.
#
# A part of `agent.runtime.Agent` (its base class), kept apart so the loop reads
# on its own: every message is made here, from whichever thread, in seq order
# under one lock, and queued for every report destination (docs/architecture.md).
# It uses the Agent's `version`, `envelope`, `reporters`, `profile`, `probe`, `cpu`,
# `tuner`, `leaks`, `problems`, `errors` and guard, which `Agent.__init__` sets.

import logging

from .assembly import report_name, status_fields
from .guard import MAX_FAILURES
from .outbox import outgoing

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Dict, List  # noqa: F401 (type comments)

    from .probes import Sample  # noqa: F401 (type comments)

log = logging.getLogger("gcagent")


class Messaging(object):
    # Status, events and telemetry batches of one agent.

    def _telemetry(self, sample, now):  # type: (Sample, float) -> None
        batch = self._telemetry_batch
        if batch.add(sample, now):   # this sample is reported
            self._guard.run("leak", self._judge_leak, sample)
            if batch.full():
                self._send_batch(batch.take())

    def _judge_leak(self, sample):  # type: (Sample) -> None
        # Judged on the samples the console also receives, so both reach one verdict.
        change = self.leaks.observe(sample.ts, sample.rss_kb, sample.ceiling_kb,
                                    sample.gc_collections)
        if change is not None:
            self._emit_event(change[0], **change[1])

    def _final_telemetry(self):  # type: () -> None
        if self.last_sample is None:   # stopped before the first tick: still report one sample
            self.last_sample = self.probe.sample()
        batch = self._telemetry_batch.final(self.last_sample)
        if batch:
            self._send_batch(batch)

    def _send_batch(self, batch):  # type: (List[Dict[str, Any]]) -> None
        self.emit("telemetry", samples=batch, buffered=max(r.buffered for r in self.reporters),
                  dropped=sum(r.dropped for r in self.reporters) + self.events_dropped,
                  agent_cpu_ms=round(self.cpu.total_ms(self._thread), 3), agent_errors=self.errors)

    def _emit_status(self, state):  # type: (str) -> None
        self._problems_said = len(self.problems)
        tune = {"tune": self.tuner.state()} if self.tuner is not None else {}
        self.emit("status", reports=[report_name(r.transport) for r in self.reporters],
                  **status_fields(self.profile, self.probe, self._monotonic() - self.started_at,
                                  state, self.version, self.device_id, self.problems), **tune)

    def _emit_event(self, event, **fields):  # type: (str, **Any) -> None
        self.emit("event", event=event, **fields)

    def emit(self, type_, **fields):  # type: (str, **Any) -> None
        # Stamp a message (seq, boot, ts) and queue it for every report destination.
        # One lock from seq to outbox, so messages made on two threads (the
        # agent's, and the application's through collect()) queue in seq order.
        with self._emit_lock:
            item = outgoing(self.envelope.make(type_, **fields))
            for reporter in self.reporters:
                reporter.outbox.put(item)

    def _on_fault(self, part, exc, count):  # type: (str, Exception, int) -> None
        # What agent/guard.py calls when a part fails: count it, say it.
        self.errors += 1
        log.info("gc-agent: %s failed (%d in a row): %s: %s", part, count, type(exc).__name__, exc)
        try:
            self._emit_event("error", part=part, error="%s: %s" % (type(exc).__name__, exc),
                             count=count)
            if count >= MAX_FAILURES:
                self._emit_event("disabled", part=part, after_failures=count)
        except Exception:   # reporting the fault failed too; the counters still say it
            pass
