"""The arguments of a call as compiled code sees them: Numba's types (and a cheap key for
them), which are floats, and the checks that refuse what compiled code cannot take."""
import numba
import numpy as np
from numba._dispatcher import compute_fingerprint

from . import options
from .errors import OptionError, TangentMismatchError


def fast_key(value):
    """A cheap key that determines Numba's type of an argument (numba.typeof costs ~7 us on arrays)."""
    if isinstance(value, np.ndarray):
        flags = value.flags
        return (value.dtype.num, value.ndim, flags.c_contiguous, flags.f_contiguous, flags.writeable,
                flags.aligned, value.dtype.isnative)
    kind = type(value)
    if kind in (float, int, bool) or isinstance(value, np.generic):
        return kind
    return arg_type(value)


def type_key(values):
    """A key that determines Numba's type of every value, or None where there is none (a string,
    an empty list): Numba's own type fingerprint (C code, about 50 ns a value) and the Python
    type (the fingerprint of a masked array or a float subclass is that of its base). The
    fingerprint leaves out byte order: prepared calls check it (foreign_array)."""
    try:
        return tuple(map(compute_fingerprint, values)) + tuple(map(type, values))
    except Exception:                   # NotImplementedError, ValueError: no fingerprint
        return None


def holding_arrays(key):
    """The positions whose value may be or hold an array, from its type_key (whose byte order the
    fingerprint leaves out)."""
    return tuple(i for i in range(len(key) // 2) if b"A" in key[i])


def foreign_array(value):
    """The first array in non-native byte order in `value` (itself, or inside a tuple or list)."""
    if isinstance(value, np.ndarray):
        return None if value.dtype.isnative else value
    if isinstance(value, (tuple, list)):
        return next(filter(lambda found: found is not None, map(foreign_array, value)), None)
    return None


def refuse_foreign_byte_order(who, names, values):
    """Refuse an array in non-native byte order (np.zeros(3, '>f8')), also inside a tuple or a
    list: Numba types a bare one as a Python object, but reuses code compiled for native arrays
    for one in a tuple (reading its bytes wrongly), and a key without the byte order would too."""
    for name, value in zip(names, values):
        found = foreign_array(value) if type(value) not in (tuple, list) or may_hold_array(value) else None
        if found is not None:
            where = f"argument {name!r} is" if found is value else f"argument {name!r} holds"
            fix = f"{name}.astype({name}.dtype.newbyteorder('='))" if found is value else \
                "each such array as a.astype(a.dtype.newbyteorder('='))"
            raise OptionError(f"{who}: {where} an array of dtype {found.dtype.str!r}, in non-native "
                              f"byte order, which compiled code cannot read.\nWhat to do: pass {fix}.")


def refuse_foreign_byte_order_inside(who, names, values):
    """refuse_foreign_byte_order, per call, for arrays inside tuples and lists (Numba refuses a
    bare one itself, but runs native code on one in a tuple)."""
    for value in values:
        if type(value) in (tuple, list) and may_hold_array(value):
            refuse_foreign_byte_order(who, names, values)
            return


def may_hold_array(value):
    """Whether a tuple or list may hold an array, from Numba's fingerprint of it (a list's is
    that of its first item, as Numba types it): a list of a million floats is not walked."""
    try:
        return b"A" in compute_fingerprint(value)
    except Exception:                   # no fingerprint (an empty list): look inside
        return True


def arg_type(value):
    """Numba's type for an argument, with a fast path for the common cases."""
    if isinstance(value, float):
        return numba.float64
    if isinstance(value, bool):
        return numba.boolean
    if isinstance(value, int):
        return numba.int64
    return numba.typeof(value)


def primals_and_tangents(who, primals, tangents):
    """(primals, tangents) as tuples; anything but a tuple or list (None, a bare array, which
    tuple() would split into rows) is refused."""
    hint = "pass one value per argument in a tuple, e.g. (x, w), and tangents like (dx, None)."
    return (options.sequence(who, "primals", primals, "argument values", hint),
            options.sequence(who, "tangents", tangents, "tangents (None for inactive arguments)", hint))


def zero_like(value):
    """The zero tangent of an argument a rule receives for an inactive input (None for ints)."""
    if isinstance(value, np.ndarray):
        return np.zeros_like(value) if value.dtype.kind == "f" else None
    if isinstance(value, (float, np.floating)):
        return type(value)(0.0)
    return None


def is_float(value):
    if isinstance(value, np.ndarray):
        return value.dtype.kind == "f"
    return isinstance(value, (float, np.floating))


def check_tangent(who, name, i, primal, tangent):
    """The tangent for argument `name` (position i), converted to the primal's dtype, or a clear
    error; `who` is the function's name as the messages show it."""
    where = f"{who}.jvp: the tangent of argument {name!r} (position {i})"
    if isinstance(primal, np.ndarray):
        refuse_foreign_byte_order(f"{who}.jvp", [name], [primal])
        if primal.dtype.kind != "f":
            raise TangentMismatchError(
                f"{where}: {name!r} is an array of {primal.dtype}, which carries no tangent.\n"
                f"What to do: pass None as its tangent, or make {name!r} a float array "
                "to differentiate with respect to it.")
        if not isinstance(tangent, np.ndarray) or tangent.shape != primal.shape:
            shape = getattr(tangent, "shape", type(tangent).__name__)
            raise TangentMismatchError(
                f"{where} has shape {shape}, but the argument has shape {primal.shape}.\n"
                "What to do: pass a tangent array of the same shape.")
        if tangent.dtype != primal.dtype:
            raise TangentMismatchError(
                f"{where} has dtype {tangent.dtype}, but the argument has dtype {primal.dtype}.\n"
                f"What to do: pass tangent.astype(np.{primal.dtype}).")
        return tangent
    if isinstance(primal, (float, np.floating)):
        if isinstance(tangent, np.ndarray) and tangent.ndim == 0:
            tangent = tangent[()]
        if not isinstance(tangent, (int, float, np.integer, np.floating)) or isinstance(tangent, bool):
            raise TangentMismatchError(
                f"{where} is {type(tangent).__name__}, but the argument is a float scalar.\n"
                "What to do: pass a float.")
        return type(primal)(tangent) if isinstance(primal, np.floating) else float(tangent)
    kind = type(primal).__name__
    raise TangentMismatchError(
        f"{where}: {name!r} is {kind} ({primal!r:.40}), which carries no tangent.\n"
        f"What to do: pass None as its tangent; to differentiate with respect to it, pass a "
        f"float (e.g. {name}=float({name})) or a float array.")


def tangent_conversion(primal, tangent):
    """How check_tangent converts a tangent of this type for a primal of this type, as a function
    (None: passed as is), for calls prepared once per type signature."""
    if isinstance(primal, np.ndarray):
        return None
    convert = type(primal) if isinstance(primal, np.floating) else float
    return (lambda t: convert(t[()])) if isinstance(tangent, np.ndarray) else convert


def placed(positions, values, n):
    """A list of n entries: values at the given positions, None elsewhere."""
    out = [None] * n
    for i, value in zip(positions, values):
        out[i] = value
    return out


def per_argument(values, active, args):
    """One result per argument (None for the inactive ones), each of its argument's type: an
    array of the argument's dtype, a NumPy float of the same type, or a Python float."""
    out = [None] * len(args)
    for i, value in zip(active, values):
        if isinstance(args[i], np.ndarray):
            value = np.asarray(value).astype(args[i].dtype, copy=False)
        elif isinstance(args[i], np.floating):
            value = type(args[i])(value)
        else:
            value = value if isinstance(value, np.ndarray) and value.ndim else float(value)
        out[i] = value
    return tuple(out)


def placing(active, args):
    """per_argument for values a compiled driver returned in their arguments' own types (arrays
    of the argument's dtype, Python floats), prepared once per type signature: a function that
    places them and converts only NumPy float scalars."""
    count, active = len(args), tuple(active)
    numpy_scalars = tuple((j, i, type(args[i])) for j, i in enumerate(active) if isinstance(args[i], np.floating))
    if active == tuple(range(count)) and not numpy_scalars:
        return tuple                     # every argument active, each value as it came

    def place(values):
        out = [None] * count
        for i, value in zip(active, values):
            out[i] = value
        for j, i, convert in numpy_scalars:
            out[i] = convert(values[j])
        return tuple(out)
    return place


def differentiated(args, active, parameters, who):
    """The differentiated positions: `active` (names or positions, as wrt) or every float."""
    if active is None:
        return [i for i, a in enumerate(args) if is_float(a)]
    return list(options.positions(who, active, parameters, "active"))
