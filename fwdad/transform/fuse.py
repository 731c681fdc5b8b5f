"""Fuse: merge vector mode's per-statement direction loops into one loop per straight-line run.

Primal statements move ahead of the tangent loops of their run when no tangent statement
still needs a value they overwrite; tangents of temporaries that live inside one fused loop
become scalars (registers) instead of length-K buffers. A primal write into an array (`x[i] =
..`, `x *= a`) never moves: a tangent loop may read the array through a view of it under
another name (`t1 = x[:2]` before `x[1:3] = t2`), which the names alone do not show.

>>> import ast
>>> tree = ast.parse('''
... def f_jvp_vector(x, y, d_x, d_y):
...     K = d_x.shape[-1]
...     d_t1 = np.zeros(K, np.float64)
...     d_z = np.zeros(K, np.float64)
...     t1 = x * y
...     for k in range(K):
...         d_t1[k] = d_x[k] * y + x * d_y[k]
...     z = t1 + x
...     for k in range(K):
...         d_z[k] = d_t1[k] + d_x[k]
...     return (z, d_z)
... ''').body[0]
>>> print(ast.unparse(fuse(tree, "k", {"d_t1", "d_z"}, {"d_t1"})))
def f_jvp_vector(x, y, d_x, d_y):
    K = d_x.shape[-1]
    d_z = np.zeros(K, np.float64)
    t1 = x * y
    z = t1 + x
    for k in range(K):
        d_t1 = d_x[k] * y + x * d_y[k]
        d_z[k] = d_t1 + d_x[k]
    return (z, d_z)
"""
import ast

SAFE_CALLS = {"abs", "min", "max", "float", "int", "len", "range", "round", "bool"}


def is_direction_loop(statement, k):
    return (isinstance(statement, ast.For) and isinstance(statement.target, ast.Name)
            and statement.target.id == k)


def names_in(nodes, context=None):
    found = set()
    for node in nodes:
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and (context is None or isinstance(n.ctx, context)):
                found.add(n.id)
    return found


def written(statement):
    """Primal names a simple statement writes (an array counts as written by an item store)."""
    targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
    out = set()
    for target in targets:
        for n in ast.walk(target):
            if isinstance(n, ast.Name):
                out.add(n.id)
    return out


def is_movable_primal(statement, tangents, arrays):
    """A simple assignment without tangents, without writes into arrays (which views of them
    under other names would see) and without calls that could have effects on arrays."""
    if not isinstance(statement, (ast.Assign, ast.AugAssign)):
        return False
    if names_in([statement]) & tangents:
        return False
    targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
    if any(isinstance(t, ast.Subscript) or (isinstance(t, ast.Name) and t.id in arrays and
                                            isinstance(statement, ast.AugAssign)) for t in targets):
        return False
    for n in ast.walk(statement):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id not in SAFE_CALLS:
            return False
    return True


class Fuser:
    def __init__(self, k, tangents, arrays):
        self.k, self.tangents, self.arrays = k, tangents, arrays

    def block(self, statements):
        out, primals, loops, reads = [], [], [], set()

        def flush():
            out.extend(primals)
            if loops:
                merged = loops[0]
                merged.body = [s for loop in loops for s in loop.body]
                out.append(merged)
            primals.clear(), loops.clear(), reads.clear()

        for statement in statements:
            if is_direction_loop(statement, self.k):
                loops.append(statement)
                reads |= names_in(statement.body) - self.tangents
            elif is_movable_primal(statement, self.tangents, self.arrays):
                if written(statement) & reads:
                    flush()
                primals.append(statement)
            else:
                flush()
                for field in ("body", "orelse"):
                    if isinstance(getattr(statement, field, None), list):
                        setattr(statement, field, self.block(getattr(statement, field)))
                out.append(statement)
        flush()
        return out


def promote(function, k, local_candidates):
    """Turn buffers d_t used only inside one direction loop, written first, into scalars."""
    counts = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and node.id in local_candidates:
            counts[node.id] = counts.get(node.id, 0) + 1
    promoted = set()
    for loop in (n for n in ast.walk(function) if is_direction_loop(n, k)):
        inside = {}
        for node in ast.walk(loop):
            if isinstance(node, ast.Name) and node.id in local_candidates:
                inside[node.id] = inside.get(node.id, 0) + 1
        for name, count in inside.items():
            # every use is here, plus the one allocation at entry; the first use writes d_t[k]
            if counts[name] == count + 1 and first_use_is_write(loop, name, k):
                promoted.add(name)
    if not promoted:
        return function

    class Promote(ast.NodeTransformer):
        def visit_Subscript(self, node):
            self.generic_visit(node)
            if isinstance(node.value, ast.Name) and node.value.id in promoted:
                return ast.Name(node.value.id, node.ctx)
            return node

    function.body = [s for s in function.body if not (
        isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name) and s.targets[0].id in promoted)]
    return Promote().visit(function)


def first_use_is_write(loop, name, k):
    for statement in loop.body:
        uses = [n for n in ast.walk(statement) if isinstance(n, ast.Name) and n.id == name]
        if not uses:
            continue
        return (isinstance(statement, ast.Assign) and isinstance(statement.targets[0], ast.Subscript)
                and isinstance(statement.targets[0].value, ast.Name)
                and statement.targets[0].value.id == name
                and name not in names_in([statement.value]))
    return False


def fuse(function, k, tangents, local_candidates, arrays=frozenset()):
    """Fuse direction loops in every block of `function`, then promote local tangent buffers;
    `arrays`: the names of array variables (an in-place update of one is a write into it)."""
    function.body = Fuser(k, tangents, arrays).block(function.body)
    return ast.fix_missing_locations(promote(function, k, local_candidates))
