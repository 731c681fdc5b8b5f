"""Parse: a Python function object -> its AST, file, line numbers and namespace.

Line numbers in the returned tree are those of the user's file, so every later pass
can point at the line the user wrote.
"""
import ast
import hashlib
import inspect
import textwrap
from dataclasses import dataclass, field

from ..errors import NoSourceError


@dataclass
class ParsedFunction:
    func: object               # the plain Python function
    tree: ast.FunctionDef      # decorators removed, absolute line numbers
    filename: str
    namespace: dict            # globals, then closure variables over them
    source: str
    digest: str = field(default="")

    @property
    def name(self):
        return self.tree.name


def python_function(obj):
    """The plain Python function behind a decorated object (Numba dispatcher, ForwardFunction)."""
    for attribute in ("py_func", "__wrapped__"):
        inner = getattr(obj, attribute, None)
        if inner is not None and inner is not obj:
            return python_function(inner)
    return obj


def parse(obj):
    """Read the source of `obj` and return a ParsedFunction, or raise NoSourceError."""
    func = python_function(obj)
    name = getattr(func, "__name__", repr(func))
    if not inspect.isfunction(func):
        raise NoSourceError(
            f"{name!r} is not a Python function (it is {type(func).__name__}); fwdad needs its "
            "source.\nWhat to do: give it a derivative rule with fwdad.defjvp, or wrap it in a "
            "Python function defined in a file.")
    if name == "<lambda>":
        raise NoSourceError(
            f"{func.__code__.co_filename}:{func.__code__.co_firstlineno}\nfwdad cannot "
            "differentiate a lambda.\nWhat to do: write it as a `def` function.")
    try:
        lines, first_line = inspect.getsourcelines(func)
    except (OSError, TypeError) as error:
        raise NoSourceError(
            f"{func.__code__.co_filename}: the source of {name!r} is not available ({error}).\n"
            "What to do: define the function in a .py file (functions typed at the interactive "
            "prompt have no source), or give it a rule with fwdad.defjvp.") from None
    source = textwrap.dedent("".join(lines))
    module = ast.parse(source)
    tree = module.body[0]
    ast.increment_lineno(tree, first_line - 1)
    tree.decorator_list = []
    filename = inspect.getsourcefile(func) or func.__code__.co_filename
    parsed = ParsedFunction(func, tree, filename, namespace_of(func), source)
    parsed.digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    return parsed


def namespace_of(func):
    """Globals overlaid with closure variables: what a name in the body refers to (as Numba sees it)."""
    namespace = dict(func.__globals__)
    if func.__closure__:
        for name, cell in zip(func.__code__.co_freevars, func.__closure__):
            try:
                namespace[name] = cell.cell_contents
            except ValueError:
                pass
    return namespace
