"""Second derivatives: fwdad differentiates the tangent code it generated (forward over forward).

A specialization's tangent code is plain numeric Python of the same subset (loops, NumPy calls,
`fwdad_runtime` helpers written in that subset), so fwdad reads it the way it reads a user's
helper. There is no second rule table and no tagging: the inner tangents are ordinary variables
of the inner code, so an outer perturbation can never be confused with an inner one (the
failure ForwardDiff.jl needed tags for).

Three small generated functions connect the layers, each compiled like user code:

* `f.jvp2`: the outer JVP of the inner tangent function itself, seeded with the same direction
  for the primals and zero for the inner tangents: value, f'[v] and f''[v, v] in one pass.
* `f.hvp`: the gradient (outer vector mode) of `x -> f'(x)[v]`, one generated line.
* `f.hessian`: the Jacobian (outer vector mode) of the gradient, written as a loop of inner
  JVPs along the unit vectors; with `sparse=True` the outer Jacobian is a sparse one, so a
  banded Hessian costs a few outer directions.

And `g.tangent_njit(...)` called inside a function fwdad differentiates becomes a call of g's
tangent code (`TypedCallee`), differentiated like any helper.
"""
import ast
import weakref

import numpy as np
from numba.core import types

from . import codegen
from .errors import FwdadError

NONE_TYPES = (types.NoneType, types.Omitted)
OUTER = weakref.WeakKeyDictionary()       # specialization -> {kind: outer ForwardFunction}


def generated_function(source, name, namespace, at):
    """Compile `source` (one function) as fwdad's generated code, readable by fwdad again.

    `at` is the user function the code derives from: errors and `# line` comments point at its
    definition."""
    tree = ast.parse(source).body[0]
    line = at.__code__.co_firstlineno
    for node in ast.walk(tree):
        if hasattr(node, "lineno"):
            node.lineno = node.end_lineno = line
    module = codegen.build([tree], f"second-order wrapper {name}", at.__code__.co_filename, namespace)
    return module[name]


def outer_function(forward, spec, kind, build):
    """The ForwardFunction over generated code `build(spec)`, made once per specialization."""
    made = OUTER.setdefault(spec, {})
    if kind not in made:
        function, wrt = build(spec)
        made[kind] = type(forward)(function, wrt=wrt)
    return made[kind]


# ---- jvp2: the tangent code differentiated once more along the same direction ------------------
def taylor2(forward, primals, checked, active):
    """(value, f'[v], f''[v, v]) for the checked tangents of the active arguments."""
    spec = forward.specialization(primals, active)
    outer = outer_function(forward, spec, "jvp2", lambda s: (s.jvp.py_func, None))
    inner = tuple(checked)
    outer_tangents = [None] * len(primals)
    for i, tangent in zip(active, checked):
        outer_tangents[i] = tangent
    outer_tangents += [zero_of(t) for t in inner]
    (value, first), (_, second) = outer.jvp(tuple(primals) + inner, tuple(outer_tangents))
    return value, first, second


def zero_of(tangent):
    return np.zeros_like(tangent) if isinstance(tangent, np.ndarray) else type(tangent)(0.0)


# ---- hvp and hessian: outer vector mode over the inner JVP --------------------------------------
def fresh_names(params, *bases):
    """Local names of a generated wrapper that no parameter of the user's function shadows."""
    taken, out = set(params), []
    for base in bases:
        name = base
        while name in taken:
            name += "_"
        taken.add(name)
        out.append(name)
    return out


def directional_source(name, jvp_name, np_name, params, active):
    """`def f_directional(x, a, v_x, v_a): return f_jvp(x, a, v_x, v_a)[1]`: x -> f'(x)[v]."""
    directions = fresh_names(params, *[f"v_{params[i]}" for i in active])
    value, tangent = fresh_names(list(params) + directions, "value", "tangent")
    head = ", ".join(list(params) + directions)
    return f"def {name}({head}):\n    {value}, {tangent} = {jvp_name}({head})\n    return {tangent}\n"


def gradient_source(name, jvp_name, np_name, params, active):
    """The gradient as a loop of inner JVPs along unit directions (`seed_x[k]` is x's part of
    the k-th unit vector): the outer pass differentiates each of them."""
    seeds = fresh_names(params, *[f"seed_{params[i]}" for i in active])
    n, k, gradient, value, tangent = fresh_names(list(params) + seeds, "n", "k", "gradient", "value", "tangent")
    call = ", ".join(list(params) + [f"{s}[{k}]" for s in seeds])
    return (f"def {name}({', '.join(list(params) + seeds)}):\n"
            f"    {n} = {seeds[0]}.shape[0]\n"
            f"    {gradient} = {np_name}.empty({n}, {np_name}.float64)\n"
            f"    for {k} in range({n}):\n"
            f"        {value}, {tangent} = {jvp_name}({call})\n"
            f"        {gradient}[{k}] = {tangent}\n"
            f"    return {gradient}\n")


def wrapper_builder(forward, make_source, suffix):
    """A builder for outer_function: the wrapper around spec's JVP, differentiated wrt the
    primals that spec differentiates."""
    def build(spec):
        name = f"{spec.unit.name}_{suffix}"
        params = forward.parameters
        jvp_name, np_name = fresh_names(params, f"{spec.unit.name}_jvp", "np")
        source = make_source(name, jvp_name, np_name, params, sorted(spec.active))
        function = generated_function(source, name, {jvp_name: spec.jvp, np_name: np}, forward.py_func)
        return function, tuple(sorted(spec.active))
    return build


def scalar_specialization(forward, args, active, what):
    """The specialization of a function returning a float scalar (the Hessian's domain)."""
    spec = forward.specialization(args, active)
    kind = spec.types.return_kind
    if kind is None or kind.shape != "scalar":
        raise FwdadError(f"{forward.__name__}.{what} needs a function that returns a float scalar; "
                         f"{spec.unit.name} returns {kind or 'a value without tangent'}.\n"
                         "What to do: return a scalar, or use f.jvp2 for the second derivative of "
                         "a vector output along a direction.")
    return spec


def hessian_vector_product(forward, args, active, directions):
    """H . v by the outer gradient of x -> f'(x)[v]: one outer direction per input scalar."""
    spec = scalar_specialization(forward, args, active, "hvp")
    outer = outer_function(forward, spec, "hvp", wrapper_builder(forward, directional_source, "directional"))
    _, gradient = outer.value_and_grad(*args, *directions)
    return gradient


def unit_seeds(args, active):
    """seed_x of shape (n,) + x.shape per active argument: the rows of the n x n identity."""
    sizes = [int(np.size(args[i])) for i in active]
    n, start, seeds = sum(sizes), 0, []
    for i, size in zip(active, sizes):
        block = np.zeros((n, size), np.float64)
        block[start:start + size] = np.eye(size)
        dtype = args[i].dtype if isinstance(args[i], np.ndarray) else np.float64
        seeds.append(block.reshape((n,) + np.shape(args[i])).astype(dtype))
        start += size
    return seeds


def hessian(forward, args, active, sparse=False):
    """Per pair of active arguments (i, j) the block of shape args[i].shape + args[j].shape."""
    spec = scalar_specialization(forward, args, active, "hessian")
    outer = outer_function(forward, spec, "hessian", wrapper_builder(forward, gradient_source, "gradient"))
    seeds = unit_seeds(args, active)
    if sparse:
        return outer.jacobian(*args, *seeds, sparse=True)
    columns = outer.jacobian(*args, *seeds)
    rows, start, blocks = {}, 0, [[None] * len(args) for _ in args]
    for i in active:
        size = int(np.size(args[i]))
        rows[i] = (start, start + size)
        start += size
    for i in active:
        lo, hi = rows[i]
        for j in active:
            block = np.asarray(columns[j])[lo:hi].reshape(np.shape(args[i]) + np.shape(args[j]))
            blocks[i][j] = block if block.ndim else float(block)
    return tuple(tuple(row) if i in active else None for i, row in enumerate(blocks))


# ---- callees whose code depends on the argument types --------------------------------------------
class TypedCallee:
    """A function Numba compiles as it is (an @overload stub) but whose code depends on the
    argument types at the call: `stub.fwdad_typed(arg_types)` names the readable function that
    runs for them and the argument positions it takes. fwdad differentiates a one-line wrapper
    `def stub(a0, a1, a2, a3): return implementation(a0, a1, a3)` per argument types.

    Two kinds: `g.tangent_njit` called inside differentiated code (its derivative is that of g's
    tangent code: forward over forward) and fwdad_runtime.norm_ord_jvp in tangent code."""

    def __init__(self, compiler, stub):
        self.compiler, self.stub = compiler, stub
        self.choose = stub.fwdad_typed
        self.wrappers = {}
        digest = getattr(stub, "fwdad_digest", None)
        self.digest = f"typed {digest() if digest is not None else stub.__qualname__}"

    def is_current(self):
        current = getattr(self.stub, "fwdad_is_current", None)
        return current() if current is not None else True

    def dispatcher(self, target):
        return self.stub

    def wrapper_unit(self, arg_types):
        key = tuple(types.unliteral(t) for t in arg_types)
        if key not in self.wrappers:
            implementation, positions = self.choose(key)
            name = self.stub.__name__
            params = [f"a{i}" for i in range(len(arg_types))]
            call = ", ".join(params[i] for i in positions)
            source = f"def {name}({', '.join(params)}):\n    return implementation({call})\n"
            at = getattr(self.stub, "fwdad_defined_at", None) or self.stub
            function = generated_function(source, name, {"implementation": implementation}, at)
            self.wrappers[key] = self.compiler.unit(function)
        return self.wrappers[key]

    def specialization(self, arg_types, active, mode):
        return self.wrapper_unit(arg_types).specialization(arg_types, active, mode)

    def written_parameters(self, arg_types):
        return self.wrapper_unit(arg_types).written_parameters()


def tangent_njit_implementation(forward):
    """fwdad_typed of `forward.tangent_njit`: its specialization's JVP for the call's types
    (the primals, then the tangents that are not None)."""
    n = len(forward.parameters)

    def choose(arg_types):
        primal_types = tuple(arg_types[:n])
        active = tuple(i for i, t in enumerate(arg_types[n:]) if not isinstance(t, NONE_TYPES))
        spec = forward.unit.specialization(primal_types, active)
        return spec.jvp, tuple(range(n)) + tuple(n + i for i in active)
    return choose
