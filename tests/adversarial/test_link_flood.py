"""Defect 2: a command flood at reconnect must never silence the agent.

Before the fix link events and commands shared one 1,000-entry deque: when
the commands pushed "link up" out, the agent believed the link down for good
and published nothing, though the TCP connection was up. Now the link state
is kept apart from the bounded command queue (agent/transports/mqtt.py).
"""

import json
import threading
import time

from tests.adversarial.agents import DEVICE, flood, start_agent, stop_agent, write_profile
from tests.integration.broker import Subscriber

FLOOD_FOR = 12.0   # seconds at most, ROUND messages a second (the issue's ~15k a second)
ROUND = 15000


def test_a_command_flood_at_reconnect_never_silences_the_agent(tmp_path, broker):
    telemetry = Subscriber(broker.port, "gcagent/%s/telemetry" % DEVICE)   # not the flood itself
    proc = start_agent(write_profile(tmp_path, broker.url, tick="1s"))
    done = threading.Event()
    junk = [json.dumps({"id": "j%d" % n, "cmd": "collect", "args": {}, "ts": 1}).encode()
            for n in range(ROUND)]

    def flooder():
        deadline = time.monotonic() + FLOOD_FOR
        while not done.is_set() and time.monotonic() < deadline:
            began = time.monotonic()
            try:
                flood(broker.port, "gcagent/%s/cmd" % DEVICE, junk, qos=0)
            except AssertionError:   # the broker restarting under us: try again
                pass
            done.wait(max(0.0, 1.0 - (time.monotonic() - began)))

    thread = threading.Thread(target=flooder, daemon=True)
    try:
        telemetry.wait_for(lambda s: True, what="telemetry before the restart")
        broker.stop()
        time.sleep(0.5)
        broker.start()
        restarted = time.monotonic()
        thread.start()   # flooding before the agent is back: its link-up lands in the flood
        fresh = telemetry.wait_for(lambda s: s.at > restarted and not s.message.get("historical"),
                                   timeout=FLOOD_FOR, what="new telemetry while flooded")
        assert thread.is_alive(), "the flood ended before the agent was heard again: not a test"
        telemetry.wait_for(lambda s: s.at > fresh.at + 1.5, timeout=10,
                           what="telemetry still flowing under the flood")
    finally:
        done.set()
        thread.join(FLOOD_FOR + 5) if thread.ident else None
        err = stop_agent(proc)
        telemetry.close()
    assert proc.returncode == 0, err
