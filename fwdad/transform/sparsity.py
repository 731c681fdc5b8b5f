"""The sparsity pass: vector mode whose tangents are dependency sets instead of floats.

Each value carries, per element, the set of inputs it may depend on, as uint64 words (bit j of
word w: input 64 w + j) on the trailing axis where vector mode keeps its directions. Run once
with input i's own bit set, the output's sets are the rows of the Jacobian's sparsity pattern.

A set is the union of the sets of the arguments whose partial is not identically zero: the
rule table's templates say which (`dx * y + x * dy` unites x and y, `None` gives the empty set:
floor, sign, comparisons). Operations that mix elements (sums, products, np.linalg) unite every
element of their arguments (a dense block); operations that move elements (reshape, transpose,
slicing, concatenate) are applied to the sets themselves, so stencils stay exact.

The pattern must never miss a nonzero at any point, so by default a branch whose condition
depends on the inputs unites both branches: the branch not taken runs first as a *shadow* (its
primal names saved and restored, its writes into arrays kept out of the primal), then the taken
branch, and each set is the union of the two. Writes into array elements inside such a branch
unite with the element's earlier set (the write may not happen at another point), and an index
computed from the inputs reads or writes every element. With `local=True`
(LocalSparsityPass) control flow is that of the given point: the pattern holds there.

>>> print(show('''
... def f(x, y):
...     z = x * y
...     t1 = math.floor(z)
...     return t1
... ''', {"x": "float64", "y": "float64", "z": "float64", "t1": "float64"}, active=(0, 1)))
def f_jvp_sparsity(x, y, d_x, d_y):
    K = d_x.shape[-1]
    d_x = d_x.copy()
    d_y = d_y.copy()
    d_t1 = np.zeros(K, np.uint64)
    z = x * y
    t1 = math.floor(z)
    for k in range(K):
        d_z = d_x[k] | d_y[k]
    d_t1[:] = np.uint64(0)
    return (t1, d_t1)

A branch on the inputs: the branch not taken runs first as a shadow, then the taken one, and
each set ends as the union of both (here z depends on x and on y whatever the sign of x):

>>> print(show('''
... def f(x, y):
...     if x > 0.0:
...         z = x * 2.0
...     else:
...         z = y
...     return z
... ''', {"x": "float64", "y": "float64", "z": "float64"}, active=(0, 1)))
def f_jvp_sparsity(x, y, d_x, d_y):
    K = d_x.shape[-1]
    d_x = d_x.copy()
    d_y = d_y.copy()
    d_z = np.zeros(K, np.uint64)
    if x > 0.0:
        d_z_before = d_z.copy()
        z = y
        for k in range(K):
            d_z[k] = d_y[k]
        d_z_other = d_z.copy()
        d_z[:] = d_z_before
        z = x * 2.0
        for k in range(K):
            d_z[k] = d_x[k]
            d_z[k] |= d_z_other[k]
    else:
        d_z_before_1 = d_z.copy()
        z = x * 2.0
        for k in range(K):
            d_z[k] = d_x[k]
        d_z_other_1 = d_z.copy()
        d_z[:] = d_z_before_1
        z = y
        for k in range(K):
            d_z[k] = d_y[k]
            d_z[k] |= d_z_other_1[k]
    return (z, d_z)
"""
import ast
import copy
import dataclasses
import warnings

import numpy as np

from ..errors import SparsityError, SparsityWarning, located, user_stacklevel
from ..frontend.resolve import MISSING
from . import rules
from .tangent import NOTHING, TangentPass, assign, name
from .vector import NotVectorizable, VectorTangentPass

WORD = "uint64"
RUNTIME = "fwdad_sparsity"          # the alias of fwdad.sparse.runtime in generated code

# functions whose result holds its argument's elements moved, not mixed: the same call on the sets
MOVES = {np.copy, np.transpose, np.reshape, np.ravel, np.squeeze, np.ascontiguousarray, np.asarray,
         np.atleast_1d, np.atleast_2d, np.expand_dims, np.swapaxes, np.roll, np.diag, np.array,
         np.concatenate, np.stack, np.vstack, np.hstack}
MOVE_METHODS = {"copy", "T", "reshape", "ravel", "flatten", "transpose", "squeeze"}
SHAPE_ATTRIBUTES = {"shape", "size", "ndim", "dtype"}
SHADOW_ITERATIONS = 10_000_000      # a while loop in a branch not taken that runs longer is stopped
SAME_SET = {np.negative, "astype"}  # elementwise and linear: each element keeps its own set


def assigned(statements):
    """Names a block may bind (assignments, loop variables, in-place updates), in order."""
    found = []
    for statement in statements:
        for node in ast.walk(statement):
            targets = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.For)):
                targets = [node.target]
            for target in targets:
                for n in ast.walk(target):
                    if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and n.id not in found:
                        found.append(n.id)
    return found


def names_in(node):
    """The names whose values `node` reads: x.shape, x.size, x.ndim and len(x) read no value of x."""
    if isinstance(node, ast.Attribute) and node.attr in SHAPE_ATTRIBUTES:
        return set()
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len":
        return set()
    if isinstance(node, ast.Name):
        return {node.id}
    return set().union(*(names_in(child) for child in ast.iter_child_nodes(node)))


def influenced_names(tree, varied):
    """Every name whose value may depend on the active inputs: the varied floats, and ints or bools
    computed from them or assigned under a condition on them (`j = int(x[0])`, `if x[0] > 0: j = 1`)."""
    influenced = set(varied)
    changed = True
    while changed:
        before = len(influenced)
        visit_influence(tree.body, influenced, False)
        changed = len(influenced) != before
    return influenced


def visit_influence(statements, influenced, controlled):
    for statement in statements:
        if isinstance(statement, (ast.If, ast.While)):
            inner = controlled or bool(names_in(statement.test) & influenced)
            visit_influence(statement.body, influenced, inner)
            visit_influence(statement.orelse, influenced, inner)
        elif isinstance(statement, ast.For):       # its range, not the branch around it, sets i
            if names_in(statement.iter) & influenced:
                influenced.update(names_in(statement.target))
            inner = controlled or bool(names_in(statement.iter) & influenced)
            visit_influence(statement.body, influenced, inner)
        elif isinstance(statement, (ast.Assign, ast.AugAssign)):
            value = names_in(statement.value)
            if isinstance(statement, ast.AugAssign):
                value |= names_in(statement.target)
            if controlled or value & influenced:
                for target in getattr(statement, "targets", [getattr(statement, "target", None)]):
                    root = target
                    while isinstance(root, (ast.Subscript, ast.Attribute)):
                        root = root.value
                    influenced.update(names_in(root) if isinstance(root, (ast.Name, ast.Tuple)) else ())


def jumps_out(statements, in_loop=False):
    """The return statements in a block, and its break and continue statements that leave a loop
    around the block (those of a loop inside it stay inside)."""
    for statement in statements:
        if isinstance(statement, ast.Return) or (isinstance(statement, (ast.Break, ast.Continue))
                                                  and not in_loop):
            yield statement
        elif isinstance(statement, (ast.For, ast.While)):
            yield from jumps_out(statement.body, True)
        elif isinstance(statement, ast.If):
            yield from jumps_out(statement.body + statement.orelse, in_loop)


class SparsityPass(VectorTangentPass):
    """Builds the dependency-set function of one specialization (the pattern at every point)."""

    local = False

    def __init__(self, *args, **kwargs):
        try:
            super().__init__(*args, **kwargs)
        except NotVectorizable as reason:
            raise self.unsupported(reason) from None
        floats = {a.arg for a in self.tree.args.args if self.kinds.get(a.arg) is not None}
        self.influenced = influenced_names(self.tree, self.varied | floats)   # inactive floats too
        self.shadow = 0            # > 0 while emitting a branch not taken (no primal writes)
        self.region = 0            # > 0 inside a branch on the inputs (element writes unite)
        self.defined = set(a.arg for a in self.tree.args.args)

    def unsupported(self, reason):
        return located(SparsityError, self.filename, getattr(self, "line", self.tree.lineno),
                       f"fwdad cannot find the sparsity of this function: {reason} (sets have no "
                       "form for it)", "compute the Jacobian densely with f.jacobian(...), or "
                       "rewrite the statement with arrays and loops")

    def function(self, function_name):
        try:
            return super().function(function_name)
        except NotVectorizable as reason:
            raise self.unsupported(reason) from None

    # ---- words instead of floats ---------------------------------------------------------------
    def dtype_node(self, id):
        return self.np(WORD)

    def cast(self, dtype):
        return None

    def scalar_zero(self, dtype):
        return ast.Call(self.np(WORD), [ast.Constant(0)], [])

    def zero(self, kind, primal):
        if kind is not None and kind.shape == "array":
            shape = ast.Attribute(copy.deepcopy(primal), "shape", ast.Load())
            return ast.Call(self.np("zeros"), [shape, self.np(WORD)], [])
        return super().zero(kind, primal)

    def zero_whole(self, kind, primal):
        if kind is not None and kind.shape == "tuple":
            return ast.Tuple([self.zero_whole(item, ast.Subscript(copy.deepcopy(primal), ast.Constant(i), ast.Load()))
                              for i, item in enumerate(kind.items)], ast.Load())
        if kind is not None and kind.shape in ("scalar", "array"):
            kind = dataclasses.replace(kind, dtype=WORD)
        return super().zero_whole(kind, primal)

    # ---- tuples: the tuple of their items' sets (scalar items copied: buffers change in place) ----
    def ref(self, atom):
        if isinstance(atom, ast.Name) and atom.id in self.varied and self.shape_of(atom.id) == "tuple":
            return name(self.d(atom.id))
        return super().ref(atom)

    def parameters(self, params, incoming):
        """As vector mode's, but a tuple variable gets its sets where it is assigned."""
        tuples = {v for v in self.varied - set(params) if self.shape_of(v) == "tuple"}
        self.varied -= tuples
        try:
            return super().parameters(params, incoming)
        finally:
            self.varied |= tuples

    def statement_Assign(self, statement):
        target, value = statement.targets[0], statement.value
        if isinstance(target, ast.Name) and target.id in self.varied and self.shape_of(target.id) == "tuple" \
                and isinstance(value, (ast.Tuple, ast.Name)):
            kind = self.kinds[target.id]
            if isinstance(value, ast.Tuple):
                sets = self.tuple_of_sets(value.elts, kind.items)
            else:
                sets = self.ref(value) or self.zero_whole(kind, value)
            return [statement, assign(self.d(target.id), sets)]
        return super().statement_Assign(statement)

    def tuple_of_sets(self, elements, kinds):
        sets = []
        for element, kind in zip(elements, kinds):
            tangent = self.ref(element) if isinstance(element, ast.Name) else None
            if tangent is None:
                sets.append(self.zero_whole(kind, element))
            elif self.shape_of(element.id) == "scalar":
                self.scalar_buffers.discard(self.d(element.id))      # read whole, not per direction
                sets.append(ast.Call(ast.Attribute(name(self.d(element.id)), "copy", ast.Load()), [], []))
            else:
                sets.append(name(self.d(element.id)))
        return ast.Tuple(sets, ast.Load())

    def tangent_of(self, value, result):
        if isinstance(value, ast.Tuple):
            raise self.unsupported("a tuple written inside an expression")
        self.elementwise = self.is_elementwise(value) or self.all_scalars(value)
        tangent, reads = super().tangent_of(value, result)
        if self.is_scalar_word(tangent) and not self.is_elementwise(value):
            tangent = self.broadcast(tangent, result)   # np.full(n, a): an array with a's word
        return tangent, reads                      # (elementwise values: broadcast by the tangent pass)

    @staticmethod
    def is_scalar_word(tangent):
        """`d_a[k]`: a scalar's word for one direction (an array's set is `d_x[..., k]`)."""
        return isinstance(tangent, ast.Subscript) and isinstance(tangent.slice, ast.Name)

    def broadcast(self, tangent, result):
        """A word broadcasts when stored into the result's buffer; `| 0` makes it a new value, so
        that it is never taken for a view to copy (`y = np.ones(4) + a`: y's set is a's word)."""
        kind = self.kinds.get(result)
        if kind is None or kind.shape != "array":
            return tangent
        return ast.BinOp(tangent, ast.BitOr(), self.scalar_zero(WORD))

    def runtime(self, function, argument):
        return ast.Call(ast.Attribute(name(self.modules[RUNTIME]), function, ast.Load()), [argument], [])

    # ---- unions ------------------------------------------------------------------------------
    def union(self, terms):
        terms = [t for t in terms if t is not None]
        if not terms:
            return None
        result = terms[0]
        for term in terms[1:]:
            result = ast.BinOp(result, ast.BitOr(), term)
        return result

    def dense(self, atom, tangent):
        """The union of every element's set of an array atom (a scalar's set is its own)."""
        if tangent is None or self.shape_of(getattr(atom, "id", None)) != "array":
            return tangent
        return self.runtime("union_all", tangent)

    def all_scalars(self, value):
        atoms = value.args if isinstance(value, ast.Call) else [value.left, value.right] \
            if isinstance(value, ast.BinOp) else []
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and \
                self.resolve(value.func) is MISSING:
            atoms = atoms + [value.func.value]
        return all(not isinstance(a, (ast.Tuple, ast.List)) and
                   self.shape_of(getattr(a, "id", None)) != "array" for a in atoms)

    def template(self, template, operands, result):
        """The union of the sets of the operands whose tangent the rule reads (all elements of
        each array operand when the operation mixes elements)."""
        if template is None:
            return None, NOTHING
        used = {n.id for n in ast.walk(rules.parsed(template).body) if isinstance(n, ast.Name)}
        terms = [self.ref(o) if self.elementwise else self.dense(o, self.ref(o))
                 for letter, o in zip("xyw", operands) if "d" + letter in used]
        return self.union(terms), NOTHING

    def linear_call(self, call, result):
        function = self.resolve(call.func)
        if function in MOVES:
            return super().linear_call(call, result)
        first = call.args[0]
        atoms = first.elts if isinstance(first, (ast.Tuple, ast.List)) else [first]
        if function in SAME_SET:
            return self.ref(first)
        return self.union([self.dense(a, self.ref(a)) for a in atoms])

    def method(self, method, obj, args, keywords, result, attribute=False):
        if rules.METHODS.get("." + method) is rules.LINEAR and method not in MOVE_METHODS:
            tangent = self.ref(obj)
            if tangent is None:
                return None, NOTHING
            if method in SAME_SET:
                return ast.Call(ast.Attribute(tangent, "copy", ast.Load()), [], []), NOTHING
            return self.dense(obj, tangent), NOTHING
        return super().method(method, obj, args, keywords, result, attribute)

    def in_place(self, target, op, value):
        """`z op= y`: z's sets unite with y's (each op keeps z's own dependence, conservatively)."""
        tangent = self.ref(value)
        if tangent is None:
            return []
        own = self.ref(name(target))
        return [self.loop([ast.AugAssign(ast.Subscript(own.value, own.slice, ast.Store()), ast.BitOr(),
                                         tangent)])]

    # ---- element reads and writes ---------------------------------------------------------------
    def index_influenced(self, index):
        return not self.local and bool(names_in(index) & self.influenced)

    def read_item(self, target, array, index):
        """An index computed from the inputs may select any element at another point; a mask or
        an integer array selects elements that the sets do not follow: both read every element."""
        if self.shape_of(array) == "array" and (self.index_influenced(index) or self.advanced(array, index)):
            return self.set(target, self.dense(name(array), self.ref(name(array))))
        return super().read_item(target, array, index)

    def advanced(self, array, index):
        try:
            self.full_index(array, index)
            return False
        except NotVectorizable:
            return True

    def write_item(self, array, index, value):
        """A write replaces the element's set, except where it may not happen at another point
        (inside a branch on the inputs, or at an index computed from them): there it unites."""
        tangent = self.ref(value) or self.scalar_zero(WORD)
        if self.index_influenced(index) or self.advanced(array, index):
            tangent = self.dense(value, self.ref(value)) or self.scalar_zero(WORD)
            whole = self.ref(name(array))
            return [self.loop([ast.AugAssign(ast.Subscript(whole.value, whole.slice, ast.Store()),
                                             ast.BitOr(), tangent)])]
        parts = self.full_index(array, index)
        store = ast.Subscript(name(self.d(array)), ast.Tuple(parts + [name(self.k)], ast.Load()), ast.Store())
        if self.region:
            return [self.loop([ast.AugAssign(store, ast.BitOr(), tangent)])]
        return [self.loop([assign(store, tangent)])]

    def fill(self, array, value):
        if not self.region:
            return super().fill(array, value)
        tangent = self.ref(name(array))
        return [self.loop([ast.AugAssign(ast.Subscript(tangent.value, tangent.slice, ast.Store()),
                                         ast.BitOr(), self.ref(value) or self.scalar_zero(WORD))])]

    # ---- statements: the shadow of a branch writes no array of the primal -------------------------
    def block(self, statements):
        out = []
        for statement in statements:             # defined: bound by a statement before this one
            out.extend(super().block([statement]))
            self.defined.update(assigned([statement]))
        return out

    def writes_primal_array(self, statement):
        if isinstance(statement, ast.Assign):
            return isinstance(statement.targets[0], ast.Subscript)
        if isinstance(statement, ast.AugAssign):
            return self.shape_of(statement.target.id) == "array" or self.is_array_name(statement.target.id)
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
            func = statement.value.func
            return isinstance(func, ast.Attribute) and func.attr == "fill"
        return False

    def is_array_name(self, id):
        spec = getattr(self.calls, "spec", None)
        numba_type = spec.types.numba_types.get(id) if spec is not None else None
        return getattr(numba_type, "ndim", 0) > 0

    def without_primal_writes(self, statement, produced):
        if self.shadow and self.writes_primal_array(statement):
            return [p for p in produced if p is not statement]
        return produced

    def store_item(self, statement, target, value):
        return self.without_primal_writes(statement, super().store_item(statement, target, value))

    def statement_AugAssign(self, statement):
        return self.without_primal_writes(statement, super().statement_AugAssign(statement))

    def statement_Expr(self, statement):
        return self.without_primal_writes(statement, super().statement_Expr(statement))

    def user_call(self, statement, target, call):
        self.refuse_influenced_integers(call)
        if self.region and self.calls.written_params(call):
            raise located(SparsityError, self.filename, self.line,
                          f"`{ast.unparse(call)}` writes into an argument inside a branch whose "
                          "condition depends on the inputs; fwdad finds the union of both branches "
                          "(the branch not taken runs without its writes, and every write keeps the "
                          "element's earlier dependencies) and cannot do either inside a function",
                          "return the values instead of writing them, or pass local=True for the "
                          "pattern at this point only")
        if getattr(self.calls.callee(call), "rule_unit", None) is not None:
            return self.rule_call(statement, target, call)
        return TangentPass.user_call(self, statement, target, call)      # tuples of sets too

    def rule_call(self, statement, target, call):
        """A defjvp rule computes float tangents, not sets (run on sets it gave garbage: words
        divided and multiplied): its result depends on every element of every argument that
        has a set, conservatively, and the call itself runs as the primal."""
        sets = []
        for argument in call.args:
            if isinstance(argument, ast.Name) and argument.id in self.varied:
                if self.shape_of(argument.id) not in ("scalar", "array"):
                    raise self.unsupported(f"a defjvp rule called with the tuple {argument.id!r}")
                sets.append(self.dense(argument, self.ref(argument)))
        if target is None or target not in self.varied:
            return [statement]
        if self.shape_of(target) not in ("scalar", "array"):
            raise self.unsupported(f"a defjvp rule returning the tuple {target!r}")
        return [statement] + self.set(target, self.union(sets) or self.scalar_zero(WORD))

    def refuse_influenced_integers(self, call):
        """A callee's pattern is found for each of its integer arguments as they fall: one computed
        from the inputs (`g(x, int(x[0]))`) could select other elements at another point."""
        for argument in call.args:
            if not self.local and isinstance(argument, ast.Name) and argument.id in self.influenced \
                    and self.kinds.get(argument.id) is None:
                raise located(SparsityError, self.filename, self.line,
                              f"`{ast.unparse(call)}` passes {argument.id!r}, a value computed from the "
                              "inputs that is not a float (an index, a flag), to a function whose "
                              "pattern fwdad finds for the value it has here",
                              f"compute {argument.id!r} inside the function, or pass local=True for "
                              "the pattern at this point only")

    def statement_While(self, statement):
        if not self.local and names_in(statement.test) & self.influenced:
            self.warn_trip_count(statement, "a while loop whose condition")
        loop = super().statement_While(statement)
        return self.bounded(loop[0], statement.lineno) if self.shadow else loop

    def bounded(self, loop, line):
        """A while loop in the branch not taken runs on values that branch never sees at this
        point, and may not end (`while x < 10: x *= 2` at x < 0): stop it with an error."""
        count = self.names.fresh("shadow_iterations")
        message = (f"fwdad: a while loop at {self.filename}:{line}, in the branch not taken at "
                   f"this point, ran {SHADOW_ITERATIONS} times; fwdad runs that branch to find the "
                   "dependencies of both branches. What to do: give the loop a maximum count, or "
                   "pass local=True for the pattern at this point only")
        stop = ast.If(ast.Compare(name(count), [ast.Gt()], [ast.Constant(SHADOW_ITERATIONS)]),
                      [ast.Raise(ast.Call(name("RuntimeError"), [ast.Constant(message)], []), None)], [])
        loop.body = [ast.AugAssign(name(count, True), ast.Add(), ast.Constant(1)), stop] + loop.body
        return [assign(count, ast.Constant(0)), loop]

    def statement_For(self, statement):
        if not self.local and names_in(statement.iter) & self.influenced:
            self.warn_trip_count(statement, "a for loop whose range")
        return super().statement_For(statement)

    def warn_trip_count(self, statement, what):
        warnings.warn(f"{self.filename}:{statement.lineno}: {what} depends on the inputs: the "
                      "sparsity pattern covers the iterations run at the given point, and a point "
                      "that runs more may have more nonzeros. What to do: give the loop a fixed trip "
                      "count (a maximum, with a branch inside), or check the pattern with "
                      "fwdad.sparse.check_pattern at other points.", SparsityWarning,
                      stacklevel=user_stacklevel())

    def statement_If(self, statement):
        if self.local or not names_in(statement.test) & self.influenced:
            return super().statement_If(statement)
        self.refuse_jumps(statement)
        self.refuse_writes_in(statement.test)
        self.region += 1
        before = set(self.defined)
        body = self.both(statement.body, statement.orelse)
        self.defined = set(before)
        orelse = self.both(statement.orelse, statement.body)
        self.defined = before | set(assigned([statement]))
        self.region -= 1
        return [ast.If(statement.test, body, orelse)]

    def refuse_jumps(self, statement):
        for node in jumps_out(statement.body + statement.orelse):
            keyword = type(node).__name__.lower()
            raise located(SparsityError, self.filename, node.lineno,
                          f"`{keyword}` inside a branch whose condition depends on the inputs: "
                          "fwdad finds the union of both branches and cannot follow a jump out of "
                          "the one not taken", "assign the result to a variable and leave the "
                          "branch normally (one return at the end), or pass local=True for the "
                          "pattern at this point only")

    def both(self, taken, other):
        """The other branch as a shadow, its names restored, then the taken one; each set either
        branch assigns ends as the union of the two (a name one branch leaves keeps its set from
        before on that side)."""
        defined = set(self.defined)
        other_names, taken_names = assigned(other), assigned(taken)
        names = other_names + [v for v in taken_names if v not in other_names]
        varied = [v for v in names if v in self.varied]
        sets = [v for v in varied if self.shape_of(v) == "scalar" or v in defined or
                (v in other_names and v in taken_names)]          # those with a set on both sides
        restored = [v for v in other_names if v in defined]
        saved = {v: self.names.fresh(f"{v}_before") for v in restored}
        kept = {v: self.names.fresh(f"{self.d(v)}_before") for v in sets
                if v in other_names and (v in defined or self.shape_of(v) == "scalar")}
        union = {v: self.names.fresh(f"{self.d(v)}_other") for v in sets}
        out = [assign(saved[v], name(v)) for v in restored]
        out += [assign(kept[v], self.snapshot(v)) for v in kept]
        self.shadow += 1
        out += self.block(copy.deepcopy(other))
        self.shadow -= 1
        self.defined = defined
        out += [assign(union[v], self.snapshot(v)) for v in union]
        out += [assign(v, name(saved[v])) for v in restored]
        out += [self.restore(v, kept[v]) for v in kept]
        out += self.block(taken)
        self.defined = defined | set(names)
        for v in union:
            if self.shape_of(v) == "scalar":
                out.append(self.loop([ast.AugAssign(ast.Subscript(name(self.d(v)), name(self.k), ast.Store()),
                                                    ast.BitOr(), ast.Subscript(name(union[v]), name(self.k),
                                                                               ast.Load()))]))
            else:
                out.append(assign(self.d(v), self.merged(self.kinds[v], name(self.d(v)), name(union[v]))))
        return out or [ast.Pass()]

    def merged(self, kind, taken, other):
        """The union of two sets of a value of `kind` (a new value; tuples item by item)."""
        if kind is None:
            return ast.Constant(None)
        if kind.shape == "scalar":
            return ast.BinOp(taken, ast.BitOr(), other)
        if kind.shape == "array":
            return ast.Call(ast.Attribute(name(self.modules[RUNTIME]), "merge", ast.Load()), [taken, other], [])
        return ast.Tuple([self.merged(item, ast.Subscript(copy.deepcopy(taken), ast.Constant(i), ast.Load()),
                                      ast.Subscript(copy.deepcopy(other), ast.Constant(i), ast.Load()))
                          for i, item in enumerate(kind.items)], ast.Load())

    def snapshot(self, v):
        tangent = name(self.d(v))
        if self.shape_of(v) == "scalar":
            return ast.Call(ast.Attribute(tangent, "copy", ast.Load()), [], [])
        return tangent             # array sets are rebound, never written, by an assignment

    def restore(self, v, saved):
        if self.shape_of(v) == "scalar":
            return assign(ast.Subscript(name(self.d(v)), ast.Slice(), ast.Store()), name(saved))
        return assign(self.d(v), name(saved))


class LocalSparsityPass(SparsityPass):
    """The pattern at the given point: branches, indices and trip counts as they fall there."""

    local = True


def show(source, kinds, active=(0,), return_kind=None, local=False):
    """Run the sparsity pass on a normalized source (for docs and tests)."""
    from .tangent import prepare
    cls = LocalSparsityPass if local else SparsityPass
    tangent_pass = prepare(cls, source, kinds, active, return_kind)
    tangent_pass.modules = dict(tangent_pass.modules, **{RUNTIME: RUNTIME})
    return ast.unparse(tangent_pass.function(ast.parse(source.strip("\n")).body[0].name + "_jvp_sparsity"))
