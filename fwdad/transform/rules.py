"""The derivative rule table: one line per rule, written as a Python template.

In a template `x, y, w` are the operation's arguments in order, `dx, dy, dw` their
tangents and `z` the result; `np` and `math` are the modules. Templates are linear in the
tangents, so a term whose tangent is zero (an inactive operand) is dropped when the rule
is instantiated: `dx * y + x * dy` becomes `x * d_y` when `x` is inactive.
A rule of None means the result is piecewise constant: its tangent is zero.

Conventions at non-differentiable points follow JAX: abs'(0) = 1, ties of max/min/clip split
the tangent evenly, sign/floor/ceil/round/trunc have zero tangent, sqrt'(0) = inf, and
d(x ** y)/dy = 0 at x = 0, hypot at the origin averages. docs/conventions.md lists them all.
"""
import ast
import copy
import dataclasses
import math

import numba
import numpy as np

from .. import layers

LINEAR = "linear"          # the tangent is the same call with the first argument's tangent
LINEAR_SEQUENCE = "linear in a sequence"   # the same call on the tuple of tangents (concatenate)

OPERATORS = {
    ast.Add: "dx + dy",
    ast.Sub: "dx - dy",
    ast.Mult: "dx * y + x * dy",
    ast.Div: "dx / y - z * dy / y",
    ast.Pow: "dx * y * x ** (y - 1) + dy * z * np.log(x + (x == 0))",
    ast.Mod: "dx - dy * np.floor(x / y)",
    ast.MatMult: "dx @ y + x @ dy",
    ast.FloorDiv: None,
    ast.USub: "-dx",
    ast.UAdd: "dx",
}

# `z op= y` updates z in place (arrays) or rebinds it (scalars); these run before the primal
# update, so `z` is the old value and `dz` is updated the same way.
IN_PLACE = {
    ast.Add: ["dz += dy"],
    ast.Sub: ["dz -= dy"],
    ast.Mult: ["dz *= y", "dz += z * dy"],
    ast.Div: ["dz -= z / y * dy", "dz /= y"],
    ast.Pow: ["dz *= y * z ** (y - 1)", "dz += z ** y * np.log(z + (z == 0)) * dy"],
}

UNSET = "unset"              # a row's domain before the tests' input domain is given
PIECEWISE_LINEAR = "piecewise linear"      # a row's curvature: every second partial is 0 (a.e.)
NO_RULE = "no rule"          # a row of facts about a function fwdad has no derivative rule for


class Refused(str):
    """A rule that refuses an active argument; the text says what to write instead."""


@dataclasses.dataclass(frozen=True)
class Row:
    """Everything fwdad knows about one function, in one place.

    template: the derivative rule (a template, one per arity, LINEAR, None for a piecewise
    constant result, a Refused, or NO_RULE); piecewise: argument positions whose tangent cannot
    reach the result; view: Numba may return a view of the first argument; allocates: it makes
    a new array (device code cannot); inactive: its result never carries a tangent (len, range);
    copied_view: vector mode computes it per direction, so its result is a copy; domain: the
    tests' input domain, one (low, high) per argument (None: tested with the array programs);
    curvature: which second partials may be nonzero, for the Hessian's pattern (None: read from
    the template, fwdad/transform/hessian_sparsity.py; PIECEWISE_LINEAR: none, max and min).
    """
    template: object = NO_RULE
    piecewise: frozenset = frozenset()
    view: bool = False
    allocates: bool = False
    inactive: bool = False
    copied_view: bool = False
    domain: object = UNSET
    curvature: object = None


ROWS = {}                    # function -> Row
# Views of the rows that the passes read (kept in step with ROWS by rule() and facts()):
FUNCTIONS = {}               # function -> template, for the functions with a rule
PIECEWISE_ARGUMENTS = {}     # function -> positions whose tangent does not reach the result at all
VIEW_FUNCTIONS = set()       # functions whose result may share memory with their first argument


def rule(template, *functions, piecewise=(), view=False, domain=UNSET):
    """One row of the table; `piecewise` names the argument positions whose tangent cannot reach
    the result (arange's stop only sets the length, where's condition only selects), so that the
    tangent pass refuses any other argument a template ignores. `view`: Numba may return a view of
    the first argument (np.expand_dims(x, 0)), so a write through the result writes x too.
    A function has one rule: registering it again is an error, never a silent override (an
    alias listed in the same row, np.abs and np.absolute in some NumPy versions, counts once)."""
    for function in dict.fromkeys(functions):
        if function in ROWS:
            raise ValueError(f"the rule table has a row for {getattr(function, '__name__', function)!r} "
                             "already; merge the two rows")
        ROWS[function] = Row(template, frozenset(piecewise), view, domain=domain)
        FUNCTIONS[function] = template
        PIECEWISE_ARGUMENTS[function] = frozenset(piecewise)
        if view:
            VIEW_FUNCTIONS.add(function)


def facts(*functions, **given):
    """Add facts other than the rule (view, allocates, inactive, copied_view, domain) to the
    rows of `functions` (a row without a rule for a function that has none); a fact given twice
    with another value is an error."""
    for function in functions:
        row = ROWS.get(function, Row())
        for key, value in given.items():
            default = getattr(Row(), key)
            if getattr(row, key) not in (default, value):
                raise ValueError(f"the rule table already says {key}={getattr(row, key)!r} for "
                                 f"{getattr(function, '__name__', function)!r}")
        ROWS[function] = dataclasses.replace(row, **given)
        if given.get("view"):
            VIEW_FUNCTIONS.add(function)


def names_with(fact):
    """The names (np.zeros -> "zeros") of the functions whose rows have `fact`, for passes that
    match a call or a method by its name (x.copy() as np.copy)."""
    return frozenset(getattr(f, "__name__", "") for f, row in ROWS.items() if getattr(row, fact))


# ---- elementwise, scalar and array (math.* and np.*) ---------------------------------------
POSITIVE, UNIT, ABOVE_ONE, AROUND_0 = (0.2, 3.0), (-0.9, 0.9), (1.1, 3.0), (-2, 2)   # test domains
rule("dx * np.cos(x)",                                  math.sin, np.sin, domain=[(-3, 3)])
rule("-dx * np.sin(x)",                                 math.cos, np.cos, domain=[(-3, 3)])
rule("dx * (1.0 + z * z)",                              math.tan, np.tan, domain=[(-1.2, 1.2)])
rule("dx / np.sqrt(1.0 - x * x)",                       math.asin, np.arcsin, domain=[UNIT])
rule("-dx / np.sqrt(1.0 - x * x)",                      math.acos, np.arccos, domain=[UNIT])
rule("dx / (1.0 + x * x)",                              math.atan, np.arctan, domain=[(-3, 3)])
rule("(y * dx - x * dy) / (x * x + y * y)",             math.atan2, domain=[AROUND_0, POSITIVE])
rule("(y * dx - x * dy) / (x * x + y * y)",             np.arctan2, domain=[POSITIVE, AROUND_0])
rule("dx * np.cosh(x)",                                 math.sinh, np.sinh, domain=[AROUND_0])
rule("dx * np.sinh(x)",                                 math.cosh, np.cosh, domain=[AROUND_0])
rule("dx * (1.0 - z * z)",                              math.tanh, np.tanh, domain=[AROUND_0])
rule("dx / np.sqrt(x * x + 1.0)",                       math.asinh, np.arcsinh, domain=[AROUND_0])
rule("dx / np.sqrt(x * x - 1.0)",                       math.acosh, np.arccosh, domain=[ABOVE_ONE])
rule("dx / (1.0 - x * x)",                              math.atanh, np.arctanh, domain=[UNIT])
rule("dx * z",                                          math.exp, np.exp, domain=[AROUND_0])
rule("dx * z * 0.6931471805599453",                     np.exp2, domain=[AROUND_0])
rule("dx * (z + 1.0)",                                  math.expm1, np.expm1, domain=[AROUND_0])
rule("dx / (1.0 + x)",                                  math.log1p, np.log1p, domain=[(-0.5, 2)])
rule("dx / (x * 0.6931471805599453)",                   math.log2, np.log2, domain=[POSITIVE])
rule("dx / (x * 2.302585092994046)",                    math.log10, np.log10, domain=[POSITIVE])
rule("dx / (z + z)",                                    math.sqrt, np.sqrt, domain=[POSITIVE])
rule("dx / (3.0 * z * z)",                              np.cbrt, domain=[POSITIVE])
rule("(dx + dx) * x",                                   np.square, domain=[AROUND_0])
rule("-dx * z * z",                                     np.reciprocal, domain=[POSITIVE])
rule("dx * y * x ** (y - 1) + dy * z * np.log(x + (x == 0))", math.pow, np.power, domain=[POSITIVE, AROUND_0])
rule("(x * dx + y * dy) / (z + (z == 0)) + (z == 0) * 0.5 * (dx + dy)", math.hypot, np.hypot,
     domain=[AROUND_0, POSITIVE])
rule("dx * 1.1283791670955126 * np.exp(-x * x)",        math.erf, domain=[AROUND_0])
rule("-dx * 1.1283791670955126 * np.exp(-x * x)",       math.erfc, domain=[AROUND_0])
rule("dx * math.copysign(1.0, x) * math.copysign(1.0, y)", math.copysign, piecewise=(1,),
     domain=[POSITIVE, AROUND_0])
rule("dx * np.sign(x) * np.sign(y)",                    np.copysign, piecewise=(1,), domain=[AROUND_0, POSITIVE])
rule("(dx * np.exp(x - z) + dy * np.exp(y - z))",       np.logaddexp, domain=[AROUND_0, AROUND_0])
rule("dx",                                              float, np.float64, domain=[AROUND_0])
rule("dx",                                              np.float32, domain=None)
rule(None, math.floor, math.ceil, math.trunc, np.floor, np.ceil, np.trunc, np.rint, np.round,
     np.sign, round, int, domain=[AROUND_0])             # piecewise constant: the tangent is exactly 0
# allocation: new arrays have zero tangent unless filled with an active value
rule(None, np.empty, np.zeros, np.ones, np.empty_like, np.zeros_like, np.ones_like, np.eye,
     np.identity, domain=None)
rule({2: "np.full(x, dy)", 3: "np.full(x, dy, w)"},     np.full, domain=None)
rule({2: "np.full_like(x, dy)", 3: "np.full_like(x, dy, w)"}, np.full_like, piecewise=(0,), domain=None)
rule({2: "np.linspace(dx, dy)", 3: "np.linspace(dx, dy, w)"}, np.linspace, domain=None)
# arange(start, stop, step) = start + i * step: its length (from stop) is piecewise constant
rule({1: None, 2: "np.full_like(z, dx)", 3: "np.full_like(z, dx) + np.arange(z.size).astype(z.dtype) * dw"},
     np.arange, piecewise=(1,), domain=None)
# np.random.* inside a function: the draws are constants
rule(None, *[getattr(np.random, name) for name in (
    "random", "rand", "randn", "normal", "uniform", "standard_normal", "randint",
    "exponential", "gamma", "beta", "binomial", "poisson")])
# ... but choice(x) and permutation(x) of an active array return x's own entries
rule(Refused("draw the indices instead and index with them: `i = np.random.randint(0, len(x))`, "
             "`x[i]`, or `p = np.random.permutation(len(x))`, `x[p]`"),
     np.random.choice, np.random.permutation, np.random.shuffle)
# reductions and products (np.negative too: -x is the same call on the tangent)
rule(LINEAR,            np.sum, np.cumsum, np.trace, np.copy, np.diag, np.negative, np.roll,
                        np.diff, np.array)        # np.array((a, b)): the array of the tangents
facts(np.negative, domain=[AROUND_0])
rule(LINEAR,            np.transpose, np.reshape, np.ravel, np.squeeze, np.ascontiguousarray,
                        np.asarray, np.atleast_1d, np.atleast_2d, np.expand_dims, np.swapaxes,
                        view=True)                # Numba returns a view when it can
# Numba returns views from these too, but they have no rule (an active argument is refused): a
# write through the view of an inactive array must still make that array carry a tangent
facts(np.flip, np.fliplr, np.flipud, np.atleast_3d, np.moveaxis, np.rot90, np.broadcast_to, np.real,
      np.resize, np.asarray_chkfinite, np.trim_zeros, view=True)
rule(LINEAR,                                            np.mean)        # mean(dx): keeps float32
rule("fwdad_runtime.extreme_jvp(x, dx, z)",             np.max, np.min, np.amax, np.amin)
rule("fwdad_runtime.prod_jvp(x, dx)",                   np.prod)
rule("fwdad_runtime.cumprod_jvp(x, dx)",                np.cumprod)
rule("np.dot(dx, y) + np.dot(x, dy)",                   np.dot)
rule("dx @ y + x @ dy",                                 np.matmul)
rule("np.outer(dx, y) + np.outer(x, dy)",               np.outer)
rule({1: "fwdad_runtime.norm_jvp(x, dx, z)", 2: "fwdad_runtime.norm_ord_jvp(x, dx, z, y)"}, np.linalg.norm)
rule(LINEAR_SEQUENCE,   np.concatenate, np.stack, np.vstack, np.hstack)
# linear algebra
rule("np.linalg.solve(x, dy - dx @ z)",                 np.linalg.solve)
rule("-(z @ dx @ z)",                                   np.linalg.inv)
rule("z * np.trace(np.linalg.solve(x, dx))",            np.linalg.det)
# elementwise selection; ties split the tangent evenly as in JAX
rule("dx * ((x > y) + 0.5 * (x == y)) + dy * ((y > x) + 0.5 * (x == y))", np.maximum)
rule("dx * ((x < y) + 0.5 * (x == y)) + dy * ((y < x) + 0.5 * (x == y))", np.minimum)
rule("np.where((x > y) | np.isnan(y), dx, dy)",         np.fmax)
rule("np.where((x < y) | np.isnan(y), dx, dy)",         np.fmin)
rule("np.where(x, dy, dw)",                             np.where, piecewise=(0,))
rule("(dx * ((x > y) + 0.5 * (x == y)) + dy * ((y > x) + 0.5 * (x == y))) * ((np.maximum(x, y) < w) "
     "+ 0.5 * (np.maximum(x, y) == w)) + dw * ((w < np.maximum(x, y)) + 0.5 * (np.maximum(x, y) == w))",
     np.clip)                                           # clip = minimum(maximum(x, lo), hi)
# log(x) and log(x, base)
rule("dx / x",                                          np.log, domain=[POSITIVE])
rule({1: "dx / x", 2: "dx / (x * np.log(y)) - dy * z / (y * np.log(y))"}, math.log, domain=[POSITIVE, ABOVE_ONE])
# kinks: abs'(0) = 1 as in JAX; ties of max/min split the tangent evenly
rule("dx if x >= 0 else -dx",                           abs, math.fabs, domain=[AROUND_0])
rule("np.where(x >= 0, dx, -dx)",                       np.abs, np.absolute, np.fabs, domain=[AROUND_0])
# builtins: max(array) and min(array) are np.max and np.min, sum(array, start) is np.sum + start
rule({1: "fwdad_runtime.extreme_jvp(x, dx, z)", 2: "dx if x > y else (dy if y > x else 0.5 * (dx + dy))"}, max,
     domain=[AROUND_0, AROUND_0])
rule({1: "fwdad_runtime.extreme_jvp(x, dx, z)", 2: "dx if x < y else (dy if y < x else 0.5 * (dx + dy))"}, min,
     domain=[AROUND_0, AROUND_0])
rule({1: "np.sum(dx)", 2: "np.sum(dx) + dy"},           sum, domain=None)

# ---- fwdad's layers (fwdad/layers.py): activity perturbation's sites and block boundaries ----------
rule(None,                                              layers.stop_gradient, domain=None)
DENSE, DENSE_RELU = "dx @ y + x @ dy + dw", "(dx @ y + x @ dy + dw) * (z > 0)"
rule({3: DENSE, 4: DENSE, 5: DENSE}, layers.dense, piecewise=(3, 4), domain=None)
rule({3: DENSE_RELU, 4: DENSE_RELU, 5: DENSE_RELU}, layers.dense_relu, piecewise=(3, 4),
     domain=None)                         # loss= and groups= only name columns of the losses
rule("dx + dy * fwdad_runtime.site_noise(z, w)",        layers.inject, domain=None)
rule("dx + dy * fwdad_runtime.site_noise_active(z, w)", layers.inject_active, domain=None)

# ---- facts besides the rule -------------------------------------------------------------------
# new arrays: device code (target="cuda") cannot make them
facts(np.zeros, np.zeros_like, np.empty, np.empty_like, np.ones, np.ones_like, np.full, np.full_like,
      np.copy, np.arange, np.linspace, np.eye, np.identity, np.concatenate, np.stack, np.outer, np.dot,
      allocates=True)
# their results never carry a tangent, whatever their arguments
facts(len, range, int, bool, isinstance, numba.prange, inactive=True)
# vector mode computes these per direction: the result is a copy, not a view of the argument
facts(np.squeeze, np.swapaxes, copied_view=True)
# their templates call a helper (which the Hessian's pattern would take as nonlinear): piecewise linear
facts(np.max, np.min, np.amax, np.amin, max, min, curvature=PIECEWISE_LINEAR)


# ---- array methods and attributes (x is the array, y, w the method's arguments) ------------------
METHODS = {
    ".copy": LINEAR, ".T": LINEAR, ".sum": LINEAR, ".reshape": LINEAR, ".ravel": LINEAR,
    ".flatten": LINEAR, ".transpose": LINEAR, ".astype": LINEAR, ".cumsum": LINEAR,
    ".squeeze": LINEAR,
    ".mean": LINEAR,
    ".max": "fwdad_runtime.extreme_jvp(x, dx, z)",
    ".min": "fwdad_runtime.extreme_jvp(x, dx, z)",
    ".prod": "fwdad_runtime.prod_jvp(x, dx)",
    ".dot": "dx.dot(y) + x.dot(dy)",
}


# ---- instantiation -------------------------------------------------------------------------
SCALAR_MATH = {"cos", "sin", "tan", "cosh", "sinh", "tanh", "exp", "log", "sqrt", "floor", "ceil",
               "isnan", "copysign", "log1p", "expm1", "atan", "asin", "acos", "hypot"}
TANGENTS = {"dx": 0, "dy": 1, "dw": 2}
PRIMALS = {"x": 0, "y": 1, "w": 2}
ZERO = "__zero__"


def parse_template(template, mode="eval"):
    tree = ast.parse(template, mode=mode)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            node.from_template = True
        node.has_tangent = any(isinstance(n, ast.Name) and (n.id in TANGENTS or n.id == "dz")
                               for n in ast.walk(node))
    return tree


_PARSED = {}


def parsed(template, mode="eval"):
    if (template, mode) not in _PARSED:
        _PARSED[template, mode] = parse_template(template, mode)
    return copy.deepcopy(_PARSED[template, mode])


def is_zero(node):
    return isinstance(node, ast.Name) and node.id == ZERO


class Instantiate(ast.NodeTransformer):
    """Substitute a template's names, drop zero terms, fold constants."""

    def __init__(self, primals, tangents, result, modules, zero, scalar=False):
        self.primals, self.tangents, self.result = primals, tangents, result
        self.modules, self.zero, self.scalar = modules, zero, scalar

    def visit_Attribute(self, node):
        """np.cos -> math.cos when every operand is a scalar (readable, and CUDA-friendly)."""
        if self.scalar and isinstance(node.value, ast.Name) and node.value.id == "np" \
                and node.attr in SCALAR_MATH:
            return ast.Attribute(ast.Name(self.modules["math"], ast.Load()), node.attr, ast.Load())
        self.generic_visit(node)
        return node.value if is_zero(node.value) else node

    def visit_Name(self, node):
        if node.id in PRIMALS:
            return copy.deepcopy(self.primals[PRIMALS[node.id]])
        if node.id in TANGENTS:
            tangent = self.tangents[TANGENTS[node.id]]
            if tangent is None:
                return ast.Name(ZERO, ast.Load())
            tangent = copy.deepcopy(tangent)
            tangent.has_tangent = True
            return tangent
        if node.id == "z":
            return copy.deepcopy(self.result)
        if node.id == "dz":
            tangent = copy.deepcopy(self.tangents[-1])
            tangent.has_tangent = True
            return tangent
        if node.id in self.modules:
            return ast.Name(self.modules[node.id], ast.Load())
        return node

    def visit_BinOp(self, node):
        self.generic_visit(node)
        left, right, op = node.left, node.right, type(node.op)
        if op is ast.Add:
            if is_zero(left):
                return right
            if is_zero(right):
                return left
        if op is ast.Sub:
            if is_zero(right):
                return left
            if is_zero(left):
                return ast.UnaryOp(ast.USub(), right) if not is_zero(right) else right
        if op in (ast.Mult, ast.MatMult) and (is_zero(left) or is_zero(right)):
            return ast.Name(ZERO, ast.Load())
        if op in (ast.Div, ast.Mod, ast.FloorDiv) and is_zero(left):
            return left
        return fold(node)

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        return node.operand if is_zero(node.operand) else node

    def visit_Call(self, node):
        self.generic_visit(node)
        if is_zero(node.func):          # dx.dot(y) with dx zero: METHODS are linear in the receiver
            return ast.Name(ZERO, ast.Load())
        carriers = [a for a in node.args if getattr(a, "has_tangent", False) or is_zero(a)]
        if carriers and all(is_zero(a) for a in carriers):
            return ast.Name(ZERO, ast.Load())
        node.args = [self.zero() if is_zero(a) else a for a in node.args]
        return node

    def visit_IfExp(self, node):
        self.generic_visit(node)
        if is_zero(node.body) and is_zero(node.orelse):
            return node.body
        node.body = self.zero() if is_zero(node.body) else node.body
        node.orelse = self.zero() if is_zero(node.orelse) else node.orelse
        return node

    def visit_Subscript(self, node):
        self.generic_visit(node)
        return node.value if is_zero(node.value) else node

class ReplaceZeros(ast.NodeTransformer):
    """Any zero term left where it cannot be dropped (e.g. a keyword value) becomes a typed 0."""

    def __init__(self, zero):
        self.zero = zero

    def visit_Name(self, node):
        return self.zero() if is_zero(node) else node


def number(node):
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def fold(node):
    """Fold constant arithmetic and the identities x ** 1, x * 1, 1 * x, x / 1, x ** 0."""
    left, right, op = node.left, node.right, type(node.op)
    if number(left) and number(right) and op in (ast.Add, ast.Sub, ast.Mult, ast.Pow):
        value = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
                 ast.Mult: lambda a, b: a * b, ast.Pow: lambda a, b: a ** b}[op](left.value, right.value)
        return constant(value, getattr(left, "from_template", False) or getattr(right, "from_template", False))
    if number(right) and right.value == 1 and op in (ast.Pow, ast.Mult, ast.Div):
        return left
    if number(left) and left.value == 1 and op is ast.Mult:
        return right
    if number(right) and right.value == 0 and op is ast.Pow:
        return constant(1, True)
    return node


def constant(value, from_template):
    """A number as an AST node; negative numbers as unary minus so `ast.unparse` keeps precedence."""
    node = ast.Constant(abs(value))
    node.from_template = from_template
    return ast.UnaryOp(ast.USub(), node) if value < 0 else node


def typed_constants(node, cast):
    """Wrap the numbers that meet a float32 value in arithmetic in `cast(...)` (np.float32).

    Numba promotes float32 op int64 and float32 op float64-literal to float64; exponents are
    left alone (float32 ** 2 stays float32).
    """
    def wrap(operand):
        literal = operand.operand if isinstance(operand, ast.UnaryOp) else operand
        return ast.Call(cast(), [operand], []) if number(literal) else operand

    for n in ast.walk(node):
        if isinstance(n, ast.BinOp):
            n.left = wrap(n.left)
            if not isinstance(n.op, ast.Pow):
                n.right = wrap(n.right)
    return node


def instantiate(template, primals, tangents, result, modules, zero, cast=None, scalar=False):
    """The tangent expression of `template` (an AST), or None when it is identically zero.

    primals/tangents: AST nodes (a tangent may be None for an inactive operand);
    result: the node naming the result; modules: {"np": alias, "math": alias};
    zero(): a typed zero node for a non-droppable zero; cast(): the dtype constructor node
    wrapped around the rule's own numbers (float32 code), or None.
    """
    tree = parsed(template).body
    tree = Instantiate(primals, tangents, result, modules, zero, scalar).visit(tree)
    if is_zero(tree):
        return None
    tree = ReplaceZeros(zero).visit(tree)
    if cast is not None:
        tree = typed_constants(tree, cast)
    return ast.fix_missing_locations(tree)


def instantiate_in_place(op, target, target_tangent, operand, operand_tangent, modules, zero, cast=None):
    """Statements updating `target_tangent` for `target op= operand`, before the primal runs."""
    statements = []
    for template in IN_PLACE[op]:
        statement = parsed(template, "exec").body[0]
        value = Instantiate([target, operand], [None, operand_tangent, target_tangent],
                            target, modules, zero).visit(statement.value)
        if is_zero(value):
            continue
        if cast is not None:
            value = typed_constants(value, cast)
        statements.append(ast.AugAssign(copy.deepcopy(target_tangent), statement.op, value))
    return statements


def function_rule(function, arity):
    """The template for calling `function` with `arity` arguments; KeyError if there is none."""
    try:
        template = FUNCTIONS[function]
    except TypeError:          # unhashable objects have no rule
        raise KeyError(function) from None
    if isinstance(template, dict):
        return template[arity]
    return template


def allocates(name):
    """Whether np.<name>(...) or x.<name>(...) makes a new array (device code cannot)."""
    return name in names_with("allocates")


def has_rule(function):
    try:
        return function in FUNCTIONS
    except TypeError:
        return False

