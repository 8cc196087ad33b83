"""Every docs/ page the code cites (comments, help texts, error messages) exists, and none cites
the README for what moved to docs/."""

import glob
import os
import re

import pytest

from agent.errors import ProfileError
from agent.profile import loads
from tests.conftest import REPO

CITED = re.compile(r"docs/([\w.-]+\.md)")
STALE = re.compile(r"see the README|README's \"|README \"")


def _sources():
    for folder in ("agent", "tools"):
        yield from glob.glob(os.path.join(REPO, folder, "**", "*.py"), recursive=True)


def test_cited_doc_pages_exist_and_the_readme_is_not_cited_for_reference():
    missing, stale = [], []
    for path in _sources():
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        where = os.path.relpath(path, REPO)
        missing += ["%s: docs/%s" % (where, page) for page in CITED.findall(text)
                    if not os.path.exists(os.path.join(REPO, "docs", page))]
        stale += ["%s: %s" % (where, m) for m in STALE.findall(text)]
    assert not missing, missing
    assert not stale, stale


def test_a_profile_without_rules_points_to_the_rules_page():
    with pytest.raises(ProfileError) as info:
        loads("[device]\nid = a\n", "/site/p.ini")
    message = info.value.problems[0].message
    assert "docs/profiles.md" in message and "README" not in message
