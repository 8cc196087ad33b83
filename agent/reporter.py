# One report destination: a transport, its outbox, and store-and-forward.
#
# Messages wait in the RAM outbox (bounded in bytes, oldest dropped and
# counted). A transport with acknowledgements (MQTT) takes a message in flight
# and the message leaves us only on its ack. When the link has been down for
# `spill_after`, the RAM backlog goes to the journal on flash, at most once per
# `spill_after` so the flash sees few, batched writes; at shutdown everything
# not yet acknowledged goes there too. After reconnecting (or at the next start)
# the journal is replayed first, oldest segment first, at `replay_rate`
# messages a second, each marked `historical: true`; a segment is removed only
# when every record in it was acknowledged.

import json
import os

from .errors import AgentError, TransportError
from .outbox import outgoing
from .transports.base import TransportEvent

TYPE_CHECKING = False
if TYPE_CHECKING:   # type comments only: importing typing costs the device RSS (docs/footprint.md)
    from typing import Any, Dict, List, Optional  # noqa: F401 (type comments)

    from .outbox import Outbox, Outgoing  # noqa: F401 (type comments)
    from .transports.base import Transport  # noqa: F401 (type comments)

MAX_BACKOFF = 60.0
SEND_PER_TICK = 200
JOURNAL_ERROR_EVERY = 60.0   # seconds between two error events about the journal


def _jitter():  # type: () -> float
    # 0.8 to 1.2, so a fleet that lost its broker together does not retry in step
    # (os.urandom: `random` would add about 1 MB of imports to the process).
    return 0.8 + 0.4 * int.from_bytes(os.urandom(2), "big") / 65535.0


class _Replay(object):
    # The journal segment being replayed and what of it is still unacknowledged.

    def __init__(self, name, records):  # type: (str, List[bytes]) -> None
        self.name = name
        self.records = records
        self.next = 0
        self.outstanding = 0


def historical(body):  # type: (bytes) -> Optional[Outgoing]
    # A journal record as a replayable message flagged historical (None if unusable).
    try:
        message = json.loads(body.decode("utf-8"))
        message["historical"] = True
        message["seq"], message["type"] = int(message["seq"]), str(message["type"])
        return outgoing(message, historical=True)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


class Reporter(object):
    # Moves messages from the outbox (and journal) to one transport.

    def __init__(self, transport, outbox, journal=None, spill_after=60.0, replay_rate=20.0):
        # type: (Transport, Outbox, Any, float, float) -> None
        self.transport = transport
        self.outbox = outbox
        self.journal = journal
        self.spill_after = spill_after
        self.replay_rate = replay_rate
        self.failures = 0
        self.next_try = 0.0
        self.opened = False
        self.sent = 0
        self.acked = 0
        self.last_error = ""
        self.link_up = None if transport.has_link else True  # type: Optional[bool]
        self._down_since = None  # type: Optional[float]
        self._last_spill = 0.0
        self._inflight = {}  # type: Dict[int, Outgoing]  # id(item) -> item
        self._replay = None  # type: Optional[_Replay]
        self._replay_of = {}  # type: Dict[int, _Replay]  # id(item) -> its segment
        self._tokens = 0.0
        self._tokens_at = None  # type: Optional[float]
        self.journal_records = journal.pending() if journal is not None else 0
        self._spilled_this_run = 0
        self.journal_errors = 0
        self._journal_errors_said = 0
        self._journal_said_at = None  # type: Optional[float]
        self._journaled = {}  # type: Dict[int, Outgoing]  # in flight, with a copy on flash
        self.lost = 0   # unacknowledged at shutdown and refused by the journal

    # -- numbers for telemetry ------------------------------------------------------

    @property
    def buffered(self):  # type: () -> int
        # Messages not yet acknowledged: in RAM, in flight, and on flash.
        return len(self.outbox) + len(self._inflight) + self.journal_records

    @property
    def dropped(self):  # type: () -> int
        # Messages lost to a full outbox or a full journal since start.
        return self.outbox.dropped + self.lost + (self.journal.dropped if self.journal is not None else 0)

    # -- the tick -------------------------------------------------------------------------

    def pump(self, now, hurry=False, ungated=False):  # type: (float, bool, bool) -> List[TransportEvent]
        # Open, drain the transport's events, spill or replay, send. Returns link/command/error events.
        #
        # TransportError becomes an "error" event (first of a streak) and a back-off;
        # any other exception is a bug and propagates to the runtime's guard. At
        # shutdown `hurry` lifts the replay rate, and `ungated` lets new messages
        # (the final status offline) pass a replay still in progress: a clean
        # disconnect cancels the Will, so "offline" must get out.
        if now < self.next_try:
            return []
        out = []  # type: List[TransportEvent]
        try:
            self.open()
            for event in self.transport.poll():
                if event.kind == "ack":
                    self._acked(event.value)
                    continue
                if event.kind == "link":
                    self._link(bool(event.value), now)
                out.append(event)
            if not self.link_up and self._down_since is None:
                # Never up yet counts as down since the first tick: a device that
                # boots in an outage must journal too (docs/hardening.md).
                self._down_since = now
            if not self.link_up and self.journal is not None \
                    and now - self._down_since >= self.spill_after \
                    and now - self._last_spill >= self.spill_after:
                self._last_spill = now
                self.spill(include_inflight=False)
            self._report_journal_errors(now, out)
            if self.link_up:
                replaying = self._send_replay(now, hurry)
                # This boot's spilled messages are older than what waits in RAM: they
                # go first. Earlier boots' records may interleave (order is per boot).
                if ungated or not (replaying and self._spilled_this_run):
                    self._send_new()
        except TransportError as exc:
            self.failures += 1
            delay = min(MAX_BACKOFF, 2.0 ** min(self.failures - 1, 10))
            self.next_try = now + delay * _jitter()
            self.last_error = str(exc)
            if self.failures == 1:
                out.append(TransportEvent("error", self.last_error))
            return out
        self.failures = 0
        return out

    def open(self):  # type: () -> None
        # Open the transport if it is not open yet; TransportError says why it cannot be.
        if not self.opened:
            self.transport.open()
            self.opened = True

    def retry_now(self):  # type: () -> None
        # Forget the back-off: the next `pump` tries at once (the last try at shutdown).
        self.next_try = 0.0
    def _report_journal_errors(self, now, out):  # type: (float, List[TransportEvent]) -> None
        # A full or failing flash is said as an error event, at most once a minute.
        if self.journal_errors > self._journal_errors_said and (
                self._journal_said_at is None or now - self._journal_said_at >= JOURNAL_ERROR_EVERY):
            self._journal_said_at = now
            self._journal_errors_said = self.journal_errors
            out.append(TransportEvent("error", "journal: %d errors so far, last: %s"
                                      % (self.journal_errors, self.last_error)))

    def _link(self, up, now):  # type: (bool, float) -> None
        self.link_up = up
        self._down_since = None if up else now

    def _send_new(self):  # type: () -> None
        for _ in range(SEND_PER_TICK):
            if not self.transport.ready():
                return
            item = self.outbox.peek()
            if item is None:
                return
            delivered = self.transport.send(item)
            self.outbox.pop(item)
            self.sent += 1
            if not delivered:
                self._inflight[id(item)] = item

    def _send_replay(self, now, hurry=False):  # type: (float, bool) -> bool
        # Replay journal records within the rate; True while the journal is not done.
        if self.journal is None:
            return False
        if self._tokens_at is None:
            self._tokens_at = now
        self._tokens = min(self.replay_rate, self._tokens + (now - self._tokens_at) * self.replay_rate)
        if hurry:
            self._tokens = float(SEND_PER_TICK)
        self._tokens_at = now
        while self._tokens >= 1 and self.transport.ready():
            replay = self._replay
            if replay is None or replay.next >= len(replay.records):
                if replay is not None and replay.outstanding:
                    return True   # wait for this segment's acks before moving on
                if replay is not None:
                    self._finish(replay)
                found = self._journal_call(self.journal.oldest)
                if not found:
                    self._replay = None
                    self._spilled_this_run = 0
                    self.journal_records = 0
                    return False
                replay = self._replay = _Replay(found[0], found[1])
                if not replay.records:
                    continue
            body = replay.records[replay.next]
            replay.next += 1
            item = historical(body)
            if item is None:   # a record that is intact but not a message: count it gone
                self.journal_records = max(0, self.journal_records - 1)
                continue
            self._tokens -= 1
            self.sent += 1
            if self.transport.send(item):
                self.journal_records = max(0, self.journal_records - 1)
            else:
                replay.outstanding += 1
                self._inflight[id(item)] = item
                self._replay_of[id(item)] = replay
        replay = self._replay
        if replay is not None and replay.next >= len(replay.records) and not replay.outstanding:
            self._finish(replay)
        return True

    def _finish(self, replay):  # type: (_Replay) -> None
        self._journal_call(self.journal.remove, replay.name)
        if self._replay is replay:
            self._replay = None

    def _acked(self, item):  # type: (Outgoing) -> None
        key = id(item)
        if self._inflight.pop(key, None) is None:
            return
        self._journaled.pop(key, None)
        self.acked += 1
        replay = self._replay_of.pop(key, None)
        if replay is not None:
            replay.outstanding -= 1
            self.journal_records = max(0, self.journal_records - 1)

    # -- store-and-forward ----------------------------------------------------------------

    def spill(self, include_inflight):  # type: (bool) -> int
        # Move the RAM backlog (and, at shutdown, what is in flight) to the journal.
        if self.journal is None:
            return 0
        written = 0
        # In flight is older than what waits in RAM. During an outage a copy goes to
        # flash and the message stays in flight (the transport resends it after a
        # reconnect), so kill -9 loses none of it; a duplicate is possible, dropped
        # by (device, boot, seq) as any other (docs/hardening.md).
        items = sorted((i for k, i in self._inflight.items()
                        if k not in self._replay_of and k not in self._journaled),
                       key=lambda i: i.seq)
        for item in items:
            if self._journal_call(self.journal.append, item.body) is False:
                if include_inflight:
                    self.lost += 1   # flash full at shutdown: nowhere left to keep it; counted
            else:
                self._journaled[id(item)] = item
                written += 1
        if include_inflight:   # at shutdown
            self._inflight.clear()
            self._journaled.clear()
        while True:
            item = self.outbox.peek()
            if item is None:
                break
            # A message leaves RAM only once the journal holds it: with the flash
            # full (or gone) the rest stays in the outbox, bounded and counted there.
            if self._journal_call(self.journal.append, item.body) is False:
                break
            self.outbox.pop(item)
            written += 1
        self._journal_call(self.journal.sync)
        self.journal_records += written
        self._spilled_this_run += written
        return written

    def _journal_call(self, fn, *args):
        try:
            return fn(*args)
        except AgentError as exc:   # flash full or gone: count it; RAM delivery goes on
            self.journal_errors += 1
            self.last_error = str(exc)
            return False

    def settled(self):  # type: () -> bool
        # Nothing left to send or to wait for (the journal aside).
        return not len(self.outbox) and not self._inflight

    def close(self):  # type: () -> None
        # Spill what is unacknowledged, then close the transport and the journal.
        self.spill(include_inflight=True)
        try:
            self.transport.close()
        finally:
            if self.journal is not None:
                self._journal_call(self.journal.close)
