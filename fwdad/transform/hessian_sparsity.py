"""The Hessian's sparsity pass: the sparsity pass, plus the pairs of inputs that meet nonlinearly.

As SparseConnectivityTracer's Hessian tracer (Hill & Dalle 2025, arXiv 2501.17737), each value
carries its gradient set (the sparsity pass's dependency words) and every operation whose
second partials are not all zero adds pairs to the pattern: `z = x * y` adds grad(x) x grad(y),
`z = exp(x)` adds grad(x) x grad(x), `z = x / y` both grad(x) x grad(y) and grad(y) x grad(y);
linear operations (+, -, scaling, slicing, sums, reshapes) and piecewise constant ones (floor,
comparisons) add none. The pairs go into one matrix of words for the whole call (`hessian_words`,
row i: the inputs j with a possible nonzero H[i, j]), passed on to every helper, instead of a
second set per value: the Hessian is the sum over the operations of their second partials times
their arguments' gradients, so the union over all operations covers every nonzero (operations
whose result never reaches the output add pairs that the driver removes, since rows and columns
outside the output's gradient set are zero).

Which pairs an operation adds is read from its rule's template (`curvature_pairs`): the
coefficient of `da` in a linear template is the partial dz/da, and it depends on argument b
exactly when b, or the result z, appears in it outside comparisons and piecewise constant calls.
`dx * y + x * dy` (x * y): pairs (x, y) only. A row whose template says too much (a helper call
reads as nonlinear) gives its curvature in the rule table (`curvature=PIECEWISE_LINEAR`: max, min).

>>> sorted(curvature_pairs("dx * y + x * dy")), sorted(curvature_pairs("dx / y - z * dy / y"))
([('x', 'y')], [('x', 'y'), ('y', 'y')])
>>> sorted(curvature_pairs("dx + dy")), sorted(curvature_pairs("np.where(x >= 0, dx, -dx)"))
([], [])

The pair updates run before their statement (they read the operands' sets); `sin(z)` pairs z
with itself, `t1 + x` adds none:

>>> print(show('''
... def f(x, y):
...     z = x * y
...     t1 = math.sin(z)
...     t2 = t1 + x
...     return t2
... ''', {"x": "float64", "y": "float64", "z": "float64", "t1": "float64", "t2": "float64"}, active=(0, 1)))
def f_jvp_hessian_sparsity(x, y, d_x, d_y, hessian_words):
    K = d_x.shape[-1]
    d_x = d_x.copy()
    d_y = d_y.copy()
    d_z = np.zeros(K, np.uint64)
    d_t2 = np.zeros(K, np.uint64)
    fwdad_sparsity.pairs_elementwise(hessian_words, d_x, d_y)
    z = x * y
    for k in range(K):
        d_z[k] = d_x[k] | d_y[k]
    fwdad_sparsity.pairs_elementwise(hessian_words, d_z, d_z)
    t1 = math.sin(z)
    t2 = t1 + x
    for k in range(K):
        d_t1 = d_z[k]
        d_t2[k] = d_t1 | d_x[k]
    return (t2, d_t2)
"""
import ast

import numpy as np

from . import rules
from .sparsity import RUNTIME, LocalSparsityPass, SparsityPass
from .tangent import name

LETTERS = "xyw"
EVERY = frozenset(LETTERS) | {"z"}
SHAPE_ATTRIBUTES = {"shape", "size", "ndim", "dtype"}
PREDICATES = {np.isnan, np.isinf, np.isfinite}       # boolean results: piecewise constant
MODULES = {"np": np, "math": __import__("math")}
LINEAR_OPERATORS = (ast.Add, ast.Sub, ast.BitOr, ast.BitAnd)
PRODUCTS = (ast.Mult, ast.MatMult, ast.Div, ast.Mod, ast.FloorDiv, ast.Pow)
DIVISIONS = (ast.Div, ast.Mod, ast.FloorDiv, ast.Pow)   # nonlinear in their right operand (Pow in both)


# ---- which second partials a template's rule may have ---------------------------------------------
def curvature_pairs(template, piecewise=()):
    """The pairs (a, b), a <= b, of argument letters whose second partial d2z/dadb may be nonzero."""
    tree = rules.parsed(template).body
    used = {n.id[-1] for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in ("x", "y", "w", "dx", "dy", "dw")}
    smooth = {letter for i, letter in enumerate(LETTERS) if i not in piecewise and letter in used}
    coefficients, _ = read(tree)
    pairs = set()
    for a, reads in coefficients.items():
        for b in (smooth if "z" in reads else reads) & smooth:
            pairs.add(tuple(sorted((a, b))))
    return pairs


def read(node):
    """({tangent letter: the primal letters its coefficient reads}, the primal letters the
    tangent-free rest reads) of a template expression; anything unknown reads everything."""
    if isinstance(node, ast.Name):
        if node.id in ("dx", "dy", "dw"):
            return {node.id[1]: set()}, set()
        return {}, {node.id} & EVERY
    if isinstance(node, ast.Constant):
        return {}, set()
    if isinstance(node, ast.Attribute):
        return ({}, set()) if node.attr in SHAPE_ATTRIBUTES else read(node.value)
    if isinstance(node, (ast.Compare, ast.BoolOp)) or (isinstance(node, ast.UnaryOp) and
                                                       isinstance(node.op, ast.Not)):
        return constant_piece(node)
    if isinstance(node, ast.UnaryOp):
        return read(node.operand)
    if isinstance(node, ast.IfExp):
        test = constant_piece(node.test)
        return merged([test, read(node.body), read(node.orelse)])
    if isinstance(node, ast.BinOp):
        return read_binary(node)
    if isinstance(node, ast.Call):
        return read_call(node)
    if isinstance(node, (ast.Tuple, ast.Subscript)):
        return merged([read(child) for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr)])
    return everything(node)


def everything(node):
    """The conservative reading: every tangent's coefficient reads every argument."""
    tangents = {n.id[1] for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in ("dx", "dy", "dw")}
    return {t: set(EVERY) for t in tangents}, set(EVERY)


def constant_piece(node):
    """A comparison or a piecewise constant call: constant almost everywhere (unless it holds a
    tangent, which a linear template never puts there)."""
    coefficients, _ = everything(node)
    return (coefficients, set(EVERY)) if coefficients else ({}, set())


def merged(parts):
    """The sum of terms: each tangent's coefficient reads what it reads in any term."""
    coefficients, primals = {}, set()
    for part_coefficients, part_primals in parts:
        for letter, reads in part_coefficients.items():
            coefficients.setdefault(letter, set()).update(reads)
        primals |= part_primals
    return coefficients, primals


def read_binary(node):
    if isinstance(node.op, LINEAR_OPERATORS):
        return merged([read(node.left), read(node.right)])
    if not isinstance(node.op, PRODUCTS):
        return everything(node)
    (left, left_primals), (right, right_primals) = read(node.left), read(node.right)
    if (left and right) or (right and isinstance(node.op, DIVISIONS)) or (left and isinstance(node.op, ast.Pow)):
        return everything(node)
    tangents, other = (left, right_primals) if left else (right, left_primals)
    return {t: reads | other for t, reads in tangents.items()}, left_primals | right_primals


def read_call(node):
    function = resolved(node.func)
    if function in PREDICATES or (rules.has_rule(function) and rules.FUNCTIONS[function] is None):
        return constant_piece(node)
    row = rules.ROWS.get(function) if rules.has_rule(function) else None
    skipped = row.piecewise if row is not None else ()
    parts = [read(a) for i, a in enumerate(node.args) if i not in skipped] + \
        [read(k.value) for k in node.keywords]
    if isinstance(node.func, ast.Attribute) and function is None:
        parts.append(read(node.func.value))            # a method: dx.sum(), x.dot(dy)
    coefficients, primals = merged(parts)
    return {t: reads | primals for t, reads in coefficients.items()}, primals


def resolved(func):
    """np.floor, math.copysign, np.linalg.solve from their names in a template (None otherwise)."""
    if isinstance(func, ast.Name):
        return None
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name) or func.id not in MODULES:
        return None
    found = MODULES[func.id]
    for part in reversed(parts):
        found = getattr(found, part, None)
    return found


# ---- the pass ------------------------------------------------------------------------------------
class HessianSparsityPass(SparsityPass):
    """The sparsity pass with one more parameter, the pairs' words, which every nonlinear
    operation updates (through fwdad.sparse.runtime) and every helper call passes on."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pairs_words = self.names.fresh("hessian_words")
        self.pending = []               # the pair updates of the statement being transformed
        self.operation = None           # the function or method the current value calls

    def parameters(self, params, incoming):
        tangents, prologue = super().parameters(params, incoming)
        return tangents + [self.pairs_words], prologue

    def block(self, statements):
        """Each statement's pair updates run before it: they read its operands' sets."""
        out = []
        for statement in statements:
            outer, self.pending = self.pending, []
            produced = super().block([statement])
            for update in self.pending:
                update.lineno = statement.lineno
            out.extend(self.pending + produced)
            self.pending = outer
        return out

    def tangent_of(self, value, result):
        self.operation = self.operation_of(value)
        return super().tangent_of(value, result)

    def operation_of(self, value):
        if not isinstance(value, ast.Call):
            return None
        function = self.resolve(value.func)
        if isinstance(value.func, ast.Attribute) and not rules.has_rule(function):
            return getattr(np, value.func.attr, None)      # x.max() has np.max's curvature
        return function

    def template(self, template, operands, result):
        found = super().template(template, operands, result)
        if template is not None:
            self.add_pairs(template, operands, self.elementwise)
        return found

    def in_place(self, target, op, value):
        """`z op= y` has the curvature of `z = z op y`."""
        self.operation = None
        if rules.OPERATORS.get(op) is not None:
            self.add_pairs(rules.OPERATORS[op], [name(target), value], True)
        return super().in_place(target, op, value)

    def add_pairs(self, template, operands, elementwise):
        row = rules.ROWS.get(self.operation) if rules.has_rule(self.operation) else None
        if row is not None and row.curvature == rules.PIECEWISE_LINEAR:
            return
        piecewise = row.piecewise if row is not None else ()
        for a, b in sorted(curvature_pairs(template, piecewise)):
            i, j = LETTERS.index(a), LETTERS.index(b)
            if max(i, j) >= len(operands):
                continue
            first, second = self.whole_set(operands[i]), self.whole_set(operands[j])
            if first is None or second is None:
                continue
            helper = "pairs_elementwise" if elementwise and self.same_rank(operands[i], operands[j]) else "pairs"
            update = ast.Expr(ast.Call(ast.Attribute(name(self.modules[RUNTIME]), helper, ast.Load()),
                                       [name(self.pairs_words), first, second], []))
            if ast.dump(update) not in {ast.dump(p) for p in self.pending}:
                self.pending.append(update)

    def whole_set(self, atom):
        """The whole set array of an operand (a scalar's K words, an array's shape + (K,))."""
        if isinstance(atom, ast.Name) and atom.id in self.varied and self.shape_of(atom.id) in ("scalar", "array"):
            return name(self.d(atom.id))
        return None

    def same_rank(self, first, second):
        kinds = [self.kinds[a.id] for a in (first, second)]
        return kinds[0].shape == kinds[1].shape and getattr(kinds[0], "ndim", 0) == getattr(kinds[1], "ndim", 0)

    def user_call(self, statement, target, call):
        """A helper gets the pairs' words after its tangents; a defjvp rule (whose result the
        sparsity pass makes depend on all its arguments) counts as nonlinear in all of them."""
        produced = super().user_call(statement, target, call)
        if getattr(self.calls.callee(call), "rule_unit", None) is not None:
            sets = [s for s in (self.whole_set(a) for a in call.args) if s is not None]
            for i, first in enumerate(sets):
                for second in sets[i:]:
                    self.pending.append(ast.Expr(ast.Call(
                        ast.Attribute(name(self.modules[RUNTIME]), "pairs", ast.Load()),
                        [name(self.pairs_words), first, second], [])))
            return produced
        for p in produced:
            if self.is_tangent_call(p, call):
                p.value.args.append(name(self.pairs_words))
        return produced

    @staticmethod
    def is_tangent_call(statement, call):
        """Whether `statement` calls the helper's tangent code: with the call's own arguments first."""
        value = getattr(statement, "value", None)
        return isinstance(value, ast.Call) and value is not call and len(value.args) > len(call.args) \
            and all(a is b for a, b in zip(value.args, call.args))


class LocalHessianSparsityPass(HessianSparsityPass, LocalSparsityPass):
    """The Hessian's pattern at the given point: branches, indices and trip counts as they fall there."""

    local = True


def show(source, kinds, active=(0,), return_kind=None, local=False):
    """Run the Hessian's sparsity pass on a normalized source (for docs and tests)."""
    from .tangent import prepare
    cls = LocalHessianSparsityPass if local else HessianSparsityPass
    tangent_pass = prepare(cls, source, kinds, active, return_kind)
    tangent_pass.modules = dict(tangent_pass.modules, **{RUNTIME: RUNTIME})
    return ast.unparse(tangent_pass.function(ast.parse(source.strip("\n")).body[0].name + "_jvp_hessian_sparsity"))
