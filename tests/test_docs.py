"""The documentation's links: every relative link in README.md and docs/*.md leads to a file."""

import glob
import os
import re

from tests.conftest import REPO

# Pages other work is writing right now: the index links them ahead of time.
# Remove a name here when its page lands.
BEING_WRITTEN = set()   # type: set

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _pages():
    return [os.path.join(REPO, "README.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))


def _anchors(path: str) -> set:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces to '-'."""
    with open(path, encoding="utf-8") as handle:
        text = FENCE.sub("", handle.read())
    return {re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            for line in text.splitlines() if re.match(r"#+ ", line)}


def _links():
    for page in _pages():
        with open(page, encoding="utf-8") as handle:
            text = FENCE.sub("", handle.read())
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):   # http:, https:, mailto:
                continue
            yield page, target


def test_every_relative_link_leads_to_a_file_and_heading():
    broken = []
    checked = 0
    for page, target in _links():
        path, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
        name = os.path.relpath(resolved, REPO)
        if name in BEING_WRITTEN and not os.path.exists(resolved):
            continue
        checked += 1
        if not os.path.exists(resolved):
            broken.append("%s: %s (no such file)" % (os.path.relpath(page, REPO), target))
        elif anchor and resolved.endswith(".md") and anchor not in _anchors(resolved):
            broken.append("%s: %s (no such heading)" % (os.path.relpath(page, REPO), target))
    assert checked > 50, checked
    assert broken == []


def test_the_index_lists_every_page_and_the_readme_stays_short():
    with open(os.path.join(REPO, "docs", "README.md"), encoding="utf-8") as handle:
        index = handle.read()
    pages = {os.path.basename(p) for p in glob.glob(os.path.join(REPO, "docs", "*.md"))} - {"README.md"}
    pages |= {os.path.basename(p) for p in BEING_WRITTEN}
    assert sorted(p for p in pages if "(%s)" % p not in index) == []
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    assert readme.count("\n") <= 300
    first_block = readme.split("```")[1].strip().splitlines()
    assert [line.split("#")[0].strip() for line in first_block] == ["make demo", "make test"]
