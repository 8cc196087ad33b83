"""Defect 11: the serial receive queue was unbounded: a 3 s flood of 60 KB frames took
the agent's RSS +17 MB and delayed the next command by 15.5 s. Now a received
frame is size-checked before it is parsed, commands wait in a bounded queue
(drops counted), and the next signed command is answered promptly."""

import json
import os
import time

from agent import framing
from tests.adversarial.agents import command, peak_rss_kb, start_agent, stop_agent, write_profile
from tests.integration.serial_peer import Peer, pty_pair

FLOOD_FOR = 3.0
FRAME_BYTES = 60 * 1024


def test_a_flood_of_60k_frames_costs_little_memory_and_does_not_delay_the_next_command(tmp_path):
    master, slave, path = pty_pair()
    peer = Peer(master)
    proc = start_agent(write_profile(tmp_path, "serial://%s" % path, tick="100ms"))
    try:
        peer.wait_for(lambda m: m["type"] == "status", what="status online")
        time.sleep(0.5)
        before = peak_rss_kb(proc.pid)
        junk = framing.frame(json.dumps({"id": "junk", "cmd": "collect", "ts": 1,
                                         "pad": "x" * (FRAME_BYTES - 60)}).encode())
        deadline, frames = time.monotonic() + FLOOD_FOR, 0
        while time.monotonic() < deadline and frames < 5000:
            peer.send(junk)
            frames += 1
        asked = command("status")
        sent_at = time.monotonic()
        peer.command(asked)
        resp = peer.wait_for(lambda m: m["type"] == "resp" and m["id"] == asked["id"], timeout=30,
                             what="the resp after the flood")
        delay = time.monotonic() - sent_at
        grown = peak_rss_kb(proc.pid) - before
        print("serial flood: %d frames, next command answered in %.2f s, RSS +%d KB" % (frames, delay, grown))
    finally:
        err = stop_agent(proc)
        peer.close()
        os.close(master)
        os.close(slave)
    assert proc.returncode == 0, err
    assert frames > 20, "the flood did not get through: not a test"
    assert delay < 3.0, "the next command waited %.1f s behind %d junk frames" % (delay, frames)
    assert grown < 8 * 1024, "RSS grew %d KB under the flood" % grown
    assert resp["ok"] is True and resp["result"]["commands_dropped"] + sum(
        resp["result"]["refused"].values()) >= 1
