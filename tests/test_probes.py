"""Probes: readings from /proc and cgroup trees (fixtures), the ceiling, gc flavour, pauses."""

import gc
import os
import sys

import pytest

from agent import probes
from agent.probes import Probe, find_ceiling, gc_flavour
from tests.conftest import REPO

MEMINFO = "MemTotal:         262144 kB\nMemFree:           10000 kB\nMemAvailable:     120000 kB\n"


def make_tree(tmp_path, cgroup_lines, files):
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "meminfo").write_text(MEMINFO)
    (proc / "self" / "statm").write_text("5000 2500 300 1 0 900 0\n")
    (proc / "self" / "cgroup").write_text("\n".join(cgroup_lines) + "\n")
    sys_root = tmp_path / "sys"
    for rel, text in files.items():
        path = sys_root / "fs" / "cgroup" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(proc), str(sys_root)


def test_ceiling_is_the_cgroup_v2_limit_when_it_is_smallest(tmp_path):
    proc, sys_root = make_tree(tmp_path, ["0::/apps/gateway"],
                               {"apps/gateway/memory.max": "41943040\n"})
    ceiling = find_ceiling(None, 262144, proc, sys_root)
    assert (ceiling.kb, ceiling.source) == (40 * 1024, "cgroup-v2")


def test_ceiling_reads_cgroup_v1_at_the_mount_root_inside_a_container(tmp_path):
    proc, sys_root = make_tree(tmp_path, ["4:memory:/docker/abc", "1:cpu:/"],
                               {"memory/memory.limit_in_bytes": "67108864\n"})
    ceiling = find_ceiling(None, 262144, proc, sys_root)
    assert (ceiling.kb, ceiling.source) == (64 * 1024, "cgroup-v1")


def test_unlimited_cgroup_falls_back_to_ram_and_profile_wins_when_smaller(tmp_path):
    proc, sys_root = make_tree(tmp_path, ["0::/"], {"memory.max": "max\n"})
    assert find_ceiling(None, 262144, proc, sys_root).source == "ram"
    assert find_ceiling(30 * 1024, 262144, proc, sys_root)[:2] == (30 * 1024, "profile")


def test_rlimit_as_counts(tmp_path, monkeypatch):
    import resource
    proc, sys_root = make_tree(tmp_path, [], {})
    monkeypatch.setattr(resource, "getrlimit", lambda which: (50 * 1024 * 1024, -1))
    assert find_ceiling(None, 262144, proc, sys_root)[:2] == (50 * 1024, "rlimit-as")


LIMITS = """Limit                     Soft Limit           Hard Limit           Units
Max stack size            8388608              unlimited            bytes
Max address space         %s            unlimited            bytes
Max file locks            unlimited            unlimited            locks
"""


def test_rlimit_as_is_read_from_proc_self_limits_where_there_is_one(tmp_path, monkeypatch):
    import resource
    proc, sys_root = make_tree(tmp_path, [], {})
    monkeypatch.setattr(resource, "getrlimit", lambda which: (10 * 1024 * 1024, -1))
    limits = tmp_path / "proc" / "self" / "limits"
    limits.write_text(LIMITS % "52428800")
    assert find_ceiling(None, 262144, proc, sys_root)[:2] == (50 * 1024, "rlimit-as")
    limits.write_text(LIMITS % "unlimited")
    assert find_ceiling(None, 262144, proc, sys_root).source == "ram"


def test_a_processs_rlimit_as_counts_without_the_resource_module_loaded():
    import resource
    import subprocess
    limit = 3 * 1024 ** 3
    code = ("import sys; from agent.probes import find_ceiling; c = find_ceiling(None, 64 << 20); "
            "print(c.kb, c.source, 'resource' in sys.modules)")
    done = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, timeout=60,
                          env={"PYTHONPATH": REPO},
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, -1)))
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().split() == [str(limit // 1024), "rlimit-as", "False"]


def test_probe_reads_the_fixture_tree(tmp_path):
    proc, sys_root = make_tree(tmp_path, ["0::/"], {"memory.max": "33554432\n"})
    probe = Probe(backend="proc", proc_root=proc, sys_root=sys_root)
    try:
        sample = probe.sample()
    finally:
        probe.close()
    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
    assert (sample.mem_free_kb, sample.mem_total_kb) == (120000, 262144)
    assert sample.rss_kb == 2500 * page_kb
    assert sample.ceiling_kb == 32 * 1024
    assert len(sample.gc_count) == len(sample.gc_collections) == len(gc.get_stats())


def test_probe_on_this_machine_sees_memory_grow(tmp_path):
    probe = Probe()
    try:
        before = probe.sample()
        block = bytearray(30 * 1024 * 1024)
        after = probe.sample()
        del block
    finally:
        probe.close()
    assert probe.backend == "proc"
    assert after.rss_kb - before.rss_kb > 25 * 1024
    assert 0 < before.mem_free_kb <= before.mem_total_kb


def test_pauses_are_measured_and_reset_between_samples():
    probe = Probe()
    try:
        probe.sample()
        junk = [[] for _ in range(200000)]
        gc.collect()
        first = probe.sample()
        second = probe.sample()
        del junk
    finally:
        probe.close()
    assert first.gc_pause_ms_total > 0 and first.gc_pause_ms_max > 0
    assert first.gc_pause_ms_max <= first.gc_pause_ms_total
    assert second.gc_pause_ms_total == 0


def test_probe_close_removes_its_gc_hook():
    before = len(gc.callbacks)
    probe = Probe()
    assert len(gc.callbacks) == before + 1
    probe.close()
    assert len(gc.callbacks) == before


@pytest.mark.parametrize("version, flavour", [
    ((3, 6, 15), "generational-700"), ((3, 12, 4), "generational-700"),
    ((3, 13, 1), "generational-2000"), ((3, 14, 0), "incremental"),
    ((3, 14, 4), "incremental"), ((3, 14, 5), "generational-2000"),
])
def test_gc_flavour_follows_the_interpreter_version(monkeypatch, version, flavour):
    monkeypatch.setattr(sys, "version_info", version + ("final", 0))
    assert gc_flavour() == flavour


def test_asking_for_a_missing_backend_by_name_fails_clearly(tmp_path):
    with pytest.raises(ImportError):
        probes._choose_memory("digidevice", str(tmp_path))


def test_digidevice_runt_when_asked_for_by_name(tmp_path, monkeypatch):
    package = tmp_path / "digidevice"
    package.mkdir()
    (package / "__init__.py").write_text("")
    # runt answers strings on the device; 100 MiB available
    (package / "runt.py").write_text("def get(key):\n"
                                     "    assert key == 'system.ram.available'\n"
                                     "    return '104857600'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "digidevice", raising=False)
    monkeypatch.delitem(sys.modules, "digidevice.runt", raising=False)
    assert Probe().backend == "proc"   # /proc first wherever it works (auto)
    probe = Probe(backend="digidevice")
    try:
        sample = probe.sample()
    finally:
        probe.close()
    assert probe.backend == "digidevice"
    assert sample.mem_free_kb == 100 * 1024
    assert sample.mem_total_kb > 0 and sample.rss_kb > 0


def test_psutil_backend_reads_the_same_machine():
    import psutil
    probe = Probe(backend="psutil")
    try:
        sample = probe.sample()
    finally:
        probe.close()
    assert probe.backend == "psutil"
    assert sample.mem_total_kb == psutil.virtual_memory().total // 1024


@pytest.mark.parametrize("value, kb", [("104857600", 100 * 1024), ("100", 100 * 1024),
                                       ("123.5", int(123.5 * 1024)), (" 96 MB", 96 * 1024),
                                       ("2048K", 2048), ("1.5G", 1536 * 1024), (104857600, 100 * 1024)])
def test_runts_ram_available_is_read_in_any_unit_it_comes_in(value, kb):
    assert probes.runt_ram_kb(value) == kb


@pytest.mark.parametrize("value", ["", "lots", "12 parsecs", "-5", "nan"])
def test_runts_ram_available_that_is_no_size_is_refused(value):
    with pytest.raises(ValueError):
        probes.runt_ram_kb(value)


def test_runt_is_stopped_when_it_cannot_be_used(tmp_path, monkeypatch):
    package = tmp_path / "digidevice"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "runt.py").write_text("state = []\n"
                                     "def start(): state.append('start')\n"
                                     "def stop(): state.append('stop')\n"
                                     "def get(key): return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "digidevice", raising=False)
    monkeypatch.delitem(sys.modules, "digidevice.runt", raising=False)
    with pytest.raises(ValueError):
        probes._choose_memory("digidevice", str(tmp_path))
    from digidevice import runt
    assert runt.state == ["start", "stop"]
