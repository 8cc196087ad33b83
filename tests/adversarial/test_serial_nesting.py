"""A short, deeply nested frame on the serial line must not end the agent's serial link.

`[[[[...` a few thousand deep is well under the command size cap, and JSON's
parser answers it with RecursionError, not ValueError. Left uncaught, it ended
the serial I/O thread: nothing more was read or written on the port (no
telemetry, no answers) for the rest of the run. Now it is counted as a
malformed frame like any other, and the next command is answered.
"""

import os

from agent import framing
from tests.adversarial.agents import command, start_agent, stop_agent, write_profile
from tests.integration.serial_peer import Peer, pty_pair


def test_a_deeply_nested_frame_is_malformed_and_the_link_keeps_working(tmp_path):
    master, slave, path = pty_pair()
    peer = Peer(master)
    proc = start_agent(write_profile(tmp_path, "serial://%s" % path, tick="100ms"))
    try:
        peer.wait_for(lambda m: m["type"] == "status", what="status online")
        for nested in (b"[" * 3000, b'{"cmd":' * 1000, b"[" * 4000 + b"]" * 4000):
            peer.send(framing.frame(nested))
        asked = command("status")
        peer.command(asked)
        resp = peer.wait_for(lambda m: m["type"] == "resp" and m["id"] == asked["id"], timeout=20,
                             what="the answer to a command sent after the nested frames")
    finally:
        err = stop_agent(proc)
        peer.close()
        os.close(master)
        os.close(slave)
    assert proc.returncode == 0, err
    assert "RecursionError" not in err, err
    assert resp["ok"] is True
