"""Parse: a Python function object -> its AST, file, line numbers and namespace.

Line numbers in the returned tree are those of the user's file, so every later pass
can point at the line the user wrote. The source read from the file is checked against the
code object Python runs (a file edited after import is refused, never compiled in its place),
and a function hidden behind a decorator's wrapper is refused rather than unwrapped.
"""
import ast
import dataclasses
import functools
import hashlib
import inspect
import linecache
import textwrap
import types
from dataclasses import dataclass, field

from ..errors import NoSourceError, SourceChangedError, WrappedFunctionError, located

@dataclass
class ParsedFunction:
    func: object               # the plain Python function
    tree: ast.FunctionDef      # decorators removed, absolute line numbers
    filename: str
    namespace: dict            # globals, then closure variables over them
    source: str
    digest: str = field(default="")
    first_line: int = 1        # the user's line of the source's first line

    @property
    def name(self):
        return self.tree.name

    def line(self, lineno):
        """The text of the user's line `lineno` as it was when the source was read."""
        lines = self.source.splitlines()
        index = lineno - self.first_line
        return lines[index] if 0 <= index < len(lines) else linecache.getline(self.filename, lineno)

    def with_current_namespace(self):
        """This source with the function's globals as they are now (names defined after it included)."""
        return dataclasses.replace(self, namespace=namespace_of(self.func))


def python_function(obj):
    """The plain Python function behind a Numba dispatcher or a ForwardFunction (its `py_func`).

    Other wrappers (functools.wraps sets `__wrapped__`) are not looked through: their own code
    would be silently dropped; `parse` refuses them instead.
    """
    inner = getattr(obj, "py_func", None)
    if inner is not None and inner is not obj:
        return python_function(inner)
    return obj


def parse(obj):
    """Read the source of `obj` and return a ParsedFunction, or raise NoSourceError."""
    func = python_function(obj)
    refuse_wrapper(func)
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
    filename = inspect.getsourcefile(func) or func.__code__.co_filename
    check_source_is_running_code(func, filename)
    tree = ast.parse(source).body[0]
    ast.increment_lineno(tree, first_line - 1)
    tree.decorator_list = []
    parsed = ParsedFunction(func, tree, filename, namespace_of(func), source, first_line=first_line)
    parsed.digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    return parsed


def refuse_wrapper(func):
    """Refuse a function made by a decorator that keeps the original as `__wrapped__`."""
    inner = getattr(func, "__wrapped__", None)
    if inner is None:
        return
    while getattr(python_function(inner), "__wrapped__", None) is not None:
        inner = python_function(inner).__wrapped__
    code = getattr(python_function(inner), "__code__", None) or getattr(func, "__code__", None)
    name = getattr(func, "__name__", repr(func))
    wrapper = getattr(getattr(func, "__code__", None), "co_qualname", type(func).__name__)
    raise located(
        WrappedFunctionError, code.co_filename if code else "<unknown>", code.co_firstlineno if code else 0,
        f"{name!r} is wrapped by a decorator (its wrapper {wrapper!r} has __wrapped__); fwdad "
        "differentiates a function from its source and would silently drop the wrapper's code.",
        f"differentiate the undecorated function instead: keep a reference to it before decorating "
        f"(or use {name}.__wrapped__) and apply fwdad to it or call it from the code fwdad compiles")


# ---- source identity -------------------------------------------------------------------------
def code_fingerprint(code):
    """What identifies compiled code: bytecode, names, constants (nested code too), line numbers."""
    constants = tuple(code_fingerprint(c) if isinstance(c, types.CodeType) else (type(c).__name__, repr(c))
                      for c in code.co_consts)
    return (code.co_name, code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount,
            code.co_code, code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars,
            constants, tuple(code.co_lines()))


def check_source_is_running_code(func, filename):
    """Refuse the source of `func` unless its file, as it reads now, compiles to `func`'s code.

    The whole file is compiled (the module's imports and enclosing scopes shape a function's
    bytecode). A file edited after import would otherwise be compiled in place of the running
    code, or, if lines moved, another function entirely.
    """
    code = func.__code__
    text = "".join(linecache.getlines(filename, func.__globals__))
    module = compiled_file(filename, text)
    found = module and find_code(module, code.co_name, code.co_firstlineno)
    if found is None or code_fingerprint(found) != code_fingerprint(code):
        raise located(
            SourceChangedError, code.co_filename, code.co_firstlineno,
            f"the source of {func.__name__!r} in this file is not the code Python is running: the "
            "file changed after it was imported, and fwdad would differentiate the new text (or, "
            "if lines moved, another function).",
            "re-import the module (importlib.reload) or restart Python after editing the file")


@functools.lru_cache(maxsize=16)
def compiled_file(filename, text):
    """The module code object of `text` compiled as the import system does (None if it is not Python)."""
    try:
        return compile(text, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None


def find_code(code, name, first_line):
    """The code object named `name` starting at `first_line` nested anywhere in `code`."""
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            if constant.co_name == name and constant.co_firstlineno == first_line:
                return constant
            found = find_code(constant, name, first_line)
            if found is not None:
                return found
    return None


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
