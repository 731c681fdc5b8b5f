"""Rebuild: the primal that `f(...)` runs, with normalization's one-use temporaries put back.

Normalization splits every expression into one operation per statement, which the typing and
the tangent pass need. Run as it is, the primal then allocates an array per operation of an
array expression: Numba fuses an array expression only while its intermediates are its own
unnamed values. This pass writes each temporary that is assigned once and read once, by the
statement right after its chain, back into that statement, so the primal `f(...)` compiles
as `numba.njit` of the user's source would. Temporaries come back in the order normalization
took them apart (left to right, innermost first): Python's order of evaluation is kept, and a
chain that is not consumed in that order stays as it is.

>>> import ast
>>> tree = ast.parse('''
... def f(u, r):
...     t1 = u[1:-1]
...     t2 = u[2:]
...     t3 = 2.0 * t1
...     t4 = t2 - t3
...     t5 = r * t4
...     t6 = t1 + t5
...     u[1:-1] = t6
...     t7 = u * u
...     t8 = np.sum(t7)
...     return t8
... ''').body[0]
>>> print(ast.unparse(rebuild(tree, {"t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8"})))
def f(u, r):
    t1 = u[1:-1]
    u[1:-1] = t1 + r * (u[2:] - 2.0 * t1)
    return np.sum(u * u)
"""
import ast
import copy


def loads(tree):
    """How often each name is read and assigned in `tree`."""
    reads, stores = {}, {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            counts = reads if isinstance(node.ctx, ast.Load) else stores
            counts[node.id] = counts.get(node.id, 0) + 1
    return reads, stores


def in_order(node):
    """The names `node` reads, in Python's order of evaluation (fields in order, left to right)."""
    if isinstance(node, ast.Name):
        return [node.id] if isinstance(node.ctx, ast.Load) else []
    return [n for child in ast.iter_child_nodes(node) for n in in_order(child)]


class Substitute(ast.NodeTransformer):
    def __init__(self, values):
        self.values = values

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load) and node.id in self.values:
            return self.values[node.id]
        return node


class Rebuild:
    def __init__(self, function, temporaries):
        reads, stores = loads(function)
        self.once = {t for t in temporaries if reads.get(t) == 1 and stores.get(t) == 1}

    def block(self, statements):
        out, pending = [], []         # pending: (temporary, its expression), in order
        for statement in statements:
            self.nested(statement)
            consumed = self.consumed(statement, pending)
            if consumed is None:
                out.extend(assignment for _, assignment in pending)
                pending = []
            elif consumed:
                pending = pending[:len(pending) - len(consumed)]
                statement.value = Substitute(consumed).visit(statement.value)
            if self.is_temporary(statement):
                pending.append((statement.targets[0].id, statement))
            else:
                out.extend(assignment for _, assignment in pending)
                pending = []
                out.append(statement)
        out.extend(assignment for _, assignment in pending)
        return out

    def nested(self, statement):
        for field in ("body", "orelse"):
            if isinstance(getattr(statement, field, None), list):
                setattr(statement, field, self.block(getattr(statement, field)))

    def is_temporary(self, statement):
        return isinstance(statement, ast.Assign) and len(statement.targets) == 1 and \
            isinstance(statement.targets[0], ast.Name) and statement.targets[0].id in self.once

    def consumed(self, statement, pending):
        """{temporary: expression} for the pending temporaries `statement` reads, when they are the
        last ones pending, read in the order they were computed; None otherwise."""
        value = getattr(statement, "value", None) if isinstance(
            statement, (ast.Assign, ast.AugAssign, ast.Return, ast.Expr)) else None
        if value is None:
            return {}
        waiting = [t for t, _ in pending]
        read = [n for n in in_order(value) if n in waiting]
        if not read:
            return {}
        if read != waiting[len(waiting) - len(read):]:
            return None
        return {t: copy.deepcopy(a.value) for t, a in pending[len(pending) - len(read):]}


def rebuild(function, temporaries):
    """A copy of `function` with its one-use `temporaries` written back into their readers."""
    function = copy.deepcopy(function)
    function.body = Rebuild(function, temporaries).block(function.body)
    return ast.fix_missing_locations(function)
