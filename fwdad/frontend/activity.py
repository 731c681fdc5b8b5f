"""Activity: which variables carry a tangent.

Numba's own type inference, run on the normalized primal for the call's argument types,
says which variables are floats or float arrays; only those can carry a tangent (ints and
bools never do). Of those, a variable is *varied* when its value depends on an active
input: a flow-insensitive fixpoint over the assignments, where arrays that may share
memory (views, slices, rebinding) are varied together, and calls to the user's functions
report which of their array arguments they write varied values into.
"""
import ast
import re
from dataclasses import dataclass

from numba.core import types

from ..errors import CompilationError, located


@dataclass(frozen=True)
class Kind:
    """The differentiable shape of a value: a float scalar, a float array, or a tuple of kinds."""
    shape: str                  # "scalar" | "array" | "tuple"
    dtype: str = ""             # "float32" | "float64" for scalars and arrays
    ndim: int = 0
    items: tuple = ()           # for tuples: Kind or None per item

    def __str__(self):
        if self.shape == "tuple":
            return "(" + ", ".join(str(i) for i in self.items) + ")"
        return self.dtype if self.shape == "scalar" else f"{self.dtype}[{self.ndim}d]"


def kind_of(numba_type):
    """The Kind of a Numba type, or None when it cannot carry a tangent (int, bool, ...)."""
    t = types.unliteral(numba_type)
    if isinstance(t, types.Optional):
        t = t.type
    if isinstance(t, types.Float):
        return Kind("scalar", str(t))
    if isinstance(t, types.Array) and isinstance(t.dtype, types.Float):
        return Kind("array", str(t.dtype), t.ndim)
    if isinstance(t, types.BaseTuple):
        items = tuple(kind_of(item) for item in t)
        return Kind("tuple", items=items) if any(items) else None
    return None


def is_complex(numba_type):
    t = types.unliteral(numba_type)
    return isinstance(t, types.Complex) or (isinstance(t, types.Array) and isinstance(t.dtype, types.Complex))


@dataclass
class FunctionTypes:
    """What Numba inferred for one specialization of a normalized function."""
    kinds: dict                 # variable -> Kind (differentiable variables only)
    numba_types: dict           # variable -> Numba type (every variable, SSA versions merged)
    return_kind: object         # Kind or None
    arg_types: tuple            # the specialization's Numba argument types
    return_type: object = None  # the Numba return type


SSA_NAME = re.compile(r"^(?:arg\.)?([A-Za-z_][A-Za-z0-9_]*)(?:\.\d+)*$")


def function_types(typemap, return_type, arg_types, filename, line_of=lambda name: 0):
    """Merge Numba's SSA versions (`x`, `x.1`, `arg.x`) into one entry per source variable."""
    numba_types, kinds = {}, {}
    for key, numba_type in typemap.items():
        match = SSA_NAME.match(key)
        if not match:
            continue
        name = match.group(1)
        kind = kind_of(numba_type)
        previous = kinds.get(name)
        if kind is not None and previous is not None and previous.shape != kind.shape:
            raise located(CompilationError, filename, line_of(name),
                          f"the variable {name!r} is a {previous.shape} in one place and "
                          f"{'an' if kind.shape == 'array' else 'a'} {kind.shape} in another; fwdad "
                          "gives each variable one tangent.", "use two different names")
        if kind is not None and (previous is None or kind.dtype == "float64"):
            kinds[name] = kind
        if name not in numba_types or kind is not None:
            numba_types[name] = types.unliteral(numba_type)
    return FunctionTypes(kinds, numba_types, kind_of(return_type), tuple(arg_types), return_type)


# ---- the varied analysis ---------------------------------------------------------------------
VIEW_METHODS = {"T", "reshape", "ravel", "transpose", "view", "squeeze", "swapaxes", "real"}


@dataclass
class Summary:
    """How a specialization of a function treats tangents, as its callers see it."""
    varied_params: frozenset    # parameter positions that carry a tangent in or out
    returns_varied: bool
    returns_views_of: frozenset = None   # array parameters the result may share memory with (None: any)


class Activity:
    """Fixpoint computation of the varied variables of one normalized function."""

    def __init__(self, tree, function_types, active_params, callee_summary, view_functions):
        self.tree = tree
        self.kinds = function_types.kinds
        self.params = [a.arg for a in tree.args.args]
        self.callee_summary = callee_summary      # (callee name, call node, varied mask) -> Summary
        self.view_functions = view_functions      # (call node, target name) -> True if it may be a view
        self.varied = {self.params[i] for i in active_params if self.params[i] in self.kinds}
        self.parent = {}

    # union-find over names that may share memory
    def find(self, name):
        while self.parent.get(name, name) != name:
            name = self.parent[name]
        return name

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[ra] = rb

    def mark(self, name):
        """Mark `name` varied, if it can carry a tangent; report whether anything changed."""
        if name in self.kinds and name not in self.varied:
            self.varied.add(name)
            return True
        return False

    def holds_arrays(self, name):
        kind = self.kinds.get(name)
        return kind is not None and (kind.shape == "array" or
                                     (kind.shape == "tuple" and any(i and i.shape == "array" for i in kind.items)))

    def is_varied(self, node):
        return isinstance(node, ast.Name) and node.id in self.varied

    def reads(self, value):
        """The names whose tangents flow into `value` (an operation on atoms)."""
        if isinstance(value, ast.Name):
            return [value]
        if isinstance(value, ast.BinOp):
            return [value.left, value.right]
        if isinstance(value, ast.UnaryOp) and not isinstance(value.op, ast.Not):
            return [value.operand]
        if isinstance(value, (ast.Subscript, ast.Attribute)):
            return [value.value]
        if isinstance(value, (ast.Tuple, ast.List)):
            return [n for e in value.elts for n in self.reads(e)]
        if isinstance(value, ast.BoolOp):      # `a or b` is a or b: the tangent pass rejects it
            return [n for n in ast.walk(value) if isinstance(n, ast.Name)]
        if isinstance(value, ast.Call):
            operands = list(value.args) + [k.value for k in value.keywords]
            if isinstance(value.func, ast.Attribute):
                operands.append(value.func.value)
            return [n for a in operands for n in self.reads(a)]
        return []

    def aliases(self, target, value):
        """Names that `target = value` may make share memory with `target`."""
        if isinstance(value, ast.Name):
            return [value.id]
        if isinstance(value, ast.Tuple):            # `t = (A, 1.0)`: t[0] is A itself
            return [e.id for e in value.elts if isinstance(e, ast.Name)]
        if isinstance(value, ast.Subscript) and isinstance(value.value, ast.Name):
            return [value.value.id]
        if isinstance(value, ast.Attribute) and value.attr in VIEW_METHODS and isinstance(value.value, ast.Name):
            return [value.value.id]
        if isinstance(value, ast.Call):
            if self.view_functions(value, target.id):   # first: np.swapaxes(U, ..) is no method of np
                return [a.id for a in value.args if isinstance(a, ast.Name)]
            if isinstance(value.func, ast.Attribute) and value.func.attr in VIEW_METHODS \
                    and isinstance(value.func.value, ast.Name):
                return [value.func.value.id]
        return []

    def user_call(self, call):
        """The callee's Summary for a call to a user function (None for any other call)."""
        mask = frozenset(i for i, a in enumerate(call.args) if self.is_varied(a))
        return self.callee_summary(call, mask)

    def step(self, statement):
        changed = False
        if isinstance(statement, ast.Assign):
            target, value = statement.targets[0], statement.value
            if isinstance(target, ast.Name):
                if self.holds_arrays(target.id):
                    for other in self.aliases(target, value):
                        if other in self.kinds:
                            self.union(target.id, other)
                summary = self.user_call(value) if isinstance(value, ast.Call) else None
                if summary is not None:
                    changed |= self.mark_arguments(value, summary)
                    if summary.returns_varied:
                        changed |= self.mark(target.id)
                    if self.holds_arrays(target.id):
                        shared = summary.returns_views_of
                        for i, arg in enumerate(value.args):
                            if isinstance(arg, ast.Name) and self.holds_arrays(arg.id) and \
                                    (shared is None or i in shared):
                                self.union(target.id, arg.id)
                elif any(self.is_varied(n) for n in self.reads(value)):
                    changed |= self.mark(target.id)
            elif isinstance(target, ast.Subscript) and self.is_varied(value):
                changed |= self.mark(target.value.id)
        elif isinstance(statement, ast.AugAssign):
            if self.is_varied(statement.value):
                changed |= self.mark(statement.target.id)
        elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
            call = statement.value
            summary = self.user_call(call)
            if summary is not None:
                changed |= self.mark_arguments(call, summary)
            elif isinstance(call.func, ast.Attribute) and call.func.attr == "fill" and \
                    isinstance(call.func.value, ast.Name) and any(self.is_varied(a) for a in call.args):
                changed |= self.mark(call.func.value.id)
        return changed

    def mark_arguments(self, call, summary):
        changed = False
        for i in summary.varied_params:
            if i < len(call.args) and isinstance(call.args[i], ast.Name):
                changed |= self.mark(call.args[i].id)
        return changed

    def spread_over_aliases(self):
        changed = False
        groups = {}
        for name in self.kinds:
            groups.setdefault(self.find(name), []).append(name)
        for members in groups.values():
            if any(m in self.varied for m in members):
                for m in members:
                    changed |= self.mark(m)
        return changed

    def run(self):
        statements = [s for s in ast.walk(self.tree) if isinstance(s, ast.stmt)]
        changed = True
        while changed:
            changed = False
            for statement in statements:
                changed |= self.step(statement)
            changed |= self.spread_over_aliases()
        return self.varied

    def summary(self):
        varied_params = frozenset(i for i, p in enumerate(self.params) if p in self.varied)
        returns = [s.value for s in ast.walk(self.tree) if isinstance(s, ast.Return) and s.value is not None]
        atoms = [n for r in returns for n in (r.elts if isinstance(r, ast.Tuple) else [r])]
        return Summary(varied_params, any(self.is_varied(a) for a in atoms), self.returned_views(atoms))

    def returned_views(self, atoms):
        """The array parameters a returned value may share memory with: none when every returned
        array is fresh (see `fresh`), else None (any of them; the alias groups do not follow
        every way to share memory: tuples, lists, np.flip). A caller makes its result an alias
        of these arguments only: a constant array passed in and not returned keeps no tangent
        (norm at 0 of a zero tangent would give nan)."""
        names = [a.id for a in atoms if isinstance(a, ast.Name) and self.holds_arrays(a.id)]
        return frozenset() if all(self.fresh(n) for n in names) else None

    def fresh(self, name):
        """Whether `name` holds an array allocated here: everything in its alias group is bound
        only by arithmetic (`t = a * b`, `-a`) or `.copy()`, and no parameter is in the group."""
        group = {m for m in self.kinds if self.find(m) == self.find(name)}
        if group & set(self.params) or any(self.kinds[m].shape != "array" for m in group):
            return False                 # (a tuple `(A,) + (B,)` holds the arrays themselves)
        for node in ast.walk(self.tree):
            bound = [n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)] \
                if isinstance(node, (ast.Assign, ast.For, ast.With, ast.NamedExpr, ast.comprehension)) else []
            if not group & set(bound):
                continue
            value = node.value if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name) else None
            copied = isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and \
                value.func.attr == "copy" and not value.args
            if not (isinstance(value, (ast.BinOp, ast.UnaryOp)) or copied):
                return False
        return True
