"""Flash full without root: the real journal sees ENOSPC while the flag exists, and only it."""

import os

import pytest

from agent.journal import Journal, JournalError
from tools.emulator import flashfull


@pytest.fixture
def fault(tmp_path):
    journal_dir, flag = tmp_path / "journal", tmp_path / "FLASH_FULL"
    flashfull.install(str(journal_dir), str(flag))
    try:
        yield str(journal_dir), str(flag)
    finally:
        flashfull.uninstall()


def test_the_journal_fails_with_enospc_while_full_and_recovers(fault, tmp_path):
    journal_dir, flag = fault
    journal = Journal(journal_dir, segment_bytes=1024, max_bytes=64 * 1024)
    journal.append(b"before")
    flashfull.set_full(flag, True)
    with pytest.raises(JournalError, match="No space left on device"):
        journal.append(b"while full")
    for _ in range(30):                        # new segments cannot be created either
        with pytest.raises(JournalError, match="No space left on device"):
            journal.append(b"x" * 100)
    # the rest of the file system works as before
    other = os.open(str(tmp_path / "elsewhere"), os.O_WRONLY | os.O_CREAT, 0o644)
    assert os.write(other, b"fine") == 4
    os.close(other)
    flashfull.set_full(flag, False)
    journal.append(b"after")
    journal.sync()
    records = []
    while journal.oldest() is not None:
        name, batch = journal.oldest()
        records.extend(batch)
        journal.remove(name)
    journal.close()
    assert records == [b"before", b"after"]    # nothing torn, nothing half-written
    assert flashfull.stats["refused_writes"] + flashfull.stats["refused_creates"] >= 31


def test_a_journal_cannot_start_on_a_full_flash(fault):
    journal_dir, flag = fault
    os.makedirs(journal_dir)
    flashfull.set_full(flag, True)
    journal = Journal(journal_dir)
    with pytest.raises(JournalError, match="No space left on device"):
        journal.append(b"first")


def test_install_from_env_needs_both_variables():
    assert flashfull.install_from_env({}) is False
    assert flashfull.install_from_env({flashfull.ENV_DIR: "/tmp/j"}) is False
