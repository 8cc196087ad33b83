"""A journal that refuses writes (flash full) must not cost messages that RAM still holds.

Found with gc-emulator's flash-full fault: the spill took messages out of the
RAM outbox before the journal had them, so a full flash lost them, uncounted.
"""

from agent import messages
from agent.journal import JournalError
from agent.outbox import Outbox, outgoing
from agent.reporter import Reporter
from tests.test_reporter import AckLink


class FullJournal(object):
    """Refuses every append, as a full flash does."""

    dropped = 0

    def append(self, payload):
        raise JournalError("journal: [Errno 28] No space left on device")

    def sync(self):
        pass

    def pending(self):
        return 0

    def oldest(self):
        return None

    def close(self):
        pass


def test_a_full_journal_leaves_the_backlog_in_ram_and_delivers_it_later():
    link = AckLink()
    reporter = Reporter(link, Outbox(64 * 1024), FullJournal(), spill_after=1.0)
    envelope = messages.Envelope("d")
    link.link(True)
    reporter.pump(0.0)
    link.link(False)
    for t in range(50):   # 5 s of outage, a message a tick, spills due every second
        reporter.outbox.put(outgoing(envelope.make("event", event="app", n=t)))
        reporter.pump(t / 10.0)
    assert reporter.journal_errors >= 1
    assert reporter.buffered == 50 and reporter.dropped == 0
    link.link(True)
    for t in range(50, 200):
        reporter.pump(t / 10.0)
        link.ack_all()
    assert [m["n"] for m in link.delivered] == list(range(50))


def test_what_a_full_journal_refuses_at_shutdown_is_counted_as_dropped():
    link = AckLink()
    reporter = Reporter(link, Outbox(64 * 1024), FullJournal(), spill_after=1.0)
    envelope = messages.Envelope("d")
    link.link(True)
    for n in range(3):
        reporter.outbox.put(outgoing(envelope.make("event", event="app", n=n)))
    reporter.pump(0.0)          # in flight, never acknowledged
    reporter.close()
    assert reporter.dropped == 3
