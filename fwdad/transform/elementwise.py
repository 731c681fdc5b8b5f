"""Elementwise fusion: a straight-line run of elementwise array statements becomes one loop.

Normalization splits `u[1:-1] + r * (u[2:] - 2.0 * u[1:-1])` into one operation per statement,
and the tangent pass pairs each with its tangent statement: as array code, every statement
allocates a temporary (Numba fuses only expressions whose intermediates are its own). This pass
runs on the typed tangent function (scalar mode) and turns each run of such statements into one
explicit loop over the common shape: the intermediates become scalars (registers), an array
used after the run is written into one buffer, and `np.sum` of a value made in the run is
accumulated in the same loop. The loop runs only when every array the run reads has the same
shape (checked at run time); otherwise (broadcasting) the original statements run. Targets
stay as they were (`u[1:-1] = t8` copies the buffer after the loop), so a right side that
reads an overlapping part of `u` keeps NumPy's copy-first semantics. A buffer whose only readers
are such copies right after the run, in a loop that does not rebind what the run's shape comes
from (`u` of `t1 = u[1:-1]`), is allocated once ahead of the outermost such loop: a time loop of
slice updates allocates nothing per step (not inside a prange loop, where iterations run at once).
The buffer is made before the loop and never rebound inside it, so LLVM keeps its data pointer
in a register (a buffer reallocated inside the loop when its shape changes measured 2.3x slower).

>>> import ast, numba
>>> a = numba.types.float64[:]
>>> types = {"x": a, "y": a, "t1": a, "t2": a, "s": numba.types.float64, "r": numba.types.float64}
>>> tree = ast.parse('''
... def f(x, y, r):
...     t1 = x * y
...     t2 = r * t1 + x
...     s = np.sum(t2)
...     return t2, s
... ''').body[0]
>>> print(ast.unparse(fuse_elementwise(tree, types.get, Names({"x", "y", "r", "t1", "t2", "s"}),
...                                    lambda node: np.sum if ast.unparse(node) == "np.sum" else None)))
def f(x, y, r):
    if y.shape == x.shape:
        t2 = np.empty(x.shape, np.float64)
        s_sum = 0.0
        for i in range(x.shape[0]):
            t1_i = x[i] * y[i]
            t2_i = r * t1_i + x[i]
            t2[i] = t2_i
            s_sum += t2_i
        s = s_sum
    else:
        t1 = x * y
        t2 = r * t1 + x
        s = np.sum(t2)
    return (t2, s)
"""
import ast
import copy

import numba
import numpy as np
from numba.core import types

from .naming import Names

OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)
COMPARISONS = (ast.Gt, ast.Lt, ast.GtE, ast.LtE, ast.Eq, ast.NotEq)
UFUNCS = {np.exp, np.log, np.sin, np.cos, np.tan, np.tanh, np.sinh, np.cosh, np.sqrt, np.abs,
          np.negative, np.square, np.expm1, np.log1p, np.arctan, np.maximum, np.minimum}
SCALAR_CASTS = {np.float32, np.float64}
OPERATIONS = (ast.BinOp, ast.UnaryOp, ast.Call, ast.Compare)     # `v = x` is an alias, never a copy
SUMS = {np.sum}


def name(id, store=False):
    return ast.Name(id, ast.Store() if store else ast.Load())


def is_float_array(numba_type, ndim=None):
    return isinstance(numba_type, types.Array) and isinstance(numba_type.dtype, types.Float) and \
        numba_type.ndim >= 1 and (ndim is None or numba_type.ndim == ndim)


def is_number(numba_type):
    return isinstance(numba_type, (types.Float, types.Integer)) and not isinstance(numba_type, types.Boolean)


class Run:
    """Consecutive statements fused into one loop: views kept ahead of it, operations and sums."""

    def __init__(self, ndim):
        self.ndim = ndim
        self.views, self.operations, self.statements = [], [], []
        self.defined = {}             # name -> its dtype, for names the operations assign
        self.sums = set()             # names assigned a sum: known only after the loop
        self.read_before = set()      # names read in the run before the run assigns them
        self.arrays = []              # arrays the loop reads, in order of first reading

    def count(self):
        return len(self.operations)


class Loop:
    """A for or while loop around a fused run: the names it rebinds, and the statements that go
    ahead of it (buffers whose shape the loop does not change)."""

    def __init__(self, statement, resolve):
        self.statement = statement
        self.rebound = {n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and
                        isinstance(n.ctx, (ast.Store, ast.Del))}
        self.parallel = isinstance(statement, ast.For) and isinstance(statement.iter, ast.Call) and \
            resolve(statement.iter.func) is numba.prange
        self.ahead = []


class ElementwiseFusion:
    def __init__(self, function, type_of, names, resolve, np_alias="np"):
        self.type_of, self.names, self.resolve, self.np_alias = type_of, names, resolve, np_alias
        self.uses = {}
        self.loops = []               # the loops around the block being fused, outermost first
        for node in ast.walk(function):
            if isinstance(node, ast.Name):
                self.uses[node.id] = self.uses.get(node.id, 0) + 1

    # ---- which statements join a run ---------------------------------------------------------
    def target_of(self, statement):
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and \
                isinstance(statement.targets[0], ast.Name):
            return statement.targets[0].id
        return None

    def view_of(self, statement, run):
        """`v = a[1:-1, :]`: a view (slices only) of an array the run does not assign."""
        target = self.target_of(statement)
        value = statement.value if target is not None else None
        if not isinstance(value, ast.Subscript) or not isinstance(value.value, ast.Name):
            return False
        parts = value.slice.elts if isinstance(value.slice, ast.Tuple) else [value.slice]
        slices_only = all(isinstance(p, ast.Slice) and all(
            bound is None or self.is_index(bound) for bound in (p.lower, p.upper, p.step)) for p in parts)
        source = value.value.id
        return slices_only and is_float_array(self.type_of(target), run.ndim) and \
            source not in run.defined and target not in run.defined and \
            target not in self.names_read(run.statements) and target != source

    def is_index(self, node):
        if isinstance(node, ast.Constant):
            return isinstance(node.value, int)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return self.is_index(node.operand)
        return isinstance(node, ast.Name) and isinstance(self.type_of(node.id), types.Integer)

    def names_read(self, statements):
        return {n.id for s in statements for n in ast.walk(s) if isinstance(n, ast.Name) and
                isinstance(n.ctx, ast.Load)}

    def elementwise(self, node, run):
        """Whether `node` computes elementwise on arrays of the run's ndim and numbers."""
        if isinstance(node, ast.Name):
            numba_type = self.type_of(node.id)
            if node.id in run.sums:
                return False
            return node.id in run.defined or is_number(numba_type) or \
                is_float_array(numba_type) and numba_type.ndim <= run.ndim
        if isinstance(node, ast.Constant):
            return type(node.value) in (int, float)
        if isinstance(node, ast.BinOp):
            return isinstance(node.op, OPERATORS) and self.elementwise(node.left, run) and \
                self.elementwise(node.right, run)
        if isinstance(node, ast.UnaryOp):
            return isinstance(node.op, (ast.USub, ast.UAdd)) and self.elementwise(node.operand, run)
        if isinstance(node, ast.Compare):
            return len(node.ops) == 1 and isinstance(node.ops[0], COMPARISONS) and \
                self.elementwise(node.left, run) and self.elementwise(node.comparators[0], run)
        if isinstance(node, ast.Call) and not node.keywords:
            function = self.resolve(node.func)
            if function in SCALAR_CASTS:
                return len(node.args) == 1 and isinstance(node.args[0], ast.Constant)
            if function is np.where:
                return len(node.args) == 3 and all(self.elementwise(a, run) for a in node.args)
            return function in UFUNCS and len(node.args) == function.nin and \
                all(self.elementwise(a, run) for a in node.args)
        return False

    def scalar_of(self, statement, run):
        """`t3 = np.float32(0.0)`, `c = a * 2.0`: a number computed from numbers, moved ahead of the loop."""
        target = self.target_of(statement)
        return target is not None and is_number(self.type_of(target)) and \
            target not in run.defined and target not in run.sums and \
            target not in self.names_read(run.statements) and self.elementwise(statement.value, run) and \
            not any(isinstance(n, ast.Name) and (n.id in run.defined or not is_number(self.type_of(n.id)))
                    for n in ast.walk(statement.value) if not self.is_function_name(n, statement.value))

    def is_function_name(self, node, expression):
        """Whether `node` is (part of) the function of a call in `expression` (np in np.float32)."""
        return any(isinstance(c, ast.Call) and node in ast.walk(c.func) for c in ast.walk(expression))

    def operation_of(self, statement, run):
        """`t = <elementwise expression>` with an array result of the run's ndim."""
        target = self.target_of(statement)
        return target is not None and isinstance(statement.value, OPERATIONS) and \
            target not in run.defined and target not in run.sums and \
            is_float_array(self.type_of(target), run.ndim) and self.elementwise(statement.value, run) and \
            self.reads_an_array(statement.value, run)

    def reads_an_array(self, node, run):
        return any(isinstance(n, ast.Name) and (n.id in run.defined or is_float_array(self.type_of(n.id)))
                   for n in ast.walk(node))

    def sum_of(self, statement, run):
        """`s = np.sum(t)` of an array the run assigns: accumulated in the loop."""
        target = self.target_of(statement)
        value = statement.value if target is not None else None
        return isinstance(value, ast.Call) and not value.keywords and \
            self.resolve(value.func) in SUMS and len(value.args) == 1 and \
            isinstance(value.args[0], ast.Name) and value.args[0].id in run.defined and \
            isinstance(self.type_of(target), types.Float) and target not in run.sums and target not in run.defined and \
            target not in self.names_read(run.statements)

    def ndim_of(self, statement):
        target = self.target_of(statement)
        numba_type = self.type_of(target) if target is not None else None
        return numba_type.ndim if is_float_array(numba_type) else None

    def add(self, statement, run):
        """Add `statement` to `run` if it can join it; False when it cannot."""
        if self.view_of(statement, run) or self.scalar_of(statement, run):
            run.views.append(statement)
        elif self.operation_of(statement, run) or self.sum_of(statement, run):
            for n in ast.walk(statement.value):
                if isinstance(n, ast.Name) and n.id not in run.defined:
                    run.read_before.add(n.id)
                    if is_float_array(self.type_of(n.id)) and n.id not in run.arrays:
                        run.arrays.append(n.id)
            run.operations.append(statement)
            target = self.target_of(statement)
            if is_float_array(self.type_of(target)):
                run.defined[target] = str(self.type_of(target).dtype)
            else:
                run.sums.add(target)
        else:
            return False
        run.statements.append(statement)
        return True

    # ---- blocks -------------------------------------------------------------------------------
    def block(self, statements):
        out, i = [], 0
        while i < len(statements):
            statement = statements[i]
            loop = Loop(statement, self.resolve) if isinstance(statement, (ast.For, ast.While)) else None
            self.loops += [loop] if loop else []
            for field in ("body", "orelse"):
                if isinstance(getattr(statement, field, None), list):
                    setattr(statement, field, self.block(getattr(statement, field)))
            if loop:
                self.loops.pop()
                out.extend(loop.ahead)
            ndim = self.ndim_of(statement)
            run = Run(ndim) if ndim else None
            j = i
            while run is not None and j < len(statements) and self.add(statements[j], run):
                j += 1
            if run is not None and run.count() >= 2 and self.has_full_array(run):
                fused, moved = self.fused(run, statements[j:])
                out.extend(fused)
                i = j + moved
            else:
                out.append(statement)
                i += 1
        return out

    def has_full_array(self, run):
        return any(self.type_of(a).ndim == run.ndim for a in run.arrays)

    # ---- the loop -----------------------------------------------------------------------------
    def copied_only(self, target, outside_uses, following):
        """Whether every use of `target` after the run is `a[...] = target` right after it, so that
        its buffer can be kept for the next time the run executes (no one holds on to it)."""
        copies = 0
        for statement in following:
            if not self.array_store(statement):
                break
            copies += isinstance(statement.value, ast.Name) and statement.value.id == target
        return copies > 0 and copies == outside_uses

    def array_store(self, statement):
        """`a[...] = value` into an array `a`, which copies the value (into a list or a dict it
        would keep a reference to the buffer)."""
        return isinstance(statement, ast.Assign) and len(statement.targets) == 1 and \
            isinstance(statement.targets[0], ast.Subscript) and isinstance(statement.targets[0].value, ast.Name) and \
            isinstance(self.type_of(statement.targets[0].value.id), types.Array)

    def invariant_shape(self, run, first):
        """The run's shape as an expression and the outermost enclosing loop that does not rebind
        the names it is made of, or (None, None): `u[1:-1].shape` for `t1 = u[1:-1]` in the run."""
        view = next((v.value for v in run.views if self.target_of(v) == first), None)
        shape = ast.Attribute(copy.deepcopy(view) if view is not None else name(first), "shape", ast.Load())
        needed = {n.id for n in ast.walk(shape) if isinstance(n, ast.Name)}
        if any(loop.parallel for loop in self.loops):
            return None, None
        loop = next((loop for loop in self.loops if not needed & loop.rebound), None)
        return (shape, loop) if loop else (None, None)

    def buffer(self, target, run, shape, ahead):
        """`target`'s buffer and the statements allocating it: a new array here, or with an
        invariant shape (`ahead`: its expression and loop) once before that loop."""
        dtype = ast.Attribute(name(self.np_alias), run.defined[target], ast.Load())
        empty = ast.Attribute(name(self.np_alias), "empty", ast.Load())
        if ahead is None:
            buffer = self.names.fresh(f"{target}_new") if target in run.read_before else target
            return buffer, [assign(buffer, ast.Call(empty, [copy.deepcopy(shape), dtype], []))]
        invariant, loop = ahead
        buffer = self.names.fresh(f"{target}_buffer")
        loop.ahead.append(ast.copy_location(assign(buffer, ast.Call(empty, [copy.deepcopy(invariant), dtype], [])),
                                            loop.statement))
        return buffer, []

    def fused(self, run, following=()):
        """The run's views, then `if shapes agree: one loop else: the original statements`."""
        in_run = {}
        for statement in run.statements:
            for n in ast.walk(statement):
                if isinstance(n, ast.Name):
                    in_run[n.id] = in_run.get(n.id, 0) + 1
        outputs = [t for t in run.defined if self.uses[t] > in_run[t] or t in run.read_before]
        first = next(a for a in run.arrays if self.type_of(a).ndim == run.ndim)
        shape = ast.Attribute(name(first), "shape", ast.Load())
        before, after, body = [], [], []
        buffers, sums = {}, {}
        invariant = self.invariant_shape(run, first)
        kept = {}
        for target in outputs:
            ahead = invariant if invariant[0] is not None and target not in run.read_before and \
                self.copied_only(target, self.uses[target] - in_run[target], following) else None
            buffer, allocation = self.buffer(target, run, shape, ahead)
            buffers[target] = buffer
            before.extend(allocation)
            kept.update({target: buffer} if ahead else {})
        stores = self.stores_of(kept, following)
        for target, buffer in buffers.items():
            copied = sum(ast.unparse(store.value) == target for store in stores)
            if buffer != target and copied < self.uses[target] - in_run[target]:
                after.append(assign(target, name(buffer)))
        indices = [self.names.fresh("i") for _ in range(run.ndim)]
        locals_ = {}
        for statement in run.operations:
            target = self.target_of(statement)
            if target in run.defined:
                value = self.element(statement.value, locals_, indices)
                local = self.names.element(target)
                body.append(assign(local, self.cast(value, run.defined[target])))
                locals_[target] = local
                if target in buffers:
                    body.append(assign(self.item(buffers[target], indices, store=True), name(local)))
            else:
                accumulator = self.names.fresh(f"{target}_sum")
                dtype = str(self.type_of(target))
                before.append(assign(accumulator, self.cast(ast.Constant(0.0), dtype)))
                summed = self.element(statement.value.args[0], locals_, indices)
                body.append(ast.AugAssign(name(accumulator, True), ast.Add(), summed))
                after.append(assign(target, name(accumulator)))
                sums[target] = accumulator
        loop = body
        for depth in reversed(range(run.ndim)):
            bound = ast.Subscript(copy.deepcopy(shape), ast.Constant(depth), ast.Load())
            loop = [ast.For(name(indices[depth], True), ast.Call(name("range"), [bound], []), loop, [])]
        same_shape = [ast.Compare(ast.Attribute(name(a), "shape", ast.Load()), [ast.Eq()],
                                  [self.trailing(shape, run.ndim, self.type_of(a).ndim)])
                      for a in run.arrays if a != first] + \
            [ast.Compare(ast.Attribute(name(b), "shape", ast.Load()), [ast.Eq()], [copy.deepcopy(shape)])
             for b in kept.values()]
        test = ast.BoolOp(ast.And(), same_shape) if len(same_shape) > 1 else \
            same_shape[0] if same_shape else ast.Constant(True)
        fused = before + loop + after + self.copies(stores, kept, run, shape)
        original = [copy.deepcopy(s) for s in run.operations + stores]
        result = list(run.views) + ([ast.If(test, fused, original)] if same_shape else fused)
        for statement in result:
            ast.copy_location(statement, run.statements[0])
        return [ast.fix_missing_locations(s) for s in result], len(stores)

    def stores_of(self, kept, following):
        """The statements right after the run that copy a kept buffer (`u[1:-1] = t8`): they move
        into the fused branch, so that the value copied there is the buffer itself."""
        stores = []
        for statement in following:
            if not (self.array_store(statement) and isinstance(statement.value, ast.Name) and
                    statement.value.id in kept):
                break
            stores.append(statement)
        return stores

    def copies(self, stores, kept, run, shape):
        """The moved stores, copying the buffers: a loop into the run's view when the store's
        target is one (`t1 = u[1:-1]`, then `u[1:-1] = t8`), else the store of the buffer.
        One loop per store, in their order, as the stores ran."""
        views = {ast.dump(v.value): self.target_of(v) for v in run.views}
        statements = []
        for store in stores:
            buffer = kept[store.value.id]
            target = copy.deepcopy(store.targets[0])
            target.ctx = ast.Load()
            view = views.get(ast.dump(target))
            rebound = {n.id for n in ast.walk(target) if isinstance(n, ast.Name)} & (set(run.defined) | run.sums)
            if view is None or view in run.defined or rebound or view not in run.arrays or \
                    self.type_of(view).ndim != run.ndim:
                statements.append(assign(copy.deepcopy(store.targets[0]), name(buffer)))
                continue
            indices = [self.names.fresh("i") for _ in range(run.ndim)]
            loop = [assign(self.item(view, indices, store=True), self.item(buffer, indices))]
            for depth in reversed(range(run.ndim)):
                bound = ast.Subscript(copy.deepcopy(shape), ast.Constant(depth), ast.Load())
                loop = [ast.For(name(indices[depth], True), ast.Call(name("range"), [bound], []), loop, [])]
            statements.extend(loop)
        return statements

    def element(self, node, locals_, indices):
        """The scalar expression computing one element of `node`."""
        if isinstance(node, ast.Name):
            if node.id in locals_:
                return name(locals_[node.id])
            numba_type = self.type_of(node.id)
            if is_float_array(numba_type):
                return self.item(node.id, indices[len(indices) - numba_type.ndim:])
            return name(node.id)
        if isinstance(node, ast.Call) and self.resolve(node.func) is np.where:
            test, yes, no = (self.element(a, locals_, indices) for a in node.args)
            return ast.IfExp(test, yes, no)
        if isinstance(node, ast.Call) and self.resolve(node.func) in SCALAR_CASTS:
            return copy.deepcopy(node)
        node = copy.copy(node)
        for field, value in ast.iter_fields(node):
            if isinstance(value, ast.AST) and not isinstance(value, (ast.operator, ast.unaryop, ast.cmpop)) \
                    and field != "func":
                setattr(node, field, self.element(value, locals_, indices))
            elif isinstance(value, list) and field in ("args", "comparators"):
                setattr(node, field, [self.element(v, locals_, indices) for v in value])
        return node

    def trailing(self, shape, ndim, k):
        """`shape`, or its last k entries for an array of k < ndim dimensions (broadcast over the rest)."""
        if k == ndim:
            return copy.deepcopy(shape)
        return ast.Subscript(copy.deepcopy(shape), ast.Slice(ast.Constant(ndim - k), None, None), ast.Load())

    def item(self, array, indices, store=False):
        index = name(indices[0]) if len(indices) == 1 else ast.Tuple([name(i) for i in indices], ast.Load())
        return ast.Subscript(name(array), index, ast.Store() if store else ast.Load())

    def cast(self, value, dtype):
        """Round to the dtype the array statement had (float32 stays float32)."""
        if dtype == "float64":
            return value
        return ast.Call(ast.Attribute(name(self.np_alias), dtype, ast.Load()), [value], [])


def assign(target, value):
    return ast.Assign([target if not isinstance(target, str) else name(target, True)], value)


def fuse_tangent(function, numba_types, names, resolve, np_alias):
    """fuse_elementwise for scalar-mode tangent code: a tangent d_x has the type of its primal x."""
    primal_of = {tangent: primal for primal, tangent in names.tangents.items()}

    def type_of(id):
        return numba_types.get(primal_of.get(id, id))

    def resolve_function(node):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == np_alias:
            return getattr(np, node.attr, None)
        return resolve(node)
    return fuse_elementwise(function, type_of, names, resolve_function, np_alias)


def fuse_elementwise(function, type_of, names, resolve, np_alias="np"):
    """`function` with each run of elementwise array statements fused into one loop.

    type_of(name): the Numba type of a variable (None if unknown: never fused); names: the
    function's Names (fresh names for loop indices and element values); resolve(node): the
    object a function reference names (np.exp), or anything else when unknown.
    """
    fusion = ElementwiseFusion(function, type_of, names, resolve, np_alias)
    function.body = fusion.block(function.body)
    return ast.fix_missing_locations(function)
