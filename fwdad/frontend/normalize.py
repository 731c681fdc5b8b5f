"""Normalize: bring a function to A-normal form, one operation per statement.

Every float-valued computation becomes `name = op(atoms)`, where an atom is a name, a
constant or a module attribute such as `math.pi`. `+=` on a name stays an augmented
assignment (it is in place for arrays); `y[i] += v` becomes read, update, write. Ternaries
become if statements; `math.log(x, b)` becomes `log(x) / log(b)`, `max((a, b))` becomes
`max(a, b)` and `sum((a, b))` becomes `a + b`; `for v in x`, `enumerate` and `zip` become
loops over `range`.
Expressions that can only be ints or bools (comparisons, `len`, `x.shape[0]`, indices,
`range` arguments, if/while tests) stay whole: they never carry a tangent. Calls to the
user's own functions are bound to plain names (recorded in `callees`).

>>> import math
>>> print(show('''
... def f(x, y, n):
...     z = x * (y - 1.0) + math.sin(x)
...     for i in range(n):
...         z += x if z < y else y
...     return z, n
... ''', {"math": math}))
def f(x, y, n):
    t1 = y - 1.0
    t2 = x * t1
    t3 = math.sin(x)
    z = t2 + t3
    for i in range(n):
        if z < y:
            t4 = x
        else:
            t4 = y
        z += t4
    return (z, n)
"""
import ast
import copy
import math

import numba

from ..errors import UnsupportedSyntaxError, located
from ..transform import rules
from ..transform.naming import Names
from .resolve import MISSING, Resolver, all_names, assigned_names, positional_arguments

INACTIVE_ATTRIBUTES = {"shape", "size", "ndim", "dtype", "itemsize", "nbytes"}
INACTIVE_CALLS = frozenset(f for f, row in rules.ROWS.items() if row.inactive)   # len, range, ...
INDEX_SOURCES = {range, numba.prange}


def is_dtype_cast(call):
    """`x.dtype.type(v)`: v as a scalar of x's dtype."""
    return isinstance(call.func, ast.Attribute) and call.func.attr == "type" and \
        isinstance(call.func.value, ast.Attribute) and call.func.value.attr == "dtype"


class Normalized:
    """A normalized function: the tree, its temporaries' namer and the user functions it calls."""

    def __init__(self, tree, names, callees):
        self.tree = tree
        self.names = names
        self.callees = callees        # bound name -> Python function object


class Normalizer:
    def __init__(self, parsed, is_user_function):
        self.parsed = parsed
        self.filename = parsed.filename
        self.resolve = Resolver(parsed.namespace, assigned_names(parsed.tree))
        self.is_user_function = is_user_function
        self.names = Names(all_names(parsed.tree) | set(parsed.namespace))
        self.callees = {}
        self.bound = {}               # id(function) -> bound name
        self.out = []
        self.reads = None              # element reads already computed in this statement
        self.line = parsed.tree.lineno

    # ---- helpers -------------------------------------------------------------------------
    def error(self, what, hint=""):
        return located(UnsupportedSyntaxError, self.filename, self.line, what, hint)

    def emit(self, statement):
        statement.lineno = self.line
        self.out.append(statement)

    def assign(self, name, value):
        self.emit(ast.Assign([ast.Name(name, ast.Store())], value))

    def nested(self, statements):
        """Normalize a block into a fresh list (restoring the current one afterwards)."""
        saved, self.out = self.out, []
        reads, self.reads = self.reads, None           # reads in a branch stay in the branch
        for statement in statements:
            self.statement(statement)
        block, self.out, self.reads = self.out, saved, reads
        return block or [ast.Pass()]

    # ---- expressions ---------------------------------------------------------------------
    def is_atom(self, node):
        if isinstance(node, (ast.Name, ast.Constant)):
            return True
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return isinstance(node.operand, ast.Constant)
        return isinstance(node, ast.Attribute) and self.resolve.is_global_chain(node)

    def is_inactive(self, node):
        """True for expressions whose value can only be an int, a bool or a string."""
        if isinstance(node, (ast.Compare, ast.BoolOp, ast.JoinedStr)):
            return True
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return True
        if isinstance(node, ast.Constant):
            return not isinstance(node.value, float)
        if isinstance(node, ast.Attribute):
            return node.attr in INACTIVE_ATTRIBUTES
        if isinstance(node, ast.Subscript):
            return self.is_inactive(node.value)
        if isinstance(node, ast.Call) and is_dtype_cast(node):     # x.dtype.type(0): a typed constant
            return all(isinstance(a, ast.Constant) or self.is_inactive(a) for a in node.args)
        if isinstance(node, ast.Call):
            return self.resolve(node.func) in INACTIVE_CALLS
        return False

    def atom(self, node):
        """An atom with the value of `node`, emitting statements that compute it."""
        if self.is_atom(node):
            return node
        key = ast.dump(node) if isinstance(node, ast.Subscript) and self.reads is not None else None
        if key in (self.reads or {}):                  # x[i] read twice in one statement: once
            return ast.Name(self.reads[key], ast.Load())
        value = self.operation(node)
        if key is not None and not isinstance(value, ast.Name):
            name = self.names.temp()
            self.assign(name, value)
            self.reads[key] = name
            return ast.Name(name, ast.Load())
        if isinstance(value, ast.Name):
            return value
        name = self.names.temp()
        self.assign(name, value)
        return ast.Name(name, ast.Load())

    def operation(self, node):
        """One operation on atoms with the value of `node`."""
        if self.is_atom(node) or self.is_inactive(node):
            return self.link(node)
        if isinstance(node, ast.BinOp):
            return ast.BinOp(self.atom(node.left), node.op, self.atom(node.right))
        if isinstance(node, ast.UnaryOp):
            return ast.UnaryOp(node.op, self.atom(node.operand))
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Subscript):
            return ast.Subscript(self.atom(node.value), self.link(node.slice), ast.Load())
        if isinstance(node, ast.Attribute):
            return ast.Attribute(self.atom(node.value), node.attr, ast.Load())
        if isinstance(node, ast.IfExp):
            return self.if_expression(node)
        if isinstance(node, (ast.Tuple, ast.List)):
            return type(node)([self.atom(e) for e in node.elts], ast.Load())
        return self.link(node)

    def if_expression(self, node):
        name = self.names.temp()
        body = self.nested([ast.Assign([ast.Name(name, ast.Store())], node.body)])
        orelse = self.nested([ast.Assign([ast.Name(name, ast.Store())], node.orelse)])
        self.emit(ast.If(self.link(node.test), body, orelse))
        return ast.Name(name, ast.Load())

    def argument(self, node):
        if isinstance(node, (ast.Tuple, ast.List)):
            return ast.Tuple([self.argument(e) for e in node.elts], ast.Load())
        if self.is_inactive(node):
            return self.link(node)
        return self.atom(node)

    def call(self, node):
        target = self.resolve(node.func)
        if target is math.log and len(node.args) == 2:       # Numba has only the one-argument log
            one = [ast.Call(node.func, [a], []) for a in node.args]
            return self.operation(ast.BinOp(one[0], ast.Div(), one[1]))
        if (target is sum or (target in (min, max) and len(node.args) == 1)) and node.args and \
                isinstance(node.args[0], (ast.Tuple, ast.List)) and node.args[0].elts and not node.keywords:
            return self.operation(spelled_out(target, node))
        if target in (min, max) and len(node.args) > 2 and not node.keywords:
            first = ast.Call(node.func, node.args[:2], [])
            return self.call(ast.Call(node.func, [first, *node.args[2:]], []))
        if target is not MISSING and self.is_user_function(target):
            arguments = positional_arguments(target, node, self.filename, self.error)
            if any(isinstance(a, ast.Constant) and not isinstance(a.value, (int, float, bool, type(None)))
                   for a in arguments):
                raise self.error("a default parameter value that is not a number or None",
                                 "pass the argument explicitly")
            name = self.bind(target, node.func)
            # every argument of a user call becomes an atom (even len(x)): its type is then known
            atoms = [self.argument(a) if isinstance(a, (ast.Tuple, ast.List)) else self.atom(a) for a in arguments]
            return ast.Call(ast.Name(name, ast.Load()), atoms, [])
        if isinstance(node.func, ast.Attribute) and not self.resolve.is_global_chain(node.func):
            func = ast.Attribute(self.atom(node.func.value), node.func.attr, ast.Load())   # a method
        else:
            func = self.link(node.func)
        keywords = [ast.keyword(k.arg, self.argument(k.value)) for k in node.keywords]
        return ast.Call(func, [self.argument(a) for a in node.args], keywords)

    def bind(self, function, reference):
        """The plain name under which the user function `function` is called."""
        key = id(function)
        if key not in self.bound:
            base = reference.id if isinstance(reference, ast.Name) else reference.attr
            clash = self.parsed.namespace.get(base, function) is not function
            name = self.names.fresh(base) if clash or base in self.callees else base
            self.names.taken.add(name)
            self.bound[key] = name
            self.callees[name] = function
        return self.bound[key]

    def link(self, node):
        """`node` kept whole, with calls to user functions bound to their plain names (and
        math.log(x, b) written log(x) / log(b), which Numba needs)."""
        normalizer = self

        class Link(ast.NodeTransformer):
            def visit_Call(self, call):
                self.generic_visit(call)
                target = normalizer.resolve(call.func)
                if target is math.log and len(call.args) == 2:
                    one = [ast.Call(call.func, [a], []) for a in call.args]
                    return ast.BinOp(one[0], ast.Div(), one[1])
                if target is not MISSING and normalizer.is_user_function(target):
                    call.args = positional_arguments(target, call, normalizer.filename, normalizer.error)
                    call.keywords = []
                    call.func = ast.Name(normalizer.bind(target, call.func), ast.Load())
                return call
        return Link().visit(copy.deepcopy(node))

    # ---- statements ----------------------------------------------------------------------
    def statement(self, node):
        self.line = getattr(node, "lineno", self.line)
        handler = getattr(self, "statement_" + type(node).__name__, None)
        if handler is None:
            raise self.error(f"the statement {type(node).__name__} is not supported")
        saved, self.reads = self.reads, ({} if self.reads_are_pure(node) else None)
        handler(node)
        self.reads = saved

    def reads_are_pure(self, node):
        """Whether equal element reads within this simple statement may share one temporary
        (no call in it could write into an array between them)."""
        if isinstance(node, (ast.If, ast.For, ast.While)):
            return False
        for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
            target = self.resolve(call.func)
            if target is MISSING or self.is_user_function(target):
                return False
        return True

    def statement_Assign(self, node):
        if len(node.targets) == 1:
            return self.store(node.targets[0], node.value)
        value = self.atom(node.value)
        for target in node.targets:
            self.store(target, value)

    def statement_AnnAssign(self, node):
        if node.value is not None:
            self.store(node.target, node.value)

    def store(self, target, value):
        """Emit `target = value` for a name, subscript or (nested) tuple target."""
        if isinstance(target, ast.Name):
            self.emit(ast.Assign([target], self.operation(value)))
        elif isinstance(target, ast.Subscript):
            array = self.atom(target.value)
            index = self.link(target.slice)
            self.emit(ast.Assign([ast.Subscript(array, index, ast.Store())], self.atom(value)))
        elif isinstance(target, (ast.Tuple, ast.List)):
            self.unpack(target, value)
        else:
            raise self.error(f"assigning to {ast.unparse(target)}")

    def unpack(self, target, value):
        if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts):
            targets = {n.id for t in target.elts for n in ast.walk(t) if isinstance(n, ast.Name)}
            parts = []
            for element in value.elts:
                part = self.atom(element)
                if isinstance(part, ast.Name) and part.id in targets:
                    copy_name = self.names.temp()
                    self.assign(copy_name, part)
                    part = ast.Name(copy_name, ast.Load())
                parts.append(part)
        else:
            whole = self.atom(value)
            parts = [ast.Subscript(whole, ast.Constant(i), ast.Load()) for i in range(len(target.elts))]
        for element, part in zip(target.elts, parts):
            self.store(element, part)

    def statement_AugAssign(self, node):
        if isinstance(node.target, ast.Name):
            self.emit(ast.AugAssign(node.target, node.op, self.atom(node.value)))
        elif isinstance(node.target, ast.Subscript):
            array = self.atom(node.target.value)
            index = self.link(node.target.slice)
            value = self.atom(node.value)
            current = self.names.temp()
            self.assign(current, ast.Subscript(array, index, ast.Load()))
            self.emit(ast.AugAssign(ast.Name(current, ast.Store()), node.op, value))
            self.emit(ast.Assign([ast.Subscript(array, copy.deepcopy(index), ast.Store())],
                                 ast.Name(current, ast.Load())))
        else:
            raise self.error(f"augmented assignment to {ast.unparse(node.target)}")

    def statement_Expr(self, node):
        if isinstance(node.value, ast.Call):
            self.emit(ast.Expr(self.operation(node.value)))
        # docstrings and bare expressions have no effect

    def statement_Return(self, node):
        if node.value is None:
            self.emit(ast.Return(None))
        elif isinstance(node.value, ast.Tuple):
            self.emit(ast.Return(ast.Tuple([self.atom(e) for e in node.value.elts], ast.Load())))
        else:
            self.emit(ast.Return(self.atom(node.value)))

    def statement_If(self, node):
        test = self.link(node.test)
        body, orelse = self.nested(node.body), self.nested(node.orelse) if node.orelse else []
        self.line = node.lineno
        self.emit(ast.If(test, body, orelse))

    def statement_While(self, node):
        test = self.link(node.test)
        body = self.nested(node.body)
        self.line = node.lineno
        self.emit(ast.While(test, body, []))

    def statement_For(self, node):
        iterator, target = node.iter, node.target
        source = self.resolve(iterator.func) if isinstance(iterator, ast.Call) else MISSING
        if source in INDEX_SOURCES:
            if not isinstance(target, ast.Name):
                raise self.error("a for loop over range must assign a single name")
            body = self.nested(node.body)
            self.line = node.lineno
            self.emit(ast.For(target, self.link(iterator), body, []))
            return
        if source is enumerate:
            if not (isinstance(target, ast.Tuple) and len(target.elts) == 2):
                raise self.error("for ... in enumerate(...) must unpack into two names")
            index, target = target.elts
            sequences = [self.atom(iterator.args[0])]
        elif source is zip:
            index = ast.Name(self.names.fresh("i"), ast.Store())
            sequences = [self.atom(a) for a in iterator.args]
        else:
            index = ast.Name(self.names.fresh("i"), ast.Store())
            sequences = [self.atom(iterator)]
        self.loop_over(node, index, target, sequences, zipped=source is zip)

    def loop_over(self, node, index, target, sequences, zipped):
        """`for index in range(len(...)): target = seq[index]; body` for arrays, enumerate, zip."""
        lengths = [ast.Call(ast.Name("len", ast.Load()), [s], []) for s in sequences]
        stop = lengths[0] if len(lengths) == 1 else ast.Call(ast.Name("min", ast.Load()), lengths, [])
        position = ast.Name(index.id, ast.Load())
        items = [ast.Subscript(s, position, ast.Load()) for s in sequences]
        value = ast.Tuple(items, ast.Load()) if zipped else items[0]
        body = self.nested([ast.Assign([target], value)] + node.body)
        self.line = node.lineno
        self.emit(ast.For(index, ast.Call(ast.Name("range", ast.Load()), [stop], []), body, []))

    def keep(self, node):
        self.emit(self.link(node))

    statement_Pass = statement_Break = statement_Continue = keep
    statement_Assert = statement_Raise = keep


def spelled_out(function, call):
    """max((a, b, c)) -> max(a, b, c), sum((a, b), s) -> s + a + b: the items of a literal tuple
    or list become operations of their own, with the rules of scalars."""
    items = list(call.args[0].elts)
    if function is sum:
        total = call.args[1] if len(call.args) > 1 else items.pop(0)
        for item in items:
            total = ast.BinOp(total, ast.Add(), item)
        return total
    return items[0] if len(items) == 1 else ast.Call(call.func, items, [])


def normalize(parsed, is_user_function=lambda f: False):
    """Return a Normalized copy of `parsed.tree` in A-normal form."""
    normalizer = Normalizer(parsed, is_user_function)
    tree = parsed.tree
    body = normalizer.nested(tree.body)
    new = ast.FunctionDef(tree.name, copy.deepcopy(tree.args), body, [], None, None, type_params=[]) \
        if "type_params" in ast.FunctionDef._fields else \
        ast.FunctionDef(tree.name, copy.deepcopy(tree.args), body, [], None, None)
    new.args.defaults = []
    ast.copy_location(new, tree)
    ast.fix_missing_locations(new)
    return Normalized(new, normalizer.names, normalizer.callees)


def show(source, namespace=None):
    """Normalize the first function in `source` and return the result as text (for docs and tests)."""
    from .parse import ParsedFunction
    tree = ast.parse(source.strip("\n")).body[0]
    parsed = ParsedFunction(None, tree, "<show>", dict(namespace or {}), source)
    return ast.unparse(normalize(parsed).tree)

