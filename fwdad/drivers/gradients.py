"""Compiled drivers around a tangent function: forward gradients, exact gradients, Jacobians.

Each driver is generated for one specialization (argument types, active arguments) as readable
Python and compiled with Numba, so that sampling directions, the JVPs and the accumulation run
as one native loop. Every driver accumulates g[i] = sum_k t_k v_k[i] in the same order, so the
sequential, vector-mode and parallel drivers return bit-identical forward gradients.
"""
import ast

import numba
import numpy as np

from .. import random as fwdrandom
from .. import cache as disk_cache
from ..codegen import NUMBA_OPTIONS, compile_source, header, module_of
from ..errors import FwdadError

DIRECTION_ENTRIES = 2 ** 25     # tangent entries one forward_gradient pass may hold (~256 MB)


class Active:
    """An active argument as the drivers see it: its position, name and kind."""

    def __init__(self, position, kind):
        self.position, self.kind = position, kind
        self.arg = f"a{position}"               # names in the generated driver: the argument,
        self.grad = f"g{position}"              # its gradient, one direction of it,
        self.direction = f"v{position}"
        self.tangent = f"d{position}"           # its tangents (vector mode: K wide)
        self.offset = f"o{position}"            # and its first index in the flat gradient

    @property
    def scalar(self):
        return self.kind.shape == "scalar"

    @property
    def dtype(self):
        return f"np.{self.kind.dtype}"

    def size(self):
        return "1" if self.scalar else f"{self.arg}.size"


def actives(spec):
    return [Active(i, spec.param_kind(i)) for i in sorted(spec.active)]


def offsets(active):
    """Lines computing the global index offset of each active argument."""
    lines, previous = [], "0"
    for a in active:
        lines.append(f"{a.offset} = {previous}")
        previous = f"{a.offset} + {a.size()}"
    lines.append(f"n = {previous}")
    return lines


def compile_driver(source, name, namespace, parallel=False, spec=None):
    """The driver `name` defined in the generated `source`, compiled with Numba. Around the code of
    a cache=True function (`spec`), its module is a file in the cache directory named after its
    source and the function's content key, so that Numba's disk cache keeps the driver too (a
    new process would otherwise compile it, and with it the tangent code it calls, again)."""
    options = dict(NUMBA_OPTIONS, parallel=parallel) if parallel else NUMBA_OPTIONS
    if spec is not None and spec.unit.cache:
        unit = spec.unit
        description = (f"{name}, driver of the tangent code of {unit.name}; arguments "
                       f"({', '.join(map(str, spec.arg_types))}); active {sorted(spec.active)}; "
                       f"{spec.mode} mode ({unit.digest})")
        module = module_of(header(description) + source, {}, description, unit.parsed.filename,
                           namespace, unit.module_dir())
        return disk_cache.njit(module[name], True, **options)
    return compile_source(source, name, namespace, numba.njit(**options))


def direction_passes(directions, total):
    """(first, count) of each pass of forward_gradient: at most DIRECTION_ENTRIES // total
    directions at a time, so that any `directions` runs in bounded memory (the K-wide tangents
    of vector mode, the K per-direction values of the parallel driver). The directions drawn
    are those of one pass (direction k is drawn from (seed, k) whatever the pass)."""
    per_pass = max(1, DIRECTION_ENTRIES // max(total, 1))
    return [(first, min(per_pass, directions - first)) for first in range(0, directions, per_pass)]


def directions_fit(directions, size):
    """Whether K directions of `size` parameters fit one pass's K-wide buffers."""
    return directions * max(size, 1) <= DIRECTION_ENTRIES


def chunk_size(args, active, chunk):
    """Directions per pass for these arguments (chunk_for)."""
    return chunk_for(sum(np.size(args[i]) for i in active), chunk)


def chunk_for(total, chunk):
    """Directions per pass for `total` active scalars: `chunk` clamped to them (a larger chunk
    would only allocate wider tangents), else up to 32 within about 2**25 tangent entries."""
    return min(int(chunk), max(total, 1)) if chunk else max(1, min(32, total, 2 ** 25 // max(total, 1)))


def parameter_names(spec):
    return [a.arg for a in spec.unit.parsed.tree.args.args]


def refuse_written_arguments(spec, what):
    """Refuse a function that writes into an argument: `what` evaluates it several times at one point."""
    written = writes_arguments(spec)
    if written:
        raise FwdadError(
            f"{spec.unit.name} writes into its argument {parameter_names(spec)[written[0]]!r}; "
            f"{what} evaluates the function at the same point for every direction.\nWhat to do: "
            "copy the argument inside the function first.")


def forward_gradient_driver(target, scalar, vector, directions):
    """(compiled forward_gradient driver, the specialization it runs) on a CPU `target`."""
    def build():
        scalar_output_required(scalar, "forward_gradient")
        refuse_written_arguments(scalar, "forward_gradient")
        generator, spec = target.forward_gradient_generator(scalar, vector, directions)
        return compile_driver(generator(spec), generator.__name__, namespace(spec), target.parallel, spec), spec
    return scalar.driver(("forward_gradient", target.name, directions > 1), build)


def exact_gradient_driver(target, scalar, vector, jacobian):
    """(compiled value_and_grad or jacobian driver, the specialization it runs), by chunked
    vector mode, or one direction at a time when the function has no vector form."""
    def build():
        if not jacobian:
            scalar_output_required(scalar, "value_and_grad")
        elif scalar.types.return_kind is None or scalar.types.return_kind.shape == "tuple":
            raise FwdadError(
                f"{scalar.unit.name}.jacobian needs a function returning one float scalar or "
                f"float array, not {scalar.types.return_type}.\nWhat to do: return one "
                "array (stack the outputs), or differentiate each output separately.")
        generator, spec = (value_and_grad_vector, vector) if vector.vectorizable else \
            (value_and_grad_sequential, scalar)
        return compile_driver(generator(spec, jacobian), generator.__name__, namespace(spec),
                              target.parallel, spec), spec
    return scalar.driver(("jacobian" if jacobian else "value_and_grad", target.name), build)


def namespace(spec):
    return {"np": np, "jvp": spec.jvp, "fill": fwdrandom.fill, "sample": fwdrandom.sample,
            "stream_key": fwdrandom.stream_key, "prange": numba.prange}


def signature(spec, extra):
    params = [f"a{i}" for i in range(len(spec.arg_types))]
    return ", ".join(params + extra), params


def jvp_call(spec, tangents):
    params = [f"a{i}" for i in range(len(spec.arg_types))]
    return f"jvp({', '.join(params + tangents)})"


# ---- forward gradients ----------------------------------------------------------------------------
def forward_gradient_sequential(spec):
    """K scalar-mode JVPs, one direction at a time (also the K = 1 driver)."""
    active = actives(spec)
    head, _ = signature(spec, ["seed", "first", "K", "distribution", "table"])
    lines = offsets(active)
    for a in active:
        shape = "1" if a.scalar else f"{a.arg}.shape"
        lines += [f"{a.direction} = np.empty({shape}, {a.dtype})", f"{a.grad} = np.zeros({shape}, {a.dtype})"]
    lines.append("value = 0.0")
    body = [f"fill({a.direction}, table, seed, first + k, {a.offset}, distribution)" for a in active]
    tangents = [f"{a.direction}[0]" if a.scalar else a.direction for a in active]
    body.append(f"value, t = {jvp_call(spec, tangents)}")
    for a in active:
        body += [f"{a.grad}f = {a.grad}.reshape({a.grad}.size)",
                 f"{a.direction}f = {a.direction}.reshape({a.direction}.size)",
                 f"for i in range({a.grad}.size):", f"    {a.grad}f[i] += t * {a.direction}f[i]"]
    lines.append("for k in range(K):")
    lines += ["    " + line for line in body]
    lines += [f"{a.grad} /= K" for a in active]
    results = [f"{a.grad}[0]" if a.scalar else a.grad for a in active]
    lines.append(f"return value, ({', '.join(results)},)")
    return render("forward_gradient_sequential", head, lines)


def forward_gradient_vector(spec):
    """One vector-mode pass carrying all K directions."""
    active = actives(spec)
    head, _ = signature(spec, ["seed", "first", "K", "distribution", "table"])
    lines = offsets(active)
    for a in active:
        if a.scalar:
            lines.append(f"{a.tangent} = np.empty(K, {a.dtype})")
        else:
            lines += [f"{a.tangent} = np.empty({a.arg}.shape + (K,), {a.dtype})",
                      f"{a.tangent}f = {a.tangent}.reshape({a.arg}.size, K)",
                      f"{a.direction} = np.empty({a.arg}.size, {a.dtype})"]
    lines.append("for k in range(K):")
    for a in active:
        if a.scalar:
            lines.append(f"    {a.tangent}[k] = sample(table, stream_key(seed, first + k), {a.offset}, distribution)")
        else:
            lines += [f"    fill({a.direction}, table, seed, first + k, {a.offset}, distribution)",
                      f"    {a.tangent}f[:, k] = {a.direction}"]
    lines.append(f"value, t = {jvp_call(spec, [a.tangent for a in active])}")
    for a in active:
        if a.scalar:
            lines += [f"{a.grad} = {a.tangent}.dtype.type(0)", "for k in range(K):",
                      f"    {a.grad} += t[k] * {a.tangent}[k]", f"{a.grad} /= K"]
        else:
            lines += [f"{a.grad} = np.empty({a.arg}.shape, {a.dtype})", f"{a.grad}f = {a.grad}.reshape({a.arg}.size)",
                      f"for i in range({a.arg}.size):", f"    s = {a.grad}f.dtype.type(0)",
                      "    for k in range(K):", f"        s += t[k] * {a.tangent}f[i, k]", f"    {a.grad}f[i] = s / K"]
    lines.append(f"return value, ({', '.join(a.grad for a in active)},)")
    return render("forward_gradient_vector", head, lines)


def forward_gradient_parallel(spec):
    """Directions spread over threads, then each component regenerated from the seed."""
    active = actives(spec)
    head, _ = signature(spec, ["seed", "first", "K", "distribution", "table"])
    lines = offsets(active)
    lines += ["ts = np.empty(K, np.float64)", "values = np.empty(K, np.float64)",
              "keys = np.empty(K, np.uint64)", "for k in range(K):",
              "    keys[k] = stream_key(seed, first + k)", "for k in prange(K):"]
    for a in active:
        shape = "1" if a.scalar else f"{a.arg}.shape"
        lines += [f"    {a.direction} = np.empty({shape}, {a.dtype})",
                  f"    fill({a.direction}, table, seed, first + k, {a.offset}, distribution)"]
    tangents = [f"{a.direction}[0]" if a.scalar else a.direction for a in active]
    lines += [f"    value, t = {jvp_call(spec, tangents)}", "    values[k] = value", "    ts[k] = t"]
    for a in active:
        lines += [f"{a.grad} = np.empty({'1' if a.scalar else a.arg + '.shape'}, {a.dtype})",
                  f"{a.grad}f = {a.grad}.reshape({a.grad}.size)",
                  f"for i in prange({a.grad}.size):", f"    s = {a.grad}f.dtype.type(0)",
                  "    for k in range(K):",
                  f"        s += {a.grad}f.dtype.type(ts[k]) * sample(table, keys[k], {a.offset} + i, distribution)",
                  f"    {a.grad}f[i] = s / K"]
    results = [f"{a.grad}[0]" if a.scalar else a.grad for a in active]
    lines.append(f"return values[0], ({', '.join(results)},)")
    return render("forward_gradient_parallel", head, lines)


# ---- exact gradients and Jacobians by chunked vector mode ----------------------------------------
def restoring(spec):
    """(lines saving the arrays the function writes into, lines restoring them before a pass).

    Exact gradients run the function once per chunk of directions; a function that writes into
    its argument (x[2] /= a) must see the caller's values in every pass, not the last pass's.
    """
    written = writes_arguments(spec)
    save = [f"s{i} = a{i}.copy()" for i in written]
    restore = [f"a{i}[...] = s{i}" for i in written]
    restore += [f"d{a.position}[...] = 0" for a in actives(spec) if a.position in written and not a.scalar]
    return save, restore


def value_and_grad_vector(spec, jacobian=False):
    """Unit tangents in chunks of C directions; C = 1 with the scalar-mode JVP as a fallback."""
    active = actives(spec)
    head, _ = signature(spec, ["C"])
    lines = offsets(active)
    for a in active:
        if a.scalar:
            lines += [f"{a.tangent} = np.zeros(C, {a.dtype})"]
        else:
            lines += [f"{a.tangent} = np.zeros({a.arg}.shape + (C,), {a.dtype})",
                      f"{a.tangent}f = {a.tangent}.reshape({a.arg}.size, C)"]

    def set_units(value):
        out = ["for j in range(c):", "    index = start + j"]
        for number, a in enumerate(active):
            test = "if" if number == 0 else "elif"
            target = f"{a.tangent}[j]" if a.scalar else f"{a.tangent}f[index - {a.offset}, j]"
            out += [f"    {test} index < {a.offset} + {a.size()}:", f"        {target} = {value}"]
        return out

    save, restore = restoring(spec)
    lines += save
    chunk = ["c = min(C, n - start)"] + restore + set_units(1) + \
        [f"value, t = {jvp_call(spec, [a.tangent for a in active])}"]
    if jacobian:
        chunk += ["tf = np.ascontiguousarray(t).reshape(-1, C)", "if start == 0:",
                  "    J = np.empty((tf.shape[0], n), tf.dtype)", "for j in range(c):",
                  "    J[:, start + j] = tf[:, j]"]
    else:
        chunk += ["for j in range(c):", "    G[start + j] = t[j]"]
    chunk += set_units(0)
    if jacobian:
        lines += ["start = 0"] + chunk + ["for start in range(C, n, C):"] + ["    " + s for s in chunk]
        lines.append("return value, J")
    else:
        lines += ["G = np.empty(n, np.float64)", "value = 0.0", "for start in range(0, n, C):"]
        lines += ["    " + s for s in chunk]
        lines.append("return value, G")
    return render("value_and_grad_vector", head, lines)


def value_and_grad_sequential(spec, jacobian=False):
    """One scalar-mode JVP per input component (when there is no vector form)."""
    active = actives(spec)
    head, _ = signature(spec, ["C"])
    lines = offsets(active)
    for a in active:
        shape = "1" if a.scalar else f"{a.arg}.shape"
        lines += [f"{a.tangent} = np.zeros({shape}, {a.dtype})", f"{a.tangent}f = {a.tangent}.reshape({a.tangent}.size)"]
    body = []
    for number, a in enumerate(active):
        test = "if" if number == 0 else "elif"
        body += [f"{test} index < {a.offset} + {a.size()}:", f"    {a.tangent}f[index - {a.offset}] = 1"]
    save, restore = restoring(spec)
    lines += save
    body = restore + body
    tangents = [f"{a.tangent}[0]" if a.scalar else a.tangent for a in active]
    body.append(f"value, t = {jvp_call(spec, tangents)}")
    body += [f"{a.tangent}f[:] = 0" for a in active]
    if jacobian:
        body += ["tf = np.ascontiguousarray(np.asarray(t)).reshape(-1)", "if index == 0:",
                 "    J = np.empty((tf.shape[0], n), tf.dtype)", "J[:, index] = tf"]
        lines += ["index = 0"] + body + ["for index in range(1, n):"] + ["    " + s for s in body]
        lines.append("return value, J")
    else:
        lines += ["G = np.empty(n, np.float64)", "value = 0.0", "for index in range(n):"]
        lines += ["    " + s for s in body] + ["    G[index] = t"]
        lines.append("return value, G")
    return render("value_and_grad_sequential", head, lines)


def render(name, head, lines):
    body = "\n".join("    " + line for line in lines)
    return f"def {name}({head}):\n{body}\n"


def split(flat, active, args):
    """Per-argument views of a flat vector (gradient) or of a Jacobian's last axis."""
    out, start = [], 0
    for a in active:
        value = args[a.position]
        size = 1 if a.scalar else value.size
        part = flat[..., start:start + size]
        if a.scalar:
            part = part[..., 0]
            out.append(float(part) if np.ndim(part) == 0 else part)
        else:
            out.append(part.reshape(flat.shape[:-1] + value.shape).astype(value.dtype, copy=False))
        start += size
    return out


def scalar_output_required(spec, what):
    kind = spec.types.return_kind
    if kind is None or kind.shape != "scalar":
        raise FwdadError(f"{what} needs a function that returns a float scalar; "
                         f"{spec.unit.name} returns {kind or 'a value without tangent'}.\n"
                         "What to do: return the scalar loss, or use f.jvp / f.jacobian for "
                         "vector outputs.")


def writes_arguments(spec):
    """Positions of array arguments the function writes into, directly, through an alias or a
    view, or inside a function it calls."""
    params = [a.arg for a in spec.unit.normalized.tree.args.args]
    activity, written = spec.activity, set()
    for node in ast.walk(spec.unit.normalized.tree):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Subscript):
            written.add(activity.find(node.targets[0].value.id))
        if isinstance(node, ast.AugAssign) and activity.holds_arrays(node.target.id):
            written.add(activity.find(node.target.id))
    found = {i for i, p in enumerate(params) if activity.find(p) in written}
    found |= spec.unit.written_parameters()
    return sorted(i for i in found if isinstance(spec.arg_types[i], numba.types.Array))

