"""Which object a global name or attribute chain in a function body refers to."""
import ast
import builtins
import inspect

MISSING = object()


def assigned_names(tree):
    """Parameters and every name the function body assigns: the function's locals."""
    names = {a.arg for a in tree.args.args}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def all_names(tree):
    """Every identifier the function mentions (locals and globals), to keep new names clear of."""
    names = assigned_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
    return names


class Resolver:
    """Looks up global names and dotted chains in a function's namespace, as Numba would."""

    def __init__(self, namespace, local_names):
        self.namespace = namespace
        self.local_names = local_names

    def __call__(self, node):
        """The object `node` (a Name or Attribute chain) refers to, or MISSING if local/unknown."""
        if isinstance(node, ast.Name):
            if node.id in self.local_names:
                return MISSING
            if node.id in self.namespace:
                return self.namespace[node.id]
            return getattr(builtins, node.id, MISSING)
        if isinstance(node, ast.Attribute):
            base = self(node.value)
            if base is MISSING:
                return MISSING
            return getattr(base, node.attr, MISSING)
        return MISSING

    def is_global_chain(self, node):
        return isinstance(node, (ast.Name, ast.Attribute)) and self(node) is not MISSING

    def is_local(self, node):
        while isinstance(node, ast.Attribute):
            node = node.value
        return isinstance(node, ast.Name) and node.id in self.local_names


def dotted_name(node):
    """'a.b.c' for a Name or an Attribute chain on a Name, else None (a call's result, a subscript)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted_name(node.value)
        return base and f"{base}.{node.attr}"
    return None


def global_reads(tree, namespace):
    """Each global name and attribute chain the function reads (`cfg`, `cfg.SCALE`, `np.tanh`),
    mapped to the object it refers to now: what Numba freezes into the compiled code."""
    resolve = Resolver(namespace, assigned_names(tree))
    reads = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Name, ast.Attribute)) and not isinstance(node.ctx, ast.Store):
            chain = dotted_name(node)
            if chain is not None and chain not in reads and not resolve.is_local(node):
                try:
                    reads[chain] = resolve(node)
                except Exception:               # a property that raises: no value to freeze
                    reads[chain] = MISSING
    return reads


def positional_arguments(func, call, filename, error):
    """Map a call's keyword arguments onto positions using `func`'s signature (defaults filled)."""
    from .parse import python_function
    signature = inspect.signature(python_function(func))
    try:
        bound = signature.bind(*call.args, **{k.arg: k.value for k in call.keywords})
    except TypeError as problem:
        raise error(f"{problem} in this call") from None
    arguments = []
    for name, parameter in signature.parameters.items():
        if name in bound.arguments:
            arguments.append(bound.arguments[name])
        elif parameter.default is not inspect.Parameter.empty:
            arguments.append(ast.Constant(parameter.default))
    return arguments
