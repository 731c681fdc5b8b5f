"""Fold constant scalings across tangent statements: `d_t6 = 100.0 * d_t5` after `d_t5 = d_t4 * 2 * t4`.

The rules instantiate one template per primal statement, so the constants of consecutive
statements meet only in separate statements (`t ** 2` gives `dt * 2 * t`, then `100.0 * t5`
multiplies its tangent by 100). Without fast-math, LLVM may not merge them; the hand-written
code does (`200 * t * dt`). This pass, on the tangent function after the rules and fusion:

* substitutes a tangent used once, as `c * d_x` or `d_x * c` with a number c, into that use,
  and multiplies the numbers of its product together (`200.0 * (d_t4 * t4)`), when the
  definition comes earlier in the same block and only plain assignments (no call, no
  subscript) of other names than it reads come between them;
* writes `a * b + b * a` (the rule of `x * x`) as `2.0 * (a * b)`, which is bit for bit the same.

Only numbers written in the code are multiplied, and only in float64 tangents (a float64
number would turn float32 code into float64). Scaling by a power of two is exact, so the usual fold is bit for
bit the same; other numbers may round differently in the last place.

>>> import ast
>>> tree = ast.parse('''
... def f_jvp(x, d_x):
...     t2 = x[0]
...     d_t2 = d_x[0]
...     d_t3 = d_t2 * t2 + t2 * d_t2
...     d_t5 = d_t3 * 2 * t2
...     d_t6 = 100.0 * d_t5
...     return d_t6
... ''').body[0]
>>> print(ast.unparse(fold_scalings(tree, lambda name: name.startswith("d_"))))
def f_jvp(x, d_x):
    t2 = x[0]
    d_t2 = d_x[0]
    d_t3 = 2.0 * (d_t2 * t2)
    d_t6 = 200.0 * (d_t3 * t2)
    return d_t6
"""
import ast


def number(node):
    """The value of a number written in the code (`2`, `-0.5`), else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = number(node.operand)
        return None if value is None else -value
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    return None


def factors(node):
    """The operands of a product chain `a * b * c`, in order."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        return factors(node.left) + factors(node.right)
    return [node]


def product(nodes):
    result = nodes[0]
    for node in nodes[1:]:
        result = ast.BinOp(result, ast.Mult(), node)
    return result


def scaled(scale, nodes):
    """`scale * (rest)`, folding the numbers among `nodes` into `scale`; None if there are none."""
    numbers = [number(n) for n in nodes]
    if all(v is None for v in numbers) or all(v is not None for v in numbers):
        return None
    for value in numbers:
        scale = scale * value if value is not None else scale
    rest = product([n for n, v in zip(nodes, numbers) if v is None])
    constant = ast.Constant(float(abs(scale)))
    return ast.BinOp(ast.UnaryOp(ast.USub(), constant) if scale < 0 else constant, ast.Mult(), rest)


def square_rule(node):
    """`a * b + b * a` as `2.0 * (a * b)` (the product rule of `x * x`), else None."""
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)):
        return None
    left, right = node.left, node.right
    if all(isinstance(s, ast.BinOp) and isinstance(s.op, ast.Mult) for s in (left, right)) and \
            all(isinstance(o, ast.Name) for o in (left.left, left.right, right.left, right.right)) and \
            (left.left.id, left.right.id) == (right.right.id, right.left.id):
        return ast.BinOp(ast.Constant(2.0), ast.Mult(), ast.BinOp(left.left, ast.Mult(), left.right))
    return None


def plain(statement):
    """`name = expression` without calls or subscripts: it changes nothing but `name`, so a
    definition may move past it (an element write or a call may change what it reads)."""
    return isinstance(statement, ast.Assign) and len(statement.targets) == 1 and \
        isinstance(statement.targets[0], ast.Name) and \
        not any(isinstance(n, (ast.Call, ast.Subscript, ast.NamedExpr)) for n in ast.walk(statement.value))


class ScaleFolding:
    def __init__(self, function, foldable):
        self.foldable = foldable
        self.loads, self.stores = {}, {}
        for node in ast.walk(function):
            if isinstance(node, ast.Name):
                counts = self.loads if isinstance(node.ctx, ast.Load) else self.stores
                counts[node.id] = counts.get(node.id, 0) + 1

    def block(self, statements):
        definitions = {}                 # tangent name -> its index in `statements`
        for index, statement in enumerate(statements):
            for field in ("body", "orelse"):
                if isinstance(getattr(statement, field, None), list):
                    setattr(statement, field, self.block(getattr(statement, field)))
            target = self.single_target(statement)
            if target is None:
                continue
            statement.value = square_rule(statement.value) or statement.value
            self.substitute(statement, statements, definitions, index)
            definitions[target] = index
        return [s for s in statements if s is not None]

    def single_target(self, statement):
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and \
                isinstance(statement.targets[0], ast.Name) and self.foldable(statement.targets[0].id):
            return statement.targets[0].id
        return None

    def substitute(self, statement, statements, definitions, index):
        """`d_y = c * d_x` with d_x defined once above and read only here: fold d_x's product in."""
        value = statement.value
        if not (isinstance(value, ast.BinOp) and isinstance(value.op, ast.Mult)):
            return
        pairs = ((value.left, value.right), (value.right, value.left))
        scale, used = next(((number(c), n) for c, n in pairs if number(c) is not None and
                            isinstance(n, ast.Name)), (None, None))
        if scale is None or used.id not in definitions or self.loads.get(used.id) != 1 or \
                self.stores.get(used.id) != 1:
            return
        where = definitions[used.id]
        definition = statements[where]
        folded = scaled(scale, factors(definition.value))
        read = {n.id for n in ast.walk(definition.value) if isinstance(n, ast.Name)}
        between = [s for s in statements[where + 1:index] if s is not None]
        if folded is None or not all(map(plain, between)) or read & {s.targets[0].id for s in between}:
            return
        statement.value = ast.copy_location(folded, value)
        statements[where] = None
        del definitions[used.id]


def fold_scalings(function, foldable):
    """`function` with constant scalings of single-use tangents folded (see the module's text).

    foldable(name): whether a variable is a float64 tangent (only their statements change: the
    numbers written are float64, which would make float32 code float64)."""
    folding = ScaleFolding(function, foldable)
    function.body = folding.block(function.body)
    return ast.fix_missing_locations(function)
