"""Defect 1: oversize unsigned payloads on `cmd` must not cost the host application its memory.

The issue's headline check: 2,000 unsigned 70 KB payloads on gcagent/ID/cmd
against an agent around a small application. Before the fix the MQTT
transport kept up to 64 KB of each, 1,000 deep (RSS 25 -> 90 MB; a device
with a 64M limit was OOM-killed). A quiet twin (same application, same
profile, same broker, no flood) runs alongside as the baseline.
"""

import json
import textwrap
import time

from tests.adversarial.agents import finish, flood, peak_rss_kb, recorder, start_agent, write_profile

APP = textwrap.dedent("""\
    import os, sys, time
    held = [bytes(1000) for _ in range(5000)]   # a small application: 5 MB of its own data
    stop, deadline = sys.argv[1], time.time() + float(sys.argv[2])
    while not os.path.exists(stop) and time.time() < deadline:
        time.sleep(0.05)
    print("app done", len(held))
    """)
PAYLOADS = 2000
PAYLOAD_BYTES = 70 * 1024
MARGIN_KB = 16 * 1024


def test_2000_unsigned_70k_payloads_leave_the_application_within_16mb_of_a_quiet_run(
        tmp_path, broker):
    subscriber = recorder(broker.port, "adv-quiet", "adv-flood")
    (tmp_path / "app.py").write_text(APP)
    stop_file = str(tmp_path / "stop")
    procs = {}
    for device in ("adv-quiet", "adv-flood"):
        profile = write_profile(tmp_path, broker.url, device=device, tick="1s",
                                name="%s.ini" % device)
        procs[device] = start_agent(profile, str(tmp_path / "app.py"), stop_file, "90")
    try:
        for device in procs:
            subscriber.wait_for(lambda s, d=device: s.topic == "gcagent/%s/status" % d
                                and s.message["state"] == "online", what="%s online" % device)
        pad = "x" * (PAYLOAD_BYTES - 100)
        lines = [json.dumps({"id": "junk-%d" % n, "cmd": "collect", "args": {}, "ts": time.time(),
                             "pad": pad}).encode() for n in range(PAYLOADS)]
        flood(broker.port, "gcagent/adv-flood/cmd", lines, qos=1)
        flooded_at = time.monotonic()
        subscriber.wait_for(lambda s: s.topic == "gcagent/adv-flood/telemetry"
                            and s.at > flooded_at + 2.0, timeout=30,
                            what="telemetry after the flood")
        peaks = {device: peak_rss_kb(proc.pid) for device, proc in procs.items()}
        print("peak RSS, KB:", peaks)
    finally:
        open(stop_file, "w").close()
        errors = {device: finish(proc) for device, proc in procs.items()}
        subscriber.close()
    for device, proc in procs.items():
        assert proc.returncode == 0, (device, proc.returncode, errors[device])   # never killed
        assert proc.out == b"app done 5000\n"   # the application ran to its end
    assert peaks["adv-quiet"] > 0 and peaks["adv-flood"] > 0
    assert peaks["adv-flood"] <= peaks["adv-quiet"] + MARGIN_KB, \
        "flooded peak %d KB against quiet %d KB" % (peaks["adv-flood"], peaks["adv-quiet"])
    answers = [m for m in subscriber.messages("resp") if m["device"] == "adv-flood"]
    assert answers == []   # oversize: dropped unread, never answered (agent/limits.py)
