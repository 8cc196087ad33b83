"""The reporter's store-and-forward, with a scripted acknowledging transport and a real journal."""

import json

from agent import messages
from agent.journal import Journal
from agent.outbox import Outbox, outgoing
from agent.reporter import Reporter
from agent.transports.base import Transport, TransportEvent


class AckLink(Transport):
    """Like MQTT: has a link, takes messages in flight, acknowledges when told."""

    has_link = True

    def __init__(self):
        super(AckLink, self).__init__("ack:")
        self.up = False
        self.inflight = []
        self.delivered = []
        self.events = []

    def ready(self):
        return self.up and len(self.inflight) < 5

    def send(self, item):
        self.inflight.append(item)
        return False

    def ack_all(self):
        for item in self.inflight:
            self.delivered.append(json.loads(item.body))
            self.events.append(TransportEvent("ack", item))
        self.inflight = []

    def link(self, up):
        self.up = up
        self.events.append(TransportEvent("link", up))

    def poll(self):
        out, self.events = self.events, []
        return out


def make(tmp_path, spill_after=5.0):
    link = AckLink()
    journal = Journal(str(tmp_path / "j"), sync_every=0)
    return link, Reporter(link, Outbox(64 * 1024), journal, spill_after=spill_after, replay_rate=10)


def run(reporter, link, start, seconds, ack=True):
    for t in range(int(seconds * 10)):
        reporter.pump(start + t / 10.0)
        if ack:
            link.ack_all()


def test_messages_leave_only_when_acknowledged(tmp_path):
    link, reporter = make(tmp_path)
    envelope = messages.Envelope("d")
    link.link(True)
    for _ in range(3):
        reporter.outbox.put(outgoing(envelope.make("event", event="x")))
    reporter.pump(0.0)
    assert len(link.inflight) == 3 and reporter.buffered == 3
    link.ack_all()
    reporter.pump(0.1)
    assert reporter.buffered == 0 and reporter.settled()


def test_a_long_outage_spills_to_flash_and_replays_in_order_flagged_historical(tmp_path):
    link, reporter = make(tmp_path, spill_after=1.0)
    envelope = messages.Envelope("d")
    link.link(True)
    reporter.pump(0.0)
    link.link(False)
    for n in range(30):
        reporter.outbox.put(outgoing(envelope.make("event", event="x", n=n)))
        reporter.pump(n / 10.0 + 0.1)
    for n in range(30, 35):                  # these stay in RAM: the last spill was < 1 s ago
        reporter.outbox.put(outgoing(envelope.make("event", event="x", n=n)))
    assert reporter.journal_records > 0 and reporter.buffered == 35
    link.link(True)
    run(reporter, link, 10.0, 8)
    got = [m["n"] for m in link.delivered]
    assert got == list(range(35))            # journal first, then RAM: order within the boot
    flags = [bool(m.get("historical")) for m in link.delivered]
    spilled = flags.count(True)              # spills at 1.1 s and 2.1 s after the link went down
    assert spilled == 21 and flags == [True] * spilled + [False] * (35 - spilled)
    assert reporter.buffered == 0
    assert reporter.journal.pending() == 0   # segments removed once acknowledged


def test_shutdown_spills_what_is_unacknowledged_and_the_next_start_replays_it(tmp_path):
    link, reporter = make(tmp_path)
    envelope = messages.Envelope("d", boot="b1")
    link.link(True)
    for _ in range(4):
        reporter.outbox.put(outgoing(envelope.make("event", event="x")))
    reporter.pump(0.0)                        # all four in flight, none acknowledged
    reporter.close()
    again, second = make(tmp_path)
    assert second.journal_records == 4
    again.link(True)
    run(second, again, 0.0, 2)
    assert [m["seq"] for m in again.delivered] == [1, 2, 3, 4]
    assert all(m["historical"] and m["boot"] == "b1" for m in again.delivered)


def test_replay_of_an_earlier_boot_does_not_hold_up_this_boots_messages(tmp_path):
    link, reporter = make(tmp_path)
    old = messages.Envelope("d", boot="old")
    for _ in range(50):
        reporter.journal.append(messages.encode(old.make("event", event="x")))
    reporter = Reporter(link, Outbox(64 * 1024), reporter.journal, replay_rate=10)
    reporter.outbox.put(outgoing(messages.Envelope("d", boot="new").make("status", state="online")))
    link.link(True)
    run(reporter, link, 0.0, 0.5)
    assert any(m["boot"] == "new" for m in link.delivered)   # not after 5 s of replay
