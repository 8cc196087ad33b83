"""No function of the agent carries annotations, and no module or class of it an
annotated assignment: the agent's type hints are PEP 484 type comments.

Python 3.6 builds an ``__annotations__`` dict for each annotated function when
it is defined, and keeps it for as long as the function lives (about 100 KB for
the agent's functions on a serial report); an annotated assignment at module or
class level fills that module's or class's ``__annotations__`` too. A
``# type:`` comment costs nothing at run time (docs/footprint.md).

ruff does not read type comments, so it cannot say whether a name imported
under ``if TYPE_CHECKING:`` for them is still used (those imports carry
``# noqa: F401``): the last test here does that.
"""

import ast
import glob
import os

from tests.conftest import REPO

FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
WHY = ("Python 3.6 builds an __annotations__ dict for each annotated function when it is defined "
       "(about 100 KB for the agent) and one for each module or class with an annotated assignment: "
       "write PEP 484 type comments instead, `def f(a, b=1):  # type: (int, str) -> bool` and "
       "`x = []  # type: List[int]` (docs/footprint.md)")


def agent_paths():
    paths = sorted(glob.glob(os.path.join(REPO, "agent", "**", "*.py"), recursive=True))
    assert len(paths) > 30, paths   # the walk found the package
    return paths


def _read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _annotated(function):
    args = function.args
    every = (getattr(args, "posonlyargs", []) + args.args + args.kwonlyargs
             + [arg for arg in (args.vararg, args.kwarg) if arg is not None])
    return function.returns is not None or any(arg.annotation is not None for arg in every)


def annotations(source, filename="<doc>"):
    # (line, what) for each annotated function and each annotated assignment whose
    # scope is a module or a class (statements nested in if/try/for/with included).
    found = []

    def walk(node, scope):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, FUNCTIONS):
                if _annotated(child):
                    found.append((child.lineno, "function %s() is annotated" % child.name))
                walk(child, "function")
            elif isinstance(child, ast.ClassDef):
                walk(child, "class")
            elif isinstance(child, ast.Lambda):
                continue
            else:
                if isinstance(child, ast.AnnAssign) and scope != "function":
                    found.append((child.lineno, "annotated assignment at %s level" % scope))
                walk(child, scope)

    walk(ast.parse(source, filename), "module")
    return found


def test_no_agent_function_is_annotated_and_no_module_or_class_has_an_annotated_assignment():
    found = ["%s:%d: %s" % (os.path.relpath(path, REPO), line, what)
             for path in agent_paths() for line, what in annotations(_read(path), path)]
    assert not found, "%s:\n%s" % (WHY, "\n".join(found))


def _type_checking_imports(tree):
    names = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for statement in ast.walk(node):
                if isinstance(statement, (ast.Import, ast.ImportFrom)):
                    for alias in statement.names:
                        names[(alias.asname or alias.name).split(".")[0]] = statement.lineno
    return names


def _used_names(tree):
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            used.add(node.id)
        comment = getattr(node, "type_comment", None)
        if comment:
            mode = "func_type" if isinstance(node, FUNCTIONS) else "eval"
            used.update(name.id for name in ast.walk(ast.parse(comment, mode=mode))
                        if isinstance(name, ast.Name))
    return used


def test_every_agent_type_comment_parses_and_every_name_imported_for_them_is_used():
    unused = []
    for path in agent_paths():
        tree = ast.parse(_read(path), path, type_comments=True)   # a malformed comment raises here
        used = _used_names(tree)
        unused += ["%s:%d: %s" % (os.path.relpath(path, REPO), line, name)
                   for name, line in sorted(_type_checking_imports(tree).items()) if name not in used]
    assert not unused, ("imported under `if TYPE_CHECKING:` but used in no code and no type comment "
                        "(remove the import): %s" % ", ".join(unused))
