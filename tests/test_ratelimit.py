"""The refusal answer rate: a burst, then one per interval, denials counted."""

from agent.ratelimit import TokenBucket


class Clock(object):
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_burst_then_one_per_interval_and_every_denial_counted():
    clock = Clock()
    bucket = TokenBucket(20, 1.0, clock)
    assert sum(bucket.take() for _ in range(5000)) == 20
    assert bucket.denied == 4980
    clock.now += 10.0
    assert sum(bucket.take() for _ in range(100)) == 10   # ten seconds: ten answers
    clock.now += 3600.0
    assert sum(bucket.take() for _ in range(100)) == 20   # never more than the burst saved up


def test_a_clock_going_backwards_gives_nothing_extra():
    clock = Clock()
    bucket = TokenBucket(2, 1.0, clock)
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock.now -= 50.0
    assert bucket.take() is False
