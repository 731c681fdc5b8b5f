"""Second derivatives: fwdad differentiates the tangent code it generated (forward over forward).

A specialization's tangent code is plain numeric Python of the same subset (loops, NumPy calls,
`fwdad_runtime` helpers written in that subset), so fwdad reads it the way it reads a user's
helper: no second rule table and no tags. Three small generated functions connect the layers,
each compiled like user code (docs/second-order.md prints them):

* `f.jvp2`: the outer JVP of the inner tangent function itself, seeded with the same direction
  for the primals and zero for the inner tangents: value, f'[v] and f''[v, v] in one pass.
* `f.hvp`: the gradient (outer vector mode) of `x -> f'(x)[v]`, a one-line wrapper.
* `f.hessian`: the Jacobian (outer vector mode) of the gradient, written as a loop of inner
  JVPs along the unit vectors; with `sparse=True` (the pattern found by fwdad.sparse.hessian,
  or `sparsity=P`) one outer direction per color of a star coloring (fwdad/sparse/hessian.py).
"""
import warnings
import weakref

import numpy as np

from . import options, runtime
from .arguments import per_argument, zero_like
from .compiler import USER_RULES
from .drivers.gradients import scalar_output_required
from .errors import FwdadError, FwdadWarning, TangentMismatchError, user_stacklevel
from .nested import generated_function
from .transform.naming import Names

RUNTIME_FILE = runtime.__file__
LARGE_HESSIAN = 500                       # inputs above which hessian warns of its cost
INNER = "plain"       # the inner tangent code is the tangent pass's, without elementwise fusion:
                      # the outer pass reads plain statements (a fused loop's 0-d reads did not type)
OUTER = weakref.WeakKeyDictionary()       # specialization -> {kind: outer ForwardFunction}


def outer_function(forward, spec, kind, build):
    """The ForwardFunction over generated code `build(spec)`, made once per specialization."""
    made = OUTER.setdefault(spec, {})
    if kind not in made:
        function, wrt = build(spec)
        made[kind] = type(forward)(function, wrt=wrt)
    return made[kind]


# ---- the entry points (ForwardFunction's methods call these) -----------------------------------------
def jvp2(forward, primals, active, checked):
    """(f, f'[v], f''[v, v]) for the checked tangents of the active arguments."""
    refuse_rule(forward, "jvp2")
    if not active:                        # zero derivatives, shaped as jvp gives them
        value, first = forward.jvp(primals, (None,) * len(primals))
        return value, first, first
    return guarded(forward, lambda: taylor2(forward, primals, checked, active))


def hvp(forward, args, active, given, checked):
    """H . v, one entry per argument (None for the ones not differentiated)."""
    if sorted(given) != sorted(active):
        raise TangentMismatchError(
            f"{forward.__name__}.hvp: v has entries for arguments {given}, but the differentiated "
            f"arguments are {active}.\nWhat to do: pass one direction per differentiated argument "
            "(wrt, else every float argument) and None for the others.")
    refuse_rule(forward, "hvp")
    product = guarded(forward, lambda: hessian_vector_product(forward, args, active, checked))
    return per_argument(product, active, args)


def hessian(forward, args, active, sparse, sparsity):
    who = f"{forward.__name__}.hessian"
    sparse = options.flag(who, "sparse", sparse) or sparsity is not None
    refuse_rule(forward, "hessian")
    return guarded(forward, lambda: dense_or_sparse_hessian(forward, args, active, sparse, sparsity))


def refuse_rule(forward, method):
    if USER_RULES.get(forward.py_func) is not None:
        raise FwdadError(
            f"{forward.__name__}.{method}: {forward.__name__} has a defjvp rule, which gives first "
            "derivatives only.\nWhat to do: differentiate the function's own code (drop the rule), "
            "or call a function that uses it: fwdad reads the rule's source as it reads any helper.")


def guarded(forward, compute):
    """Run a second-order computation. A refusal located in fwdad's own tangent code (generated,
    or a fwdad_runtime helper) names the user's function and says what the user can do, since
    the user cannot edit that code; any other error (about the user's code or arguments) passes."""
    try:
        return compute()
    except FwdadError as error:
        text = str(error)
        if not text.startswith(("<fwdad ", RUNTIME_FILE)):
            raise
        what = text.split("\nWhat to do:")[0]
        error.args = (f"{forward.__name__}: fwdad cannot differentiate its own tangent code of this "
                      f"function a second time; the first derivatives work. The tangent code's "
                      f"operation it stopped at:\n{what}\nWhat to do: avoid that operation for second "
                      "derivatives (docs/second-order.md, 'What is refused', lists them), or move it "
                      "into a helper with a fwdad.defjvp rule whose tangent fwdad can differentiate.",
                      ) + error.args[1:]
        raise


# ---- jvp2: the tangent code differentiated once more along the same direction ------------------
def taylor2(forward, primals, checked, active):
    """(value, f'[v], f''[v, v]) for the checked tangents of the active arguments: the outer JVP
    of the inner tangent function along (v, 0), called directly (its arguments are checked)."""
    spec = forward.specialization(primals, active, INNER)
    outer = outer_function(forward, spec, "jvp2", lambda s: (s.jvp.py_func, None))
    inner = tuple(checked)
    arguments = tuple(primals) + inner
    outer_spec = outer.specialization(arguments, list(active) + list(range(len(primals), len(arguments))))
    directions = inner + tuple(zero_like(t) for t in inner)
    (value, first), (_, second) = outer.run(outer_spec, outer_spec.jvp, arguments + directions)
    return value, first, second


# ---- hvp and hessian: outer vector mode over the inner JVP --------------------------------------
def directional_source(name, names, jvp_name, np_name, params, active, written=(), primal_name=None,
                       arrays=()):
    """`def f_directional(x, a, v_x, v_a): return f_jvp(x, a, v_x, v_a)[1]`: x -> f'(x)[v].
    `names` hands out local names that no parameter or global of the wrapper shadows."""
    directions = [names.fresh(f"v_{params[i]}") for i in active]
    value, tangent = names.fresh("value"), names.fresh("tangent")
    head = ", ".join(list(params) + directions)
    return f"def {name}({head}):\n    {value}, {tangent} = {jvp_name}({head})\n    return {tangent}\n"


def gradient_source(name, names, jvp_name, np_name, params, active, written=(), primal_name=None, arrays=()):
    """The gradient as a loop of inner JVPs along unit directions (`seed_x[k]` is x's part of
    the k-th unit vector): the outer pass differentiates each of them. An argument the function
    writes into is copied for each inner JVP (each must see the caller's values) and written
    once at the end by the primal, as one call of the function leaves it. The seeds of the
    `arrays` are copied too: the rows of unit_seeds share memory and are read-only (and a copy
    is contiguous, which `@` in the tangent code prefers)."""
    seeds = [names.fresh(f"seed_{params[i]}") for i in active]
    n, k, gradient, value, tangent = (names.fresh(base) for base in ("n", "k", "gradient", "value", "tangent"))
    inputs = [f"{p}.copy()" if i in written else p for i, p in enumerate(params)]
    call = ", ".join(inputs + [f"{s}[{k}].copy()" if i in arrays else f"{s}[{k}]" for i, s in zip(active, seeds)])
    write_once = f"    {primal_name}({', '.join(params)})\n" if written else ""
    return (f"def {name}({', '.join(list(params) + seeds)}):\n"
            f"    {n} = {seeds[0]}.shape[0]\n"
            f"    {gradient} = {np_name}.empty({n}, {np_name}.float64)\n"
            f"    for {k} in range({n}):\n"
            f"        {value}, {tangent} = {jvp_name}({call})\n"
            f"        {gradient}[{k}] = {tangent}\n"
            f"{write_once}"
            f"    return {gradient}\n")


def wrapper_builder(forward, make_source, suffix):
    """A builder for outer_function: the wrapper around spec's JVP, differentiated wrt the
    primals that spec differentiates. Its globals and locals are fresh against the parameters
    (a parameter called `k`, `np` or `gradient` is never shadowed) and against each other."""
    def build(spec):
        name = f"{spec.unit.name}_{suffix}"
        params = forward.parameters
        names = Names(list(params) + [name])
        jvp_name, np_name, primal_name = (names.fresh(base) for base in (f"{spec.unit.name}_jvp", "np", spec.unit.name))
        arrays = {i for i in spec.active if spec.param_kind(i).shape == "array"}
        source = make_source(name, names, jvp_name, np_name, params, sorted(spec.active),
                             spec.unit.written_parameters(), primal_name, arrays)
        function = generated_function(source, name, {jvp_name: spec.jvp, np_name: np,
                                                     primal_name: spec.unit.primal})
        return function, tuple(sorted(spec.active))
    return build


def scalar_specialization(forward, args, active, what):
    """The specialization of a function returning a float scalar (the Hessian's domain)."""
    spec = forward.specialization(args, active, INNER)
    scalar_output_required(spec, f"{forward.__name__}.{what}")
    return spec


def hessian_vector_product(forward, args, active, directions):
    """H . v by the outer gradient of x -> f'(x)[v]: one outer direction per input scalar."""
    spec = scalar_specialization(forward, args, active, "hvp")
    outer = outer_function(forward, spec, "hvp", wrapper_builder(forward, directional_source, "directional"))
    _, gradient = outer.value_and_grad(*args, *directions)
    return [gradient[i] for i in active]


def unit_seeds(args, active):
    """seed_x of shape (n,) + x.shape per active argument: the rows of the n x n identity, each a
    read-only strided view of one vector of n + x.size - 1 zeros (row k starts one element
    before row k - 1): O(n) memory instead of n x n floats (800 MB at n = 10,000)."""
    sizes = [int(np.size(args[i])) for i in active]
    n, start, seeds = sum(sizes), 0, []
    for i, size in zip(active, sizes):
        dtype = args[i].dtype if isinstance(args[i], np.ndarray) else np.dtype(np.float64)
        line = np.zeros(n - 1 + size, dtype)
        line[n - 1 - start] = 1               # row k, element j: line[n - 1 - k + j], 1 where j = k - start
        element_strides = np.cumprod((1,) + np.shape(args[i])[:0:-1])[::-1] if np.ndim(args[i]) else ()
        strides = (-dtype.itemsize,) + tuple(int(s) * dtype.itemsize for s in element_strides)
        seeds.append(np.lib.stride_tricks.as_strided(line[n - 1:], (n,) + np.shape(args[i]), strides,
                                                     writeable=False))
        start += size
    return seeds


def dense_or_sparse_hessian(forward, args, active, sparse, sparsity):
    """Per pair of active arguments (i, j) the block of shape args[i].shape + args[j].shape; with
    `sparse`, one CSR matrix over the flattened active arguments."""
    spec = scalar_specialization(forward, args, active, "hessian")
    outer = outer_function(forward, spec, "hessian", wrapper_builder(forward, gradient_source, "gradient"))
    seeds = unit_seeds(args, active)
    n = seeds[0].shape[0]
    if n > LARGE_HESSIAN and not sparse:
        warnings.warn(
            f"{forward.__name__}.hessian: {n} inputs: forward over forward runs about {n} x {n} "
            "directional passes (minutes for n in the thousands). For a sparse Hessian pass "
            "sparse=True (n x colors passes), for a direction use f.jvp2, for H.v f.hvp; see "
            "docs/second-order.md.", FwdadWarning, stacklevel=user_stacklevel())
    if sparse:
        from .sparse import hessian as sparse_hessian
        pattern = sparse_hessian.cached_hessian_pattern(forward, args) if sparsity is None else \
            sparse_hessian.hessian_pattern(forward, sparsity, args, active)
        return sparse_hessian.compressed_hessian(outer, tuple(args) + tuple(seeds), active, pattern)
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
            blocks[i][j] = block if block.ndim else per_argument([block], [i], args)[i]
    return tuple(tuple(row) if i in active else None for i, row in enumerate(blocks))


