"""The tangent pass: a normalized function -> a function returning (value, tangent).

Each statement is kept and paired with the statement that updates its tangent, following
Tapenade: the tangent runs after the primal, so a rule may use the result (`z = exp(x)` ->
`d_z = d_x * z`), unless the primal overwrites an operand the rule reads (`x = x * y` ->
`d_x = d_x * y + x * d_y` first); when a rule needs both, the result goes to a temporary.

>>> print(show('''
... def f(x, y):
...     z = x * y
...     z = math.exp(z)
...     x = x * z
...     return x
... ''', {"x": "float64", "y": "float64", "z": "float64"}, active=(0,)))
def f_jvp(x, y, d_x):
    z = x * y
    d_z = d_x * y
    z = math.exp(z)
    d_z = d_z * z
    d_x = d_x * z + x * d_z
    x = x * z
    return (x, d_x)
"""
import ast
import copy
import inspect

import numpy as np
from numba.core import types

from ..errors import DifferentiationError, located
from ..frontend.activity import VIEW_METHODS
from ..frontend.normalize import is_dtype_cast
from ..frontend.resolve import MISSING
from . import rules


class Reads:
    """What a tangent expression reads besides tangents: the result `z`, and these primal names."""

    def __init__(self, result=False, primals=()):
        self.result, self.primals = result, set(primals)


NOTHING = Reads()


def name(id, store=False):
    return ast.Name(id, ast.Store() if store else ast.Load())


def assign(target, value):
    return ast.Assign([target if not isinstance(target, str) else name(target, True)], value)


CONDITIONAL_VIEWS = {np.ravel, np.ascontiguousarray}      # views of contiguous arrays only


def address(variable):
    """`variable.ctypes.data`: where an array's data starts (equal for a view made by np.ravel)."""
    return ast.Attribute(ast.Attribute(name(variable), "ctypes", ast.Load()), "data", ast.Load())


def viewed(node):
    """The node whose memory `node` may share: x for x, x[1:], x.T and x[i].T."""
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return node


def view_source(value, resolve):
    """The array a view call reads (x in np.transpose(x), x.reshape(..)), else None."""
    if not isinstance(value, ast.Call):
        return None
    if isinstance(value.func, ast.Attribute) and resolve(value.func) is MISSING:
        return value.func.value if value.func.attr in VIEW_METHODS else None
    return value.args[0] if value.args and resolve(value.func) in rules.VIEW_FUNCTIONS else None


def written_in_place(tree, is_user_call, returned=True, resolve=None, call_writes=None):
    """Names whose array may be written in place (`x[i] = ..`, `x += ..`, `x.fill(..)`, passed to
    a user function, returned to a caller that may write it unless `returned` is False), closed
    under aliasing (`u = x`, `u = x[1:]`, `u = x.T`, and with `resolve` `u = np.transpose(x)`): a
    tangent that such a name gets from another name's tangent must be a copy, or the write would
    change both (and a tangent the caller passed in). With `call_writes(call)`, a user call writes
    just the argument names it returns (what the callee is known to write) instead of all of them."""
    written, aliases = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Return) and node.value is not None and returned:
            items = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            written.update(item.id for item in items if isinstance(item, ast.Name))
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            written.add(node.target.id)
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            for target in getattr(node, "targets", [getattr(node, "target", None)]):
                if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                    written.add(target.value.id)
            source = view_source(node.value, resolve) if resolve is not None else None
            value = viewed(node.value if source is None else source)
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and \
                    isinstance(value, ast.Name):
                aliases.append((node.targets[0].id, value.id))
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr == "fill" and \
                    isinstance(node.func.value, ast.Name):
                written.add(node.func.value.id)
            elif is_user_call(node):
                written.update(call_writes(node) if call_writes is not None else
                               (a.id for a in node.args if isinstance(a, ast.Name)))
    changed = True
    while changed:
        changed = False
        for target, source in aliases:
            if target in written and source not in written:
                written.add(source)
                changed = True
    return written


class TangentPass:
    """Builds the tangent function of one specialization (scalar mode: one direction)."""

    def __init__(self, normalized, kinds, varied, active_params, resolve, calls, filename, modules,
                 return_kind, names):
        self.tree = normalized.tree
        self.kinds = dict(kinds)            # copies: the pass may add a temporary or two
        self.varied = set(varied)
        self.active_params = active_params
        self.resolve = resolve            # AST func -> object (MISSING when local/unknown)
        self.calls = calls                # Calls: user functions and defjvp rules
        self.filename = filename
        self.modules = modules            # {"np": alias, "math": alias}
        self.return_kind = return_kind
        self.names = names
        self.line = self.tree.lineno
        self.written = written_in_place(self.tree, self.calls.is_user, resolve=resolve)

    # ---- names, zeros and tangent references --------------------------------------------------
    def error(self, what, hint=""):
        return located(DifferentiationError, self.filename, self.line, what, hint)

    def np(self, attribute):
        return ast.Attribute(name(self.modules["np"]), attribute, ast.Load())

    def d(self, id):
        return self.names.tangent(id)

    # ---- primitives (vector mode overrides these) ---------------------------------------------
    def ref(self, atom):
        """The tangent of an atom inside an expression, or None when it is zero."""
        if isinstance(atom, ast.Name) and atom.id in self.varied:
            return name(self.d(atom.id))
        return None

    def whole(self, atom, kind):
        """The whole tangent object of an atom (passed to calls, returned), zero if inactive."""
        return self.ref(atom) or self.zero(kind, atom)

    def set(self, target, expression):
        return [assign(self.d(target), expression)]

    def set_zero(self, target):
        return [assign(self.d(target), self.zero(self.kinds[target], name(target)))]

    def alias(self, target, source):
        """`target = source` (a name): arrays share the tangent, scalars copy it."""
        return self.set(target, name(self.d(source)))

    def read_item(self, target, array, index):
        return self.set(target, ast.Subscript(name(self.d(array)), copy.deepcopy(index), ast.Load()))

    def write_item(self, array, index, value):
        tangent = self.ref(value) or self.scalar_zero(self.dtype(array))
        return [assign(ast.Subscript(name(self.d(array)), copy.deepcopy(index), ast.Store()), tangent)]

    def in_place(self, target, op, value):
        """Tangent updates for `target op= value`. A later update that reads the operand's
        tangent gets it computed first: that tangent may be the target's own (`a *= a`, or
        `w *= v` after `v = w`), which the earlier update changes."""
        operand_tangent = self.ref(value)
        updates = rules.instantiate_in_place(
            op, name(target), self.ref(name(target)), value, operand_tangent, self.modules,
            lambda: self.scalar_zero(self.dtype(target)), self.cast(self.dtype(target)))
        if operand_tangent is None or len(updates) < 2:
            return updates
        reads = ast.dump(operand_tangent)
        hoisted = []
        for update in updates[1:]:
            if any(ast.dump(node) == reads for node in ast.walk(update.value)):
                term = self.names.fresh(f"{self.d(target)}_term")
                hoisted.append(assign(term, update.value))
                update.value = name(term)
        return hoisted + updates

    def fill(self, array, value):
        value = self.ref(value) or self.scalar_zero(self.dtype(array))
        return [ast.Expr(ast.Call(ast.Attribute(name(self.d(array)), "fill", ast.Load()), [value], []))]

    def parameters(self, params, incoming):
        """Tangent parameters and the prologue that sets up tangents at entry."""
        prologue = [assign(self.d(p), self.zero(self.kinds[p], name(p)))
                    for p in params if p in self.varied and p not in incoming]
        return [self.d(p) for p in incoming], prologue

    def cast(self, dtype):
        if dtype == "float32":
            return lambda: self.np("float32")
        return None

    def scalar_zero(self, dtype):
        if dtype == "float32":
            return ast.Call(self.np("float32"), [ast.Constant(0.0)], [])
        return ast.Constant(0.0)

    def zero(self, kind, primal):
        """A zero tangent for a value of `kind` whose primal is the expression `primal`."""
        if kind is None:
            return ast.Constant(None)
        if kind.shape == "scalar":
            return self.scalar_zero(kind.dtype)
        if kind.shape == "array":
            return ast.Call(self.np("zeros_like"), [copy.deepcopy(primal)], [])
        return ast.Tuple([self.zero(item, ast.Subscript(copy.deepcopy(primal), ast.Constant(i), ast.Load()))
                          for i, item in enumerate(kind.items)], ast.Load())

    def dtype(self, id):
        kind = self.kinds.get(id)
        return kind.dtype if kind is not None and kind.shape != "tuple" else "float64"

    # ---- the function ---------------------------------------------------------------------------
    def function(self, function_name):
        params = [a.arg for a in self.tree.args.args]
        incoming = [p for i, p in enumerate(params) if i in self.active_params]
        tangent_params, prologue = self.parameters(params, incoming)
        args = ast.arguments(posonlyargs=[], args=[ast.arg(p) for p in params + tangent_params],
                             kwonlyargs=[], kw_defaults=[], defaults=[])
        for statement in prologue:
            statement.lineno = self.tree.lineno
        body = prologue + self.block(self.tree.body)
        function = ast.FunctionDef(function_name, args, body, [], None, None)
        if "type_params" in ast.FunctionDef._fields:
            function.type_params = []
        ast.copy_location(function, self.tree)
        return ast.fix_missing_locations(function)

    def block(self, statements):
        out = []
        for statement in statements:
            self.line = statement.lineno
            produced = getattr(self, "statement_" + type(statement).__name__, self.keep)(statement)
            for p in produced:
                p.lineno = statement.lineno
            out.extend(produced)
        return out

    def keep(self, statement):
        return [statement]

    # ---- statements -----------------------------------------------------------------------------
    def statement_Assign(self, statement):
        return self.assign_with_tangent(statement) + self.copied_like_primal(statement)

    def copied_like_primal(self, statement):
        """np.ravel(x), x.ravel() and np.ascontiguousarray(x) are views only of a contiguous x (Numba
        copies any other): where the result or x is written, the tangent is copied exactly when the
        primal was, so that a write reaches both arrays or neither (the tangents' layouts may differ)."""
        target, source = statement.targets[0], self.conditional_view_source(statement.value)
        if not (isinstance(target, ast.Name) and source in self.varied and target.id in self.varied and
                self.kinds[target.id].shape == "array" and {target.id, source} & self.written):
            return []
        tangent = name(self.d(target.id))
        copied = ast.Compare(address(target.id), [ast.NotEq()], [address(source)])
        tangent_copied = ast.Compare(address(self.d(target.id)), [ast.NotEq()], [address(self.d(source))])
        message = (f"fwdad: {source} is contiguous but its tangent is not, so a write through "
                   f"{target.id} cannot reach the tangent of {source}; pass a contiguous tangent "
                   f"(np.ascontiguousarray)")
        refuse = ast.Raise(ast.Call(name("ValueError"), [ast.Constant(message)], []), None)
        return [ast.If(copied, [assign(self.d(target.id), ast.Call(ast.Attribute(tangent, "copy", ast.Load()),
                                                                   [], []))],
                       [ast.If(tangent_copied, [refuse], [])])]

    def conditional_view_source(self, value):
        """x for np.ravel(x), x.ravel() and np.ascontiguousarray(x), else None."""
        if not isinstance(value, ast.Call):
            return None
        if value.args and self.resolve(value.func) in CONDITIONAL_VIEWS and isinstance(value.args[0], ast.Name):
            return value.args[0].id
        if isinstance(value.func, ast.Attribute) and value.func.attr == "ravel" and \
                self.resolve(value.func) is MISSING and isinstance(value.func.value, ast.Name):
            return value.func.value.id
        return None

    def assign_with_tangent(self, statement):
        target, value = statement.targets[0], statement.value
        if isinstance(target, ast.Subscript):
            return self.store_item(statement, target, value)
        if isinstance(value, ast.Call) and self.calls.is_user(value):
            return self.user_call(statement, target.id, value)
        if isinstance(value, ast.List):
            self.refuse_list(value.elts, ast.unparse(value))
        if isinstance(value, ast.Dict):
            self.refuse_list(value.values, ast.unparse(value), "dict")
        if target.id not in self.varied:
            self.refuse_writes_in(value)
            return [statement]
        if isinstance(value, ast.Name) and value.id in self.varied:
            return [statement] + self.alias(target.id, value.id)
        if isinstance(value, ast.Subscript) and isinstance(value.value, ast.Name):
            if value.value.id not in self.varied:
                return [statement] + self.set_zero(target.id)
            reads = self.read_item(target.id, value.value.id, value.slice)
            return reads + [statement] if target.id == value.value.id else [statement] + reads
        tangent, reads = self.tangent_of(value, target.id)
        if tangent is None:
            return [statement] + self.set_zero(target.id)
        if self.is_elementwise(value):
            tangent = self.broadcast(tangent, target.id)
        if target.id in self.written and self.kinds[target.id].shape == "array" and \
                isinstance(viewed(tangent), ast.Name) and not self.is_view(value):
            # `v = x + 1.0; v *= 3.0`: d_v is d_x; but `v = x.T` shares memory, so its tangent does too
            tangent = ast.Call(ast.Attribute(tangent, "copy", ast.Load()), [], [])
        if target.id not in reads.primals:
            return [statement] + self.set(target.id, tangent)
        if not reads.result:
            return self.set(target.id, tangent) + [statement]
        fresh = self.names.temp()
        tangent, _ = self.tangent_of(value, fresh)
        if self.is_elementwise(value):
            tangent = self.broadcast(tangent, target.id)
        return [assign(fresh, value)] + self.set(target.id, tangent) + [assign(target.id, name(fresh))]

    def is_view(self, value):
        """Whether `value` is a view of an array (x.T, x.reshape(..), np.transpose(x)): then the primal
        shares memory too, and the tangent must stay a view of the source's tangent."""
        if isinstance(value, ast.Attribute):
            return value.attr in VIEW_METHODS
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and \
                self.resolve(value.func) is MISSING:
            return value.func.attr in VIEW_METHODS
        return isinstance(value, ast.Call) and self.resolve(value.func) in rules.VIEW_FUNCTIONS

    def is_elementwise(self, value):
        if isinstance(value, ast.BinOp):
            return not isinstance(value.op, ast.MatMult)
        if isinstance(value, ast.UnaryOp):
            return True
        if isinstance(value, ast.Call):
            function = self.resolve(value.func)
            return isinstance(function, np.ufunc) or function in (np.where, np.clip)
        return False

    def broadcast(self, tangent, result):
        """Give an elementwise tangent the result's shape when only lower-rank terms survived.

        `z = x + Y` with x (n,) active and Y (m, n) inactive has tangent d_x of shape (n,).
        """
        kind = self.kinds.get(result)
        if kind is None or kind.shape != "array":
            return tangent
        primal_of = {d: p for p, d in self.names.tangents.items()}
        ranks = [self.kinds[primal_of.get(n.id, n.id)].ndim for n in ast.walk(tangent)
                 if isinstance(n, ast.Name) and primal_of.get(n.id, n.id) in self.kinds
                 and self.kinds[primal_of.get(n.id, n.id)].shape == "array"]
        if max(ranks, default=0) >= kind.ndim:
            return tangent
        return ast.BinOp(tangent, ast.Add(), ast.Call(self.np("zeros_like"), [name(result)], []))

    def refuse_list(self, items, text, kind="list"):
        """Python lists and dicts carry no tangents: one holding a value that has one is refused."""
        if any(self.ref(item) is not None for item in items):
            raise self.error(f"a Python {kind} holding values that carry a tangent (`{text}`): fwdad does "
                             f"not differentiate through {kind}s",
                             "use a tuple `(1.0, a, 3.0)`, an array `np.array((1.0, a, 3.0))`, or "
                             "np.empty(n) filled element by element")

    def container_kind(self, id):
        """"list" or "dict" when Numba typed `id` as one (reflected or typed), else None."""
        spec = getattr(self.calls, "spec", None)
        numba_type = spec.types.numba_types.get(id) if spec is not None else None
        if isinstance(numba_type, (types.List, types.ListType)):
            return "list"
        return "dict" if isinstance(numba_type, types.DictType) else None

    def store_item(self, statement, target, value):
        array = target.value.id
        if self.container_kind(array):
            self.refuse_list([value], ast.unparse(statement), self.container_kind(array))
        if array not in self.varied:
            return [statement]
        return [statement] + self.write_item(array, target.slice, value)

    def statement_AugAssign(self, statement):
        target, value = statement.target.id, statement.value
        if target not in self.varied:
            return [statement]
        return self.in_place(target, type(statement.op), value) + [statement]

    def statement_Expr(self, statement):
        call = statement.value
        if isinstance(call, ast.Call) and self.calls.is_user(call):
            return self.user_call(statement, None, call)
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and \
                isinstance(call.func.value, ast.Name) and call.func.value.id in self.varied:
            array = call.func.value.id
            if call.func.attr != "fill":
                raise self.error(f"fwdad cannot differentiate the in-place method .{call.func.attr}() "
                                 f"on {array!r}", "write the update as an assignment")
            return [statement] + self.fill(array, call.args[0])
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and \
                isinstance(call.func.value, ast.Name) and self.container_kind(call.func.value.id):
            self.refuse_list(call.args + [k.value for k in call.keywords], ast.unparse(call),
                             self.container_kind(call.func.value.id))
        if isinstance(call, ast.Call):
            self.refuse_library_writes(call)
        return [statement]

    def refuse_library_writes(self, call):
        """A library call whose result is dropped can only matter by writing into its arguments
        (np.random.shuffle(x), np.sin(x, out)): fwdad cannot update their tangents."""
        function = self.resolve(call.func)
        arrays = [a.id for a in call.args + [k.value for k in call.keywords] if isinstance(a, ast.Name)
                  and a.id in self.varied and self.kinds[a.id].shape != "scalar"]
        if arrays and function is not print:
            raise self.error(f"`{ast.unparse(call)}` may write into {arrays[0]!r}, whose tangent fwdad "
                             "cannot update", f"write the result into a new array (`y = ...`), or "
                             f"compute it with a loop; an in-place shuffle can index with "
                             f"`np.random.permutation(len({arrays[0]}))`")

    def statement_Return(self, statement):
        value = statement.value
        if value is None:
            return [ast.Return(ast.Tuple([ast.Constant(None), ast.Constant(None)], ast.Load()))]
        kind = self.return_kind
        if isinstance(value, ast.Tuple):
            items = kind.items if kind is not None else (None,) * len(value.elts)
            tangent = ast.Tuple([self.whole(e, k) for e, k in zip(value.elts, items)], ast.Load())
        else:
            tangent = self.whole(value, kind)
        return [ast.Return(ast.Tuple([value, tangent], ast.Load()))]

    def statement_If(self, statement):
        self.refuse_writes_in(statement.test)
        return [ast.If(statement.test, self.block(statement.body), self.block(statement.orelse))]

    def statement_While(self, statement):
        self.refuse_writes_in(statement.test)
        return [ast.While(statement.test, self.block(statement.body), [])]

    def refuse_writes_in(self, expression):
        """Conditions and comparisons are kept whole and call the plain primal of a user function:
        refuse one that writes into an argument with a tangent, which would then go stale."""
        for call in ast.walk(expression):
            if not (isinstance(call, ast.Call) and self.calls.is_user(call)):
                continue
            for i in self.calls.written_params(call):
                root = viewed(call.args[i]) if i < len(call.args) else None
                if isinstance(root, ast.Name) and root.id in self.varied:
                    text = ast.unparse(call)
                    raise self.error(f"`{text}` writes into {root.id!r} inside a condition or comparison, "
                                     f"where fwdad cannot update the tangent of {root.id!r}",
                                     f"call it on a line of its own first (`r = {text}`) and use r")

    def statement_For(self, statement):
        return [ast.For(statement.target, statement.iter, self.block(statement.body), [])]

    # ---- calls to the user's functions and defjvp rules ----------------------------------------
    def user_call(self, statement, target, call):
        mask = frozenset(i for i, a in enumerate(call.args) if isinstance(a, ast.Name) and a.id in self.varied)
        jvp_name, varied_params, param_kinds = self.calls.tangent_function(call, mask)
        if jvp_name is None:                    # no tangent flows in: the result's tangent is zero
            return [statement] + (self.set_zero(target) if target in self.varied else [])
        tangents = [self.whole(call.args[i], param_kinds[i]) for i in sorted(varied_params)]
        jvp_call = ast.Call(name(jvp_name), list(call.args) + tangents, [])
        if target is None:
            return [ast.Expr(jvp_call)]
        tangent_target = self.d(target) if target in self.varied else self.names.fresh("unused")
        return [ast.Assign([ast.Tuple([name(target, True), name(tangent_target, True)], ast.Store())],
                           jvp_call)]

    # ---- the tangent of one operation -----------------------------------------------------------
    def tangent_of(self, value, result):
        """(tangent expression or None for zero, Reads: the primal values the expression uses)."""
        if isinstance(value, (ast.Name, ast.Constant)) or (
                isinstance(value, ast.Attribute) and self.resolve(value) is not MISSING):
            return self.ref(value), NOTHING
        if isinstance(value, ast.UnaryOp) and isinstance(value.operand, ast.Constant):
            return None, NOTHING
        if isinstance(value, ast.BinOp):
            return self.template(rules.OPERATORS[type(value.op)], [value.left, value.right], result)
        if isinstance(value, ast.UnaryOp):
            template = rules.OPERATORS.get(type(value.op))
            return self.template(template, [value.operand], result)
        if isinstance(value, ast.Subscript):
            tangent = self.ref(value.value)
            if tangent is None:
                return None, NOTHING
            return ast.Subscript(tangent, copy.deepcopy(value.slice), ast.Load()), NOTHING
        if isinstance(value, ast.Tuple):
            items = self.kinds[result].items
            return ast.Tuple([self.ref(e) or self.zero(k, e) for e, k in zip(value.elts, items)],
                             ast.Load()), NOTHING
        if isinstance(value, ast.Call):
            return self.call(value, result)
        if isinstance(value, ast.Attribute):
            return self.method(value.attr, value.value, [], [], result, attribute=True)
        raise self.error(f"fwdad cannot differentiate `{ast.unparse(value)}`: its value is a float "
                         "that depends on the inputs.", "rewrite it with arithmetic, if/else or "
                         "function calls")

    def template(self, template, operands, result):
        if template is None:
            return None, NOTHING
        cast = self.cast(self.dtype(result))
        scalar = all(isinstance(o, ast.Constant) or (isinstance(o, ast.Name) and o.id in self.kinds
                     and self.kinds[o.id].shape == "scalar") for o in operands)
        tangent = rules.instantiate(
            template, operands, [self.ref(o) for o in operands], name(result), self.modules,
            lambda: self.scalar_zero(self.dtype(result)), cast, scalar)
        used = {n.id for n in ast.walk(rules.parsed(template).body) if isinstance(n, ast.Name)}
        primals = {o.id for key, o in zip("xyw", operands) if key in used and isinstance(o, ast.Name)}
        return tangent, Reads("z" in used, primals)

    def call(self, call, result):
        function = self.resolve(call.func)
        if is_dtype_cast(call):                   # x.dtype.type(v): a cast, linear in v
            tangent = self.ref(call.args[0]) if len(call.args) == 1 and not call.keywords else None
            return (None if tangent is None else ast.Call(copy.deepcopy(call.func), [tangent], [])), NOTHING
        if function is MISSING and isinstance(call.func, ast.Attribute):
            return self.method(call.func.attr, call.func.value, call.args, call.keywords, result)
        if not any(self.ref(n) is not None for a in call.args + [k.value for k in call.keywords]
                   for n in ast.walk(a)):
            return None, NOTHING
        self.refuse_out(function, call)
        if not rules.has_rule(function):
            raise self.error(f"there is no derivative rule for {ast.unparse(call.func)} and fwdad cannot "
                             "read its source.", no_rule_advice(ast.unparse(call.func)))
        arguments = bound_arguments(function, call)
        try:
            template = rules.function_rule(function, len(arguments if arguments is not None else call.args))
        except KeyError:
            raise self.error(f"fwdad's derivative rule for {ast.unparse(call.func)} does not take "
                             f"{len(arguments or call.args)} arguments, as in `{ast.unparse(call)}`",
                             "leave out the extra arguments, or compute the operation with a loop or "
                             "another supported form (docs/subset.md lists the forms each rule takes)") from None
        if isinstance(template, rules.Refused):
            raise self.error(f"fwdad gives no tangent to {ast.unparse(call.func)} of a value that "
                             f"carries one, as in `{ast.unparse(call)}`", template)
        if template is rules.LINEAR or template is rules.LINEAR_SEQUENCE:
            return self.linear_call(call, result), NOTHING
        if template is None:
            return None, NOTHING
        if arguments is None:
            if call.keywords:
                raise self.error(f"keyword arguments to {ast.unparse(call.func)} are not supported "
                                 "when its arguments are differentiated", "pass them by position")
            arguments = call.args
        self.refuse_unused(template, arguments, call, rules.PIECEWISE_ARGUMENTS.get(function, ()))
        for argument in arguments:
            self.refuse_tuple_operand(argument)
        return self.template(template, arguments, result)

    def refuse_out(self, function, call):
        """`out=` (np.sin(x, y), np.sum(x, out=y)) writes into an array whose tangent no rule updates."""
        arguments = bound_arguments(function, call)
        named = "out" in {k.arg for k in call.keywords}
        if isinstance(function, np.ufunc):
            named = named or len(call.args) > function.nin
        elif arguments is not None:
            names = list(inspect.signature(function).parameters)
            named = named or "out" in names[:len(arguments)]
        if named:
            raise self.error(f"`{ast.unparse(call)}` writes its result into an `out` array, whose tangent "
                             "fwdad cannot update", "assign the result instead: `y = f(x)` (or "
                             "`y[:] = f(x)` to fill an existing array)")

    def refuse_unused(self, template, arguments, call, piecewise=()):
        """A rule that ignores an argument (np.max(x, 0), np.sin(x, out)) would give the wrong tangent."""
        used = {n.id for n in ast.walk(rules.parsed(template).body) if isinstance(n, ast.Name)}
        for i, argument in enumerate(arguments):
            letter = "xyw"[i] if i < 3 else None
            if i not in piecewise and (letter is None or not {letter, "d" + letter} & used):
                raise self.error(f"fwdad's derivative rule for {ast.unparse(call.func)} does not handle "
                                 f"the argument `{ast.unparse(argument)}` in `{ast.unparse(call)}`",
                                 "leave out that argument, or compute the operation with a loop or "
                                 "another supported form (docs/subset.md lists the forms each rule takes)")
            if i not in piecewise and "d" + letter not in used and self.carries_tangent(argument):
                raise self.error(f"fwdad's derivative rule for {ast.unparse(call.func)} treats "
                                 f"`{ast.unparse(argument)}` as a constant, but it carries a tangent "
                                 f"in `{ast.unparse(call)}`", "pass a constant there, or a value that does "
                                 "not depend on the inputs")

    def refuse_tuple_operand(self, operand):
        """Function rules take scalars and arrays: the tangent of a tuple (max(t), or a tuple
        written inline) would be dropped as zero."""
        is_tuple = isinstance(operand, (ast.Tuple, ast.List)) or (
            isinstance(operand, ast.Name) and getattr(self.kinds.get(operand.id), "shape", None) == "tuple")
        if is_tuple and self.carries_tangent(operand):
            raise self.error(f"fwdad's derivative rules take scalars and arrays, not the tuple "
                             f"`{ast.unparse(operand)}`", f"make an array of it first: "
                             f"`np.array({ast.unparse(operand)})`, or pass the items one by one")

    def carries_tangent(self, node):
        return any(self.ref(n) is not None for n in ast.walk(node) if isinstance(n, ast.Name))

    def linear_call(self, call, result):
        """The same call applied to the tangent of its first argument; a tuple or list of values
        (np.concatenate((a, b)), np.array((a, 1.0))) becomes the tuple of their tangents."""
        first, rest = call.args[0], copy.deepcopy(call.args[1:])
        tangent = self.sequence_tangent(first, result)
        return ast.Call(copy.deepcopy(call.func), [tangent] + rest, copy.deepcopy(call.keywords))

    def sequence_tangent(self, node, result):
        if isinstance(node, (ast.Tuple, ast.List)):
            return ast.Tuple([self.sequence_tangent(e, result) for e in node.elts], ast.Load())
        if isinstance(node, ast.Name) and node.id in self.kinds:
            return self.ref(node) or self.zero(self.kinds[node.id], node)
        return self.scalar_zero(self.dtype(result))

    def method(self, method, obj, args, keywords, result, attribute=False):
        key = "." + method
        if key not in rules.METHODS:
            raise self.error(f"there is no derivative rule for the array method or attribute {key}",
                             "use the equivalent NumPy function")
        if rules.METHODS[key] is rules.LINEAR:
            tangent = self.ref(obj)
            if tangent is None:
                return None, NOTHING
            if attribute:
                return ast.Attribute(tangent, method, ast.Load()), NOTHING
            return ast.Call(ast.Attribute(tangent, method, ast.Load()), copy.deepcopy(list(args)),
                            copy.deepcopy(keywords)), NOTHING
        operands = [obj] + list(args)
        call = ast.Call(ast.Attribute(obj, method, ast.Load()), list(args), list(keywords))
        if keywords:
            raise self.error(f"fwdad's derivative rule for the method {key} does not handle keyword "
                             f"arguments, as in `{ast.unparse(call)}`",
                             "leave them out, or use a loop or another supported form (docs/subset.md)")
        self.refuse_unused(rules.METHODS[key], operands, call)
        for operand in operands:
            self.refuse_tuple_operand(operand)
        return self.template(rules.METHODS[key], operands, result)


def bound_arguments(function, call):
    """The call's arguments by position, keywords included (`norm(x, ord=1)` -> [x, 1]), defaults
    filling the gaps; None when `function` has no readable signature or a gap has no plain default."""
    try:
        signature = inspect.signature(function)
        bound = signature.bind_partial(*call.args, **{k.arg: k.value for k in call.keywords})
    except (TypeError, ValueError):
        return None
    names = [n for n, p in signature.parameters.items()
             if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    given = [i for i, n in enumerate(names) if n in bound.arguments]
    if len(given) != len(bound.arguments):
        return None
    arguments = []
    for n in names[:max(given, default=-1) + 1]:
        default = signature.parameters[n].default
        if n not in bound.arguments and not isinstance(default, (type(None), bool, int, float, str)):
            return None
        arguments.append(bound.arguments[n] if n in bound.arguments else ast.Constant(default))
    return arguments


def no_rule_advice(function):
    """What a user can do about a library function without a rule: wrap it and give the wrapper one."""
    short = function.split(".")[-1]
    return (f"wrap it in a module-level function and give that function a rule with fwdad.defjvp, then "
            f"call the wrapper:\n"
            f"    def my_{short}(x):\n        return {function}(x)\n\n"
            f"    @fwdad.defjvp(my_{short})\n    def my_{short}_rule(x, dx):\n"
            f"        return my_{short}(x), <the tangent, written with x and dx>\n"
            f"or pass only inactive (int or constant) arguments to {function}")


def prepare(cls, source, kinds, active=(0,), return_kind=None):
    """A tangent pass of class `cls` over `source`, with scalar variables of the given dtypes."""
    from ..frontend.activity import Activity, FunctionTypes, Kind
    from ..frontend.normalize import Normalized
    from ..frontend.resolve import Resolver, all_names, assigned_names
    from .naming import Names
    import math
    tree = ast.parse(source.strip("\n")).body[0]
    kinds = {k: Kind("scalar", v) for k, v in kinds.items()}
    namespace = {"math": math, "np": np}
    normalized = Normalized(tree, Names(all_names(tree) | set(namespace)), {})
    types = FunctionTypes(kinds, {}, return_kind or Kind("scalar", "float64"), ())
    varied = Activity(tree, types, active, lambda call, mask: None, lambda call: False).run()
    resolve = Resolver(namespace, assigned_names(tree))
    return cls(normalized, kinds, varied, active, resolve, NoCalls(), "<show>",
               {"np": "np", "math": "math", "fwdad_runtime": "fwdad_runtime"}, types.return_kind,
               normalized.names)


def show(source, kinds, active=(0,), return_kind=None):
    """Run the tangent pass on a normalized source with the given variable dtypes (for docs)."""
    tree = ast.parse(source.strip("\n")).body[0]
    return ast.unparse(prepare(TangentPass, source, kinds, active, return_kind).function(tree.name + "_jvp"))


class NoCalls:
    def is_user(self, call):
        return False
