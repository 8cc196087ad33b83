"""The outbox: bounded in bytes, oldest dropped first, every drop counted."""

import threading

from agent.messages import Envelope, decode
from agent.outbox import Outbox, Outgoing, outgoing


def item(seq, size=100, kind="event"):
    return Outgoing(seq, kind, b"x" * size)


def drain(box):
    out = []
    while True:
        head = box.peek()
        if head is None:
            return out
        box.pop(head)
        out.append(head.seq)


def test_messages_come_out_in_the_order_they_went_in():
    box = Outbox(10000)
    for seq in range(1, 6):
        box.put(item(seq))
    assert len(box) == 5
    assert box.bytes == 500
    assert drain(box) == [1, 2, 3, 4, 5]
    assert len(box) == 0 and box.bytes == 0
    assert box.dropped == 0


def test_peek_leaves_the_message_in_place_until_it_is_popped():
    box = Outbox(10000)
    box.put(item(1))
    box.put(item(2))
    assert box.peek().seq == 1
    assert box.peek().seq == 1   # still there: a failed send loses nothing
    assert len(box) == 2
    box.pop(box.peek())
    assert box.peek().seq == 2


def test_an_empty_outbox_has_nothing_to_peek():
    assert Outbox(100).peek() is None


def test_the_outbox_never_holds_more_bytes_than_its_bound():
    box = Outbox(1000)
    for seq in range(1, 101):
        box.put(item(seq, size=30 + seq % 70))
        assert box.bytes <= 1000
    held = box.bytes
    sizes = []
    while box.peek() is not None:
        sizes.append(len(box.peek().body))
        box.pop(box.peek())
    assert sum(sizes) == held
    assert len(sizes) + box.dropped == 100


def test_the_oldest_messages_are_dropped_first_and_counted():
    box = Outbox(1000)
    for seq in range(1, 11):
        box.put(item(seq))          # exactly full: 10 x 100 bytes
    assert box.dropped == 0
    box.put(item(11))               # one must go: the oldest
    box.put(item(12, size=250))     # three must go
    assert box.dropped == 4
    assert drain(box) == [5, 6, 7, 8, 9, 10, 11, 12]


def test_an_item_larger_than_the_bound_is_dropped_and_counted_keeping_the_rest():
    box = Outbox(1000)
    box.put(item(1))
    box.put(item(2))
    box.put(item(3, size=1001))
    assert box.dropped == 1
    assert drain(box) == [1, 2]


def test_an_item_of_exactly_the_bound_fits_alone():
    box = Outbox(1000)
    box.put(item(1))
    box.put(item(2, size=1000))
    assert box.dropped == 1
    assert drain(box) == [2]


def test_popping_a_message_that_was_dropped_meanwhile_changes_nothing():
    box = Outbox(200)
    first = item(1)
    box.put(first)
    sending = box.peek()
    box.put(item(2))
    box.put(item(3))                # drops the one being sent
    box.pop(sending)                # its delivery is confirmed late
    assert drain(box) == [2, 3]
    assert box.dropped == 1


def test_outgoing_encodes_a_message_once_for_every_transport():
    message = Envelope("d", boot="b").make("event", event="collect", rule="periodic")
    encoded = outgoing(message)
    assert (encoded.seq, encoded.type) == (1, "event")
    assert decode(encoded.body) == message


def test_concurrent_producers_keep_the_bound_and_the_count():
    box = Outbox(5000)

    def produce(base):
        for i in range(500):
            box.put(item(base + i, size=50))

    threads = [threading.Thread(target=produce, args=(n * 1000,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert box.bytes <= 5000
    assert len(box) + box.dropped == 2000
    assert box.bytes == 50 * len(box)
