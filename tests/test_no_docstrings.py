"""No module, class or function of the agent has a docstring: they are written as comments.

A docstring is a string constant the device keeps in memory for as long as its
module is loaded (in the code object's constants and in `__doc__`); the agent's
were about 69 KB of the application's heap on Python 3.6. A comment costs
nothing at run time (docs/footprint.md).
"""

import ast
import glob
import os

from tests.conftest import REPO

HOLDERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def docstrings(path):
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, HOLDERS) and ast.get_docstring(node, clean=False) is not None:
            yield node.body[0].lineno


def test_no_agent_module_class_or_function_has_a_docstring():
    paths = glob.glob(os.path.join(REPO, "agent", "**", "*.py"), recursive=True)
    assert len(paths) > 30, paths   # the walk found the package
    found = ["%s:%d" % (os.path.relpath(path, REPO), line) for path in sorted(paths)
             for line in docstrings(path)]
    assert not found, (
        "docstrings in agent/ stay in memory on the device for as long as the module is loaded "
        "(about 69 KB on Python 3.6, docs/footprint.md): write them as # comments in the same "
        "place instead: %s" % ", ".join(found))
