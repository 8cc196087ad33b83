"""The examples a new user copies first: they must not write under /var as root, must show
telemetry within seconds, and must not share one key between TLS and command signing."""

import glob
import os
import re
import subprocess
import sys

from agent.profile import load
from tests.conftest import REPO

PAGES = [os.path.join(REPO, "README.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))


def run_examples():
    """(where, command line) of every `python -m agent run` example, the --help epilog's too."""
    epilog = subprocess.run([sys.executable, "-m", "agent", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=60).stdout
    sources = [("python -m agent --help", epilog)]
    for page in PAGES:
        with open(page, encoding="utf-8") as handle:
            sources.append((os.path.relpath(page, REPO), handle.read()))
    for where, text in sources:
        for line in re.findall(r"python -m agent run [^\n`]*", text.replace("\\\n", " ")):
            if "--profile device_profiles/" in line:
                yield where, line


def profile_of(line: str):
    return load(os.path.join(REPO, re.search(r"--profile (\S+)", line).group(1)))


def test_no_run_example_writes_its_reports_under_var():
    found = list(run_examples())
    assert len(found) >= 3, found
    for where, line in found:
        urls = re.findall(r"--report (\S+)", line) or list(profile_of(line).report.urls)
        assert not [u for u in urls if u.startswith("file:///var/")], (where, line)


def test_the_console_example_uses_a_profile_that_reports_within_seconds():
    for where, line in run_examples():
        if where == "docs/console.md":
            assert profile_of(line).report.interval <= 5, (where, line)


def test_no_example_profile_signs_commands_with_its_tls_key():
    for page in PAGES:
        with open(page, encoding="utf-8") as handle:
            for block in re.findall(r"```ini\n(.*?)```", handle.read(), re.S):
                report = re.search(r"\[report\][^\[]*?key_file = (\S+)", block)
                commands = re.search(r"\[commands\][^\[]*?key_file = (\S+)", block)
                if report and commands:
                    assert report.group(1) != commands.group(1), page
