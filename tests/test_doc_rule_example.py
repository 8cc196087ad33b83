"""The worked example of docs/adding-a-rule-type.md works as written: its module,
added to the table, is a rule type a profile can name, and its test passes."""

import ast
import importlib.util
import os
import re
import sys

from agent.rules import table
from tests.test_no_annotations import annotations

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")
DOC = os.path.join(DOCS, "adding-a-rule-type.md")


def _blocks(doc=DOC):
    with open(doc) as handle:
        text = handle.read()
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_documented_steady_rule_type_loads_validates_and_collects(monkeypatch):
    module_code, table_code, test_code = _blocks()[:3]
    assert "TYPES" in table_code and "steady" in table_code
    spec = importlib.util.spec_from_loader("agent.rules.steady", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "agent.rules"
    exec(compile(module_code, DOC, "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, "agent.rules.steady", module)
    monkeypatch.setitem(table.TYPES, "steady", module)   # step 2's one line

    namespace = {}
    exec(compile(test_code, DOC, "exec"), namespace)
    namespace["test_steady_collects_after_each_step_of_growth"]()

    # and the profile checks it as the doc says: a step above the ceiling can never fire
    from agent.errors import ProfileError
    from agent.profile import loads
    try:
        loads("[device]\nid = t\nmemory_limit = 64M\n[rule:s]\ntype = steady\nstep = 80M\n")
    except ProfileError as exc:
        assert "never fire" in str(exc)
    else:
        raise AssertionError("a step above the ceiling was accepted")
    assert "every 4096K of growth" in module.describe(module.Settings("s", step_kb=4096))


def test_the_documented_agent_modules_are_written_as_agent_modules_are():
    # The rule type's module and the transport's: no annotations and no docstrings
    # (tests/test_no_annotations.py, tests/test_no_docstrings.py), so a copy passes those tests.
    for doc in (DOC, os.path.join(DOCS, "adding-a-transport.md")):
        code = _blocks(doc)[0]
        assert not annotations(code), (doc, annotations(code))
        holders = (ast.Module, ast.ClassDef, ast.FunctionDef)
        assert not [getattr(node, "lineno", 1) for node in ast.walk(ast.parse(code))
                    if isinstance(node, holders) and ast.get_docstring(node) is not None], doc
