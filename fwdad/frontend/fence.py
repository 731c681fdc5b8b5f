"""Fence: reject the Python constructs fwdad does not differentiate, before any work is done.

The error names the file, the line and the construct, and says what to write instead:

>>> import ast
>>> tree = ast.parse("def f(x):\\n    return [v * 2 for v in x]").body[0]
>>> fence(tree, "model.py")
Traceback (most recent call last):
...
fwdad.errors.UnsupportedSyntaxError: model.py:2
a list comprehension is not supported by fwdad.
What to do: write an explicit for loop that fills an array made with np.empty
"""
import ast

from ..errors import UnsupportedSyntaxError, located

LOOP = "write an explicit for loop that fills an array made with np.empty"
UNSUPPORTED = {
    ast.Try: ("a try statement", "remove it; errors inside compiled code cannot be caught"),
    ast.With: ("a with statement", "remove it from the differentiated function"),
    ast.AsyncWith: ("an async with statement", "remove it"),
    ast.AsyncFor: ("an async for loop", "use a plain for loop"),
    ast.AsyncFunctionDef: ("an async function", "use a plain function"),
    ast.Await: ("await", "use a plain function"),
    ast.Yield: ("a generator (yield)", "return an array or a tuple instead"),
    ast.YieldFrom: ("a generator (yield from)", "return an array or a tuple instead"),
    ast.GeneratorExp: ("a generator expression", LOOP),
    ast.ListComp: ("a list comprehension", LOOP),
    ast.SetComp: ("a set comprehension", LOOP),
    ast.DictComp: ("a dict comprehension", LOOP),
    ast.Lambda: ("a lambda", "define a module-level function with def and call it"),
    ast.ClassDef: ("a class definition", "define classes outside the differentiated function"),
    ast.FunctionDef: ("a nested function", "move it to module level; fwdad differentiates calls to it"),
    ast.Global: ("a global statement", "pass the value as an argument and return the new value"),
    ast.Nonlocal: ("a nonlocal statement", "pass the value as an argument and return the new value"),
    ast.NamedExpr: ("an assignment expression (:=)", "assign in a separate statement"),
    ast.Delete: ("a del statement", "remove it; rebinding the name is enough"),
    ast.Starred: ("star-unpacking (*args)", "pass the arguments one by one"),
    ast.Import: ("an import inside the function", "import at module level"),
    ast.ImportFrom: ("an import inside the function", "import at module level"),
}
if hasattr(ast, "Match"):
    UNSUPPORTED[ast.Match] = ("a match statement", "use if/elif/else")


class Fence(ast.NodeVisitor):
    def __init__(self, filename):
        self.filename = filename

    def reject(self, node, what, hint):
        raise located(UnsupportedSyntaxError, self.filename, getattr(node, "lineno", 0),
                      f"{what} is not supported by fwdad.", hint)

    def generic_visit(self, node):
        if type(node) in UNSUPPORTED:
            self.reject(node, *UNSUPPORTED[type(node)])
        super().generic_visit(node)

    def visit_For(self, node):
        if node.orelse:
            self.reject(node, "a for ... else clause", "use a flag variable set before break")
        self.generic_visit(node)

    def visit_While(self, node):
        if node.orelse:
            self.reject(node, "a while ... else clause", "use a flag variable set before break")
        self.generic_visit(node)

    def visit_Attribute(self, node):
        if isinstance(node.ctx, ast.Store):
            self.reject(node, "assigning to an attribute", "use local variables and arrays")
        self.generic_visit(node)

    def visit_keyword(self, node):
        if node.arg is None:
            self.reject(node.value, "**keyword unpacking", "pass the keyword arguments one by one")
        self.generic_visit(node)


def fence(tree, filename):
    """Raise UnsupportedSyntaxError at the first construct fwdad does not support."""
    if isinstance(tree, ast.AsyncFunctionDef):
        raise located(UnsupportedSyntaxError, filename, tree.lineno, "an async function is not "
                      "supported by fwdad.", "use a plain def function")
    args = tree.args
    if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs:
        raise located(UnsupportedSyntaxError, filename, tree.lineno,
                      "*args, **kwargs, keyword-only and positional-only parameters are not "
                      "supported by fwdad.", "use plain positional parameters")
    for statement in tree.body:
        Fence(filename).visit(statement)
    return tree
