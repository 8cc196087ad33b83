"""`python -m agent check` names every typo of a profile in one round."""

import subprocess
import sys

from tests.conftest import REPO

TYPOS = """\
[device]
id = gw-1

[rule:low]
type = lowmem
below = 10%
escalate = colect0, collect2, frob
belwo = 5%

[rule:ev]
type = event
on = app:door open
"""


def check(tmp_path, text: str) -> subprocess.CompletedProcess:
    path = tmp_path / "typos.ini"
    path.write_text(text)
    return subprocess.run([sys.executable, "-m", "agent", "check", str(path)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_a_bad_type_hides_none_of_the_rules_other_errors(tmp_path):
    done = check(tmp_path, TYPOS)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert any(":5: [rule:low] type: 'lowmem'" in ln and "did you mean low_memory?" in ln
               for ln in lines), done.stderr
    assert any(":7: [rule:low] escalate:" in ln for ln in lines), done.stderr
    assert any(":8: [rule:low] belwo: unknown key" in ln for ln in lines), done.stderr


def test_every_bad_escalate_step_is_named(tmp_path):
    done = check(tmp_path, TYPOS.replace("type = lowmem", "type = low_memory"))
    [line] = [ln for ln in done.stderr.splitlines() if "escalate:" in ln]
    assert "'colect0' (did you mean collect0?)" in line and "'frob'" in line, line


def test_a_spaced_app_event_name_is_explained(tmp_path):
    done = check(tmp_path, TYPOS)
    [line] = [ln for ln in done.stderr.splitlines() if "[rule:ev] on:" in ln]
    assert "cannot contain spaces" in line and "app:door_open" in line, line
    assert "unknown trigger" not in line
