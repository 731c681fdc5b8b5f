"""Batched JVPs: one instance per thread (CUDA), per core (parallel) or per loop step (cpu).

As in JAX's vmap, arrays carry a leading batch axis by default and scalars are broadcast;
`in_axes` (0 or None per argument) overrides, e.g. for weights shared by every instance.
The function must return a float scalar or a tuple of scalars for each instance.
"""
import numpy as np
from numba.core import types

from .. import options
from ..arguments import check_tangent, primals_and_tangents, refuse_foreign_byte_order
from ..device import host_like, is_device_array
from ..errors import FwdadError, TangentMismatchError


def is_axis(value):
    """0 (a Python or NumPy integer, not False or 0.0) or None."""
    return value is None or (options.is_integer(value) and value == 0)


def axes_for(primals, in_axes):
    """0 or None per argument. A single in_axes value applies to the arrays (scalars broadcast)."""
    is_array = [isinstance(p, np.ndarray) or is_device_array(p) for p in primals]
    if in_axes is None or not isinstance(in_axes, (tuple, list)):
        axis = 0 if in_axes is None else in_axes
        if not is_axis(axis):
            options.refuse("batch_jvp", "in_axes", in_axes, "0, None, or a tuple of them per argument",
                           "pass in_axes=0 (every array batched) or e.g. (0, None) per argument.")
        return tuple(0 if array and axis is not None else None for array in is_array)
    in_axes = tuple(in_axes)
    if len(in_axes) != len(primals) or not all(is_axis(a) for a in in_axes):
        options.refuse("batch_jvp", "in_axes", in_axes, f"a tuple of {len(primals)} entries, each 0 or None",
                       "pass 0 for an argument batched along its first axis, None for a shared one.")
    in_axes = tuple(None if a is None else 0 for a in in_axes)
    for i, (axis, array) in enumerate(zip(in_axes, is_array)):
        if axis == 0 and not array:
            raise FwdadError(f"batch_jvp: argument {i} is a scalar, so it has no batch axis.\n"
                             "What to do: use None for it in in_axes (it is then shared by every instance).")
    return in_axes


def shape_of(value):
    return value.shape if hasattr(value, "shape") else np.shape(value)


def batch_size(forward, primals, axes):
    sizes = {shape_of(p)[0] for p, a in zip(primals, axes) if a == 0}
    if not sizes:
        raise FwdadError(f"{forward.__name__}.batch_jvp: no argument has a batch axis.\nWhat to do: "
                         "pass arrays whose first axis indexes the instances (in_axes=0).")
    if len(sizes) > 1:
        raise FwdadError(f"{forward.__name__}.batch_jvp: batched arguments disagree on the batch "
                         f"size: {sorted(sizes)}.")
    return sizes.pop()


def instance(value, axis):
    """One instance of an argument: a row of a batched array, the value itself if broadcast."""
    value = host_like(value)
    return value[0] if axis == 0 else value


def output_items(spec):
    """Numba types of the per-instance outputs (a scalar or a tuple of scalars), or an error."""
    return_type = spec.types.return_type
    items = tuple(return_type) if isinstance(return_type, types.BaseTuple) else (return_type,)
    if not all(isinstance(types.unliteral(t), (types.Float, types.Integer, types.Boolean)) for t in items):
        raise FwdadError(f"{spec.unit.name}: batch_jvp needs each instance to return a scalar or a "
                         f"tuple of scalars, not {return_type}.\nWhat to do: return scalars, or "
                         "write array results into an output argument (its tangent is updated in place).")
    return tuple(np.dtype(str(types.unliteral(t))) for t in items), isinstance(return_type, types.BaseTuple)


def source(spec, axes, active, dtypes, is_tuple, loop):
    """The batched loop (or kernel) calling the per-instance tangent function; `loop`: the
    target's lines that run the body once per instance i (a range, a prange, a CUDA grid)."""
    n_args = len(axes)
    args = [f"a{j}" for j in range(n_args)]
    tangents = [f"t{j}" for j in sorted(active)]
    outs = [f"v{m}" for m in range(len(dtypes))] + [f"d{m}" for m in range(len(dtypes))]
    call = [f"{a}[i]" if axes[j] == 0 else a for j, a in enumerate(args)]
    call += [f"t{j}[i]" if axes[j] == 0 else f"t{j}" for j in sorted(active)]
    body = [f"value, tangent = jvp({', '.join(call)})"]
    for m in range(len(dtypes)):
        suffix = f"[{m}]" if is_tuple else ""
        body.append(f"v{m}[i] = value{suffix}")
        kind = spec.types.return_kind
        if kind is not None and is_tuple:
            kind = kind.items[m]
        body.append(f"d{m}[i] = tangent{suffix}" if kind is not None else f"d{m}[i] = 0.0")
    head = f"def batch({', '.join(args + tangents + outs)}):"
    lines = ["    " + line for line in loop] + ["        " + b for b in body]
    return "\n".join([head] + lines) + "\n"


def batch_kernel(target, spec, axes, active):
    """(the batch loop or kernel compiled for `target`, the output dtypes), once per layout."""
    def build():
        dtypes, is_tuple = output_items(spec)
        return target.compile_batch(source(spec, axes, active, dtypes, is_tuple, target.batch_loop()), spec), dtypes
    return spec.driver(("batch", target.name, axes), build)


def batch_jvp(forward, primals, tangents, in_axes=None):
    """Values and tangents of every instance: arrays with a leading batch axis."""
    who = f"{forward.__name__}.batch_jvp"
    primals, tangents = primals_and_tangents(who, primals, tangents)
    refuse_foreign_byte_order(who, forward.parameters, primals)     # rows of them would be native
    refuse_foreign_byte_order(who, [f"the tangent of {p}" for p in forward.parameters], tangents)
    if len(tangents) != len(primals):
        raise TangentMismatchError(f"{forward.__name__}.batch_jvp got {len(primals)} primals but "
                                   f"{len(tangents)} tangents.")
    axes = axes_for(primals, in_axes)
    n = batch_size(forward, primals, axes)
    active = [j for j, t in enumerate(tangents) if t is not None]
    for j in active:
        if shape_of(tangents[j]) != shape_of(primals[j]):
            raise TangentMismatchError(
                f"{forward.__name__}.batch_jvp: the tangent of argument {forward.parameters[j]!r} has "
                f"shape {shape_of(tangents[j])}, the argument {shape_of(primals[j])}.")
    samples = tuple(instance(p, a) for p, a in zip(primals, axes))
    for j in active:
        check_tangent(forward.__name__, forward.parameters[j], j, samples[j], instance(tangents[j], axes[j]))
    spec = forward.specialization(samples, active)
    return forward.backend.batch_jvp(forward, spec, axes, active, primals, tangents, n)


def package(spec, values, derivs):
    kind = spec.types.return_kind
    is_tuple = isinstance(spec.types.return_type, types.BaseTuple)
    if not is_tuple:
        return values[0], (derivs[0] if kind is not None else None)
    items = kind.items if kind is not None else (None,) * len(values)
    return tuple(values), tuple(d if k is not None else None for d, k in zip(derivs, items))
