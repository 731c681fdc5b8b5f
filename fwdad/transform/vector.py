"""Vector mode: the tangent pass with K directions at once, as Tapenade's vector mode.

Every tangent gets a trailing direction axis of length K (a scalar's tangent is a length-K
buffer allocated once at entry, an array's has shape `x.shape + (K,)`), and each tangent
statement becomes a short `for k in range(K)` loop around the scalar-mode statement. The
primal runs once for all K directions.

>>> print(show('''
... def f(x, y):
...     z = x * y
...     t1 = math.sin(z)
...     return t1
... ''', {"x": "float64", "y": "float64", "z": "float64", "t1": "float64"}, active=(0, 1)))
def f_jvp_vector(x, y, d_x, d_y):
    K = d_x.shape[-1]
    d_x = d_x.copy()
    d_y = d_y.copy()
    d_t1 = np.zeros(K, np.float64)
    z = x * y
    t1 = math.sin(z)
    for k in range(K):
        d_z = d_x[k] * y + x * d_y[k]
        d_t1[k] = d_z * math.cos(z)
    return (t1, d_t1)
"""
import ast
import copy

import numpy as np

from . import rules
from .fuse import fuse
from .tangent import TangentPass, assign, name

COPIED_VIEWS = rules.names_with("copied_view")      # computed per direction: copies, not views
CONTIGUOUS_ONLY = {np.diff}                 # Numba's version takes only contiguous arrays


class NotVectorizable(Exception):
    """This function needs K scalar-mode passes instead (the caller falls back)."""


class VectorTangentPass(TangentPass):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.k = self.names.fresh("k")
        self.K = self.names.fresh("K")
        self.scalar_buffers = set()
        self.check_views()

    def function(self, function_name):
        function = super().function(function_name)
        arrays = {name for name, kind in self.kinds.items() if kind.shape == "array"}
        return fuse(function, self.k, set(self.names.tangents.values()), self.scalar_buffers, arrays)

    def check_views(self):
        """Views that vector mode must copy (x.swapaxes, np.transpose(x, axes)) break aliasing if
        arrays are written: a write through the copy would miss the viewed array's tangent."""
        copied = writes = False
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Attribute) and node.attr in COPIED_VIEWS and \
                    isinstance(node.value, ast.Name) and node.value.id in self.varied:
                copied = True
            if isinstance(node, ast.Call) and (self.copies_a_view(node) or
                                               self.calls.is_user(node) and self.calls.returns_views(node)):
                copied = True           # a user function's result may be such a view of its argument
            if isinstance(node, ast.Call) and self.writes_in_place(node):
                writes = True
            if isinstance(node, (ast.Assign, ast.AugAssign)):
                target = node.targets[0] if isinstance(node, ast.Assign) else node.target
                if isinstance(target, ast.Subscript) or (isinstance(node, ast.AugAssign) and
                                                         self.shape_of(target.id) == "array"):
                    writes = True
        if copied and writes:
            raise NotVectorizable("a view is copied and arrays are written")

    def writes_in_place(self, call):
        """x.fill(..), or a user function that may write into an argument (g(np.swapaxes(A, 0, 1)))."""
        if isinstance(call.func, ast.Attribute) and call.func.attr == "fill":
            return True
        return self.calls.is_user(call) and bool(self.calls.written_params(call))

    def copies_a_view(self, call):
        """A view function of a varied array (np.swapaxes(x, 0, 1)) whose tangent is not a view."""
        return self.resolve(call.func) in rules.VIEW_FUNCTIONS and bool(call.args) and \
            isinstance(call.args[0], ast.Name) and call.args[0].id in self.varied and \
            self.whole_view(call) is None

    def shape_of(self, id):
        kind = self.kinds.get(id)
        return kind.shape if kind is not None else None

    def loop(self, body):
        return ast.For(name(self.k, True), ast.Call(name("range"), [name(self.K)], []), body, [])

    def dtype_node(self, id):
        return self.np(self.dtype(id))

    # ---- primitives ------------------------------------------------------------------------------
    def ref(self, atom):
        if not (isinstance(atom, ast.Name) and atom.id in self.varied):
            return None
        shape = self.shape_of(atom.id)
        if shape == "scalar":
            index = name(self.k)
        elif shape == "array":
            index = ast.Tuple([ast.Constant(Ellipsis), name(self.k)], ast.Load())
        else:
            raise NotVectorizable(f"tuple {atom.id}")
        return ast.Subscript(name(self.d(atom.id)), index, ast.Load())

    def whole(self, atom, kind):
        if isinstance(atom, ast.Name) and atom.id in self.varied:
            return name(self.d(atom.id))
        return self.zero_whole(kind, atom)

    def zero_whole(self, kind, primal):
        if kind is None:
            return ast.Constant(None)
        if kind.shape == "scalar":
            return ast.Call(self.np("zeros"), [name(self.K), self.np(kind.dtype)], [])
        if kind.shape == "array":
            shape = ast.BinOp(ast.Attribute(copy.deepcopy(primal), "shape", ast.Load()), ast.Add(),
                              ast.Tuple([name(self.K)], ast.Load()))
            return ast.Call(self.np("zeros"), [shape, self.np(kind.dtype)], [])
        raise NotVectorizable("tuple zero")

    def set(self, target, expression):
        tangent = self.ref(name(target))
        if self.shape_of(target) != "array":
            return [self.loop([assign(ast.Subscript(tangent.value, tangent.slice, ast.Store()), expression)])]
        buffer = self.d(target)             # a new buffer; filled under another name if it reads the old
        reads_old = any(isinstance(n, ast.Name) and n.id == buffer for n in ast.walk(expression))
        if reads_old:                       # `x = x * 2.0`
            buffer = self.names.fresh(f"{buffer}_next")
        shape = ast.BinOp(ast.Attribute(name(target), "shape", ast.Load()), ast.Add(),
                          ast.Tuple([name(self.K)], ast.Load()))
        store = ast.Subscript(name(buffer), tangent.slice, ast.Store())
        body = [assign(buffer, ast.Call(self.np("empty"), [shape, self.dtype_node(target)], [])),
                self.loop([assign(store, expression)])]
        return body + ([assign(self.d(target), name(buffer))] if reads_old else [])

    def set_zero(self, target):
        if self.shape_of(target) == "scalar":
            store = ast.Subscript(name(self.d(target)), ast.Slice(), ast.Store())
            return [assign(store, self.scalar_zero(self.dtype(target)))]
        return [assign(self.d(target), self.zero_whole(self.kinds[target], name(target)))]

    def alias(self, target, source):
        if self.shape_of(target) == "scalar":
            return self.set(target, self.ref(name(source)))
        return [assign(self.d(target), name(self.d(source)))]

    def full_index(self, array, index):
        """The index padded with `:` to the array's rank, so that `k` can be appended."""
        if self.shape_of(array) == "tuple":
            return None
        parts = list(index.elts) if isinstance(index, ast.Tuple) else [index]
        for part in parts:
            if isinstance(part, ast.Constant) and part.value in (Ellipsis, None):
                raise NotVectorizable("ellipsis or newaxis index")
            if isinstance(part, ast.Name) and part.id in self.kinds:
                raise NotVectorizable("float index")
            if isinstance(part, (ast.Name, ast.Subscript, ast.Call, ast.Compare, ast.BinOp)) and \
                    not self.is_integer(part):
                raise NotVectorizable("advanced index")
        rank = self.kinds[array].ndim
        parts += [ast.Slice() for _ in range(rank - len(parts))]
        return [copy.deepcopy(p) for p in parts]

    def is_integer(self, node):
        from numba.core import types
        if isinstance(node, ast.Name):
            numba_type = self.calls.spec.types.numba_types.get(node.id) if hasattr(self.calls, "spec") else None
            return isinstance(numba_type, types.Integer)
        return isinstance(node, (ast.BinOp, ast.Subscript, ast.Call))     # i + 1, idx[i], len(x)

    def read_item(self, target, array, index):
        parts = self.full_index(array, index)
        source = name(self.d(array))
        if parts is None:                                     # an item of a tuple
            item = ast.Subscript(source, copy.deepcopy(index), ast.Load())
            if self.shape_of(target) == "scalar":
                return self.set(target, ast.Subscript(item, name(self.k), ast.Load()))
            return [assign(self.d(target), item)]
        if self.shape_of(target) == "scalar":
            index = ast.Tuple(parts + [name(self.k)], ast.Load())
            return self.set(target, ast.Subscript(source, index, ast.Load()))
        return [assign(self.d(target), ast.Subscript(source, ast.Tuple(parts, ast.Load()), ast.Load()))]

    def write_item(self, array, index, value):
        """`d_x[i, :, k] = d_v[..., k]` per direction, but an array value's tangent is stored whole
        (`d_x[i, :] = d_v`, directions broadcast along the last axis): the store then has the
        primal's index pattern, and Numba's check that the source overlaps the destination (a
        view of the same array, `x[2:] = x[::-1][:2]`) works for it; it misses the overlap for
        some per-direction patterns (int, slice, int) and the tangent came out wrong."""
        parts = self.full_index(array, index)
        if isinstance(value, ast.Name) and value.id in self.varied and self.shape_of(value.id) == "array":
            store = ast.Subscript(name(self.d(array)), ast.Tuple(parts, ast.Load()), ast.Store())
            return [assign(store, name(self.d(value.id)))]
        tangent = self.ref(value) or self.scalar_zero(self.dtype(array))
        store = ast.Subscript(name(self.d(array)), ast.Tuple(parts + [name(self.k)], ast.Load()), ast.Store())
        return [self.loop([assign(store, tangent)])]

    def in_place(self, target, op, value):
        updates = super().in_place(target, op, value)
        return [self.loop(updates)] if updates else []          # `s += 0.5`: no tangent update

    def fill(self, array, value):
        tangent = self.ref(name(array))
        store = ast.Subscript(tangent.value, tangent.slice, ast.Store())
        return [self.loop([assign(store, self.ref(value) or self.scalar_zero(self.dtype(array)))])]

    def parameters(self, params, incoming):
        if not incoming:
            raise NotVectorizable("no incoming tangent")
        prologue = [assign(self.K, ast.Subscript(ast.Attribute(name(self.d(incoming[0])), "shape", ast.Load()),
                                                 ast.Constant(-1), ast.Load()))]
        for p in params:
            if p in incoming and self.shape_of(p) == "scalar":
                copy_call = ast.Call(ast.Attribute(name(self.d(p)), "copy", ast.Load()), [], [])
                prologue.append(assign(self.d(p), copy_call))
            elif p in self.varied and p not in incoming:
                prologue.append(assign(self.d(p), self.zero_whole(self.kinds[p], name(p))))
        for variable in sorted(self.varied - set(params), key=self.order):
            if self.shape_of(variable) == "scalar":
                prologue.append(assign(self.d(variable), self.zero_whole(self.kinds[variable], name(variable))))
                self.scalar_buffers.add(self.d(variable))
            elif self.shape_of(variable) == "tuple":
                raise NotVectorizable("tuple variable")
        return [self.d(p) for p in incoming], prologue

    def order(self, variable):
        """Variables in order of first appearance, for readable and deterministic code."""
        if not hasattr(self, "_first"):
            self._first = {}
            for i, node in enumerate(ast.walk(self.tree)):
                if isinstance(node, ast.Name):
                    self._first.setdefault(node.id, i)
        return self._first.get(variable, 0), variable

    def statement_Assign(self, statement):
        target = statement.targets[0]
        if isinstance(target, ast.Name) and target.id in self.varied:
            view = self.whole_view(statement.value)
            if view is not None:
                return [statement, assign(self.d(target.id), view)] + self.copied_like_primal(statement)
        return super().statement_Assign(statement)

    def whole_view(self, value):
        """Views (x.T, reshape, ravel) of a tangent with its direction axis kept last, or None."""
        if isinstance(value, ast.Attribute) and value.attr == "T":
            obj, method, args = value.value, "T", []
        elif isinstance(value, ast.Call) and self.resolve(value.func) in (np.reshape, np.ravel, np.transpose) \
                and value.args and not value.keywords:        # first: np.transpose is no method of np
            obj, method, args = value.args[0], self.resolve(value.func).__name__, value.args[1:]
        elif isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and \
                value.func.attr in ("reshape", "ravel", "T", "transpose") and not value.keywords:
            obj, method, args = value.func.value, value.func.attr, value.args
        else:
            return None
        if not (isinstance(obj, ast.Name) and obj.id in self.varied and self.shape_of(obj.id) == "array"):
            return None
        tangent = name(self.d(obj.id))
        if method in ("T", "transpose"):
            if args:
                return None
            ndim = self.kinds[obj.id].ndim
            axes = ast.Tuple([ast.Constant(i) for i in reversed(range(ndim))] + [ast.Constant(ndim)], ast.Load())
            return ast.Call(self.np("transpose"), [tangent, axes], [])
        if method == "ravel":
            shape = [ast.UnaryOp(ast.USub(), ast.Constant(1))]
        elif len(args) == 1 and isinstance(args[0], ast.Tuple):
            shape = list(args[0].elts)
        else:
            shape = list(args)
        contiguous = ast.Call(self.np("ascontiguousarray"), [tangent], [])
        new_shape = ast.Tuple([copy.deepcopy(e) for e in shape] + [name(self.K)], ast.Load())
        return ast.Call(ast.Attribute(contiguous, "reshape", ast.Load()), [new_shape], [])

    def linear_call(self, call, result):
        """A direction's tangent `d_x[..., k]` is strided: copy it for functions that need contiguity."""
        tangent = super().linear_call(call, result)
        if self.resolve(call.func) in CONTIGUOUS_ONLY:
            tangent.args[0] = ast.Call(self.np("ascontiguousarray"), [tangent.args[0]], [])
        return tangent

    def tangent_of(self, value, result):
        if isinstance(value, ast.Tuple):
            raise NotVectorizable("tuple value")
        return super().tangent_of(value, result)

    def user_call(self, statement, target, call):
        produced = super().user_call(statement, target, call)
        if target is not None and target in self.varied and self.shape_of(target) == "tuple":
            raise NotVectorizable("tuple result")
        return produced


def show(source, kinds, active=(0,), return_kind=None):
    """Run the vector-mode tangent pass on a normalized source (for docs and tests)."""
    from .tangent import prepare
    return ast.unparse(prepare(VectorTangentPass, source, kinds, active, return_kind).function(
        ast.parse(source.strip("\n")).body[0].name + "_jvp_vector"))
