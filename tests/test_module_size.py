"""No module of the agent grows past ~400 lines: one job each (docs/development.md)."""

import glob
import os

AGENT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "agent")


def test_no_agent_module_is_over_400_lines():
    sizes = {}
    for path in glob.glob(os.path.join(AGENT, "**", "*.py"), recursive=True):
        with open(path) as handle:
            sizes[os.path.relpath(path, AGENT)] = sum(1 for _ in handle)
    assert len(sizes) > 30, sizes   # the walk found the package
    over = {name: n for name, n in sizes.items() if n > 400}
    assert not over, "split these by what they do: %s" % over
