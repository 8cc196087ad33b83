"""How the bundle starts by itself: DAL CLI lines for a Digi device, a systemd unit elsewhere.

The DAL lines configure a `system schedule script` entry. Field names that
come from Digi's user guides (label, commands, syslog_stdout, syslog_stderr,
the `add ... end` form) are written as is; the ones not seen verbatim in a
published CLI example are marked UNCONFIRMED in the generated file, with how
to check them on the device (`?` lists the entry's fields).
"""

import os
import shlex
from typing import Optional

from agent.profile import Profile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYSTEMD_TEMPLATE = os.path.join(REPO, "deploy", "systemd", "gc-agent.service")
DAL_SCRIPTS = "/etc/config/scripts"


def dal_memory(kb: Optional[int]) -> Optional[str]:
    """A size in DAL's `number{b|bytes|KB|k|MB|M|GB|G|TB|T}` form, or None for no limit."""
    if kb is None:
        return None
    return "%dM" % (kb // 1024) if kb % 1024 == 0 else "%dk" % kb


def command_line(python: str, pyz: str, app: str = "") -> str:
    """The shell command that starts the agent (around `app` when given)."""
    words = [python, pyz, "run"] + (["--", app] if app else [])
    return " ".join(shlex.quote(w) for w in words)


def dal_text(profile: Profile, device_id: str, pyz_name: str, app: str = "",
             device_dir: str = DAL_SCRIPTS, source: str = "") -> str:
    """The contents of gc-agent-ID.dal.txt."""
    label = "gc-agent-%s" % device_id
    memory = dal_memory(profile.device.memory_limit_kb)
    command = command_line("python3", "%s/%s" % (device_dir.rstrip("/"), pyz_name), app)
    lines = [
        "# gc-agent auto-start for device %s (Digi DAL Admin CLI)." % device_id,
        "# Built by gc-bundle from %s." % (source or profile.path),
        "#",
        "# 1. Upload %s to %s/ (web UI: System > File System)." % (pyz_name, device_dir),
        "# 2. Paste the lines after the notes, from `config` to `exit`, at the Admin CLI.",
        "#    Do not paste these # notes: whether the CLI ignores them is not confirmed.",
        "#",
        "# UNCONFIRMED (from the web UI's labels, not seen in a published CLI example):",
        "#   `when boot`, `exit_action restart`, `max_memory`. After",
        "#   `add system schedule script end`, type `?` to list the entry's fields and",
        "#   their values; if a name differs, use the one listed. Seen in published",
        "#   DAL CLI examples: label, commands, syslog_stdout, syslog_stderr, sandbox.",
        "#   In the web UI the same entry is: Run mode On boot, Exit action Restart",
        "#   script, Maximum memory, Log script output, Log script errors, Commands.",
    ]
    if memory is None:
        lines += ["#",
                  "# No Maximum memory: the profile says memory_limit = auto. To give the",
                  "# script a limit, set [device] memory_limit in the profile, rebuild, and",
                  "# the max_memory line appears here (the agent then knows the limit too)."]
    lines += ["#",
              "# The agent starts in the sandbox (the default). It writes its outbox journal",
              "# and reads its keys under /etc/config/gcagent/; if syslog shows it cannot,",
              "# add `sandbox false` before `save`.",
              "",
              "config",
              "add system schedule script end",
              "label %s" % label,
              "when boot",
              "exit_action restart"]
    if memory is not None:
        lines.append("max_memory %s" % memory)
    lines += ["syslog_stdout true",
              "syslog_stderr true",
              "commands %s" % _dal_quote(command),
              "save",
              "exit",
              ""]
    return "\n".join(lines)


def _dal_quote(text: str) -> str:
    """A DAL CLI value with spaces goes in double quotes (as in Digi's examples)."""
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')


def systemd_unit(profile: Profile, device_id: str, pyz_path: str, app: str = "",
                 python: str = "/usr/bin/python3", template: str = SYSTEMD_TEMPLATE) -> str:
    """deploy/systemd/gc-agent.service with the placeholders filled for this bundle."""
    with open(template) as handle:
        text = handle.read()
    kb = profile.device.memory_limit_kb
    memory = "infinity" if kb is None else "%dK" % kb
    for name, value in (("DEVICE_ID", device_id), ("PYTHON", python), ("PYZ", pyz_path),
                        ("APP", (" -- %s" % shlex.quote(app)) if app else ""),
                        ("MEMORY_MAX", memory)):
        text = text.replace("@%s@" % name, value)
    return text
