"""Defect 10: snapshots ran on unbounded threads, and the first to finish stopped tracing
for the others (39 of 40 overlapping snapshots failed). Now one runs at a time, the
others are refused with a reason, and tracing is off after each."""

import json
import textwrap

from tests.adversarial.agents import DEVICE, ask, command, finish, start_agent, write_profile

APP = textwrap.dedent("""\
    import os, sys, time, tracemalloc
    stop, deadline = sys.argv[1], time.time() + 60
    while not os.path.exists(stop) and time.time() < deadline:
        time.sleep(0.05)
    print("tracing at the end:", tracemalloc.is_tracing())
    """)


def test_overlapping_snapshots_run_one_at_a_time_and_tracing_is_off_after(tmp_path, broker, subscriber):
    (tmp_path / "app.py").write_text(APP)
    stop_file = str(tmp_path / "stop")
    proc = start_agent(write_profile(tmp_path, broker.url), str(tmp_path / "app.py"), stop_file)
    try:
        subscriber.wait_for(lambda s: s.topic.endswith("/status"), what="status online")
        asked = [command("snapshot", {"seconds": 1, "top": 3}, id="snap-%d" % n) for n in range(6)]
        for payload in asked:
            subscriber.publish("gcagent/%s/cmd" % DEVICE, json.dumps(payload).encode())
        answers = [subscriber.wait_for(lambda s, i=p["id"]: s.topic.endswith("/resp")
                                       and s.message["id"] == i, what="resp to %s" % p["id"]).message
                   for p in asked]
        again = ask(subscriber, command("snapshot", {"seconds": 0.2, "top": 3}))
    finally:
        open(stop_file, "w").close()
        err = finish(proc)
    assert proc.returncode == 0, err
    done = [a for a in answers if a["ok"]]
    busy = [a for a in answers if not a["ok"]]
    assert len(done) == 1 and done[0]["result"]["top"], answers
    assert len(busy) == 5 and all(a["error"].startswith("busy: ") for a in busy), busy
    assert again["ok"] is True                          # the next one runs once the first is done
    assert proc.out == b"tracing at the end: False\n"   # never left on in the application
