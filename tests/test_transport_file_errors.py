"""A file:// report that cannot be opened says which path is wrong and how."""

import pytest

from agent.errors import TransportError
from agent.transports.file import FileTransport


def test_a_report_file_under_a_file_names_that_file(tmp_path):
    blocker = tmp_path / "reports"
    blocker.write_text("not a folder")
    transport = FileTransport("file://%s/gcagent.jsonl" % blocker)
    with pytest.raises(TransportError) as caught:
        transport.open()
    assert str(caught.value).endswith("%s is a file, not a directory" % blocker)


def test_missing_folders_are_made(tmp_path):
    path = tmp_path / "a" / "b" / "gcagent.jsonl"
    transport = FileTransport("file://%s" % path)
    transport.open()
    assert path.exists()
