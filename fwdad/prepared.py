"""Calls prepared once per type signature: the thin call path of ForwardFunction's methods.

The first call of f.jvp, f.forward_gradient, f.value_and_grad or f.jacobian with given argument
types (and options) checks everything, decides which arguments are active, finds or compiles
the specialization and its driver, and keeps what it decided as a prepared call under a key of
those types (arguments.type_key: Numba's own type fingerprints). A later call with the same key
does only what depends on the values (tangent shapes, byte order, the seed, the chunk) and
makes one compiled call; whatever a value check does not accept goes the full way again, which
refuses it with the error the first call would have given.
"""
import numpy as np

from .arguments import foreign_array, holding_arrays, per_argument
from .drivers.gradients import actives, chunk_for, split
from .execution import raise_reported
from .options import SEED_LIMIT


def native(values, arrays, nested):
    """Whether the arrays at positions `arrays` (bare ndarrays) and `nested` (tuples or lists
    that may hold arrays) are all in native byte order, which type fingerprints leave out."""
    for i in arrays:
        if not values[i].dtype.isnative:
            return False
    for i in nested:
        if foreign_array(values[i]) is not None:
            return False
    return True


def array_positions(key):
    """(bare ndarray positions, positions of tuples and lists that may hold arrays) of a type_key
    (none for a call without a key, which is never prepared)."""
    if key is None:
        return (), ()
    count = len(key) // 2
    maybe = holding_arrays(key)
    return (tuple(i for i in maybe if key[count + i] is np.ndarray),
            tuple(i for i in maybe if key[count + i] is not np.ndarray))


class PreparedJvp:
    """f.jvp for one type signature of primals and tangents: converts the tangents as
    check_tangent does and runs the compiled tangent function."""

    def __init__(self, forward, spec, key, conversions):
        self.forward, self.spec, self.jvp, self.py_func = forward, spec, spec.jvp, forward.py_func
        count = len(forward.parameters)          # the key holds the primals' types, then the tangents'
        primal_key = key and key[:count] + key[2 * count:3 * count]
        self.arrays, self.nested = array_positions(primal_key)
        self.has_arrays = bool(self.arrays or self.nested)
        self.conversions = conversions           # (position, conversion or None for an array)

    def __call__(self, primals, tangents):
        """The JVP, or None when a value check fails (the full path then says why)."""
        if self.has_arrays and not native(primals, self.arrays, self.nested):
            return None
        checked = []
        for i, convert in self.conversions:
            tangent = tangents[i]
            if convert is not None:
                checked.append(convert(tangent))
            elif tangent.shape != primals[i].shape or not tangent.dtype.isnative:
                return None
            else:
                checked.append(tangent)
        try:
            return self.jvp(*primals, *checked)
        except Exception as error:
            raise_reported(error, self.spec, self.py_func)

    def run(self, primals, checked):
        """The first call (it compiles)."""
        return self.forward.run(self.spec, self.jvp, primals + tuple(checked))


class PreparedGradient:
    """f.forward_gradient for one type signature, number of directions and distribution: the
    target's prepared driver (targets/), with the seed checked per call."""

    def __init__(self, key, spec, gradient):
        self.arrays, self.nested = array_positions(key)
        self.has_arrays = bool(self.arrays or self.nested)
        self.spec, self.gradient = spec, gradient

    def __call__(self, args, seed):
        if type(seed) is not int or not 0 <= seed < SEED_LIMIT or \
                self.has_arrays and not native(args, self.arrays, self.nested):
            return None
        return self.gradient(args, seed)

    def run(self, args, seed):
        return self.gradient(args, seed)


class PreparedExact:
    """f.value_and_grad or f.jacobian (dense) for one type signature and chunk: the compiled
    chunked driver, and its flat result split per argument."""

    def __init__(self, forward, args, key, active, driver, spec, chunk, jacobian):
        self.forward, self.active, self.driver, self.spec = forward, active, driver, spec
        self.py_func, self.chunk, self.jacobian = forward.py_func, chunk, jacobian
        self.arrays, self.nested = array_positions(key)
        self.items = actives(spec)
        self.sized = [a.position for a in self.items if not a.scalar]
        self.scalars = len(self.items) - len(self.sized)
        self.count = len(forward.parameters)
        self.pieces = [piece(args, a) for a in self.items]
        self.last = (None, None)                 # (active scalars, directions per pass) of the last call

    def __call__(self, args):
        for i in self.arrays:                    # native(), unrolled: this is the per-call path
            if not args[i].dtype.isnative:
                return None
        if self.nested and not native(args, (), self.nested):
            return None
        total, (last, chunk) = self.scalars, self.last
        for i in self.sized:
            total += args[i].size
        try:
            value, flat = self.driver(*args, chunk if total == last else self.chunk_of(args))
        except Exception as error:
            raise_reported(error, self.spec, self.py_func)
        return self.split(args, value, flat)

    def run(self, args):
        """The first call (it compiles)."""
        return self.split(args, *self.forward.run(self.spec, self.driver, args + (self.chunk_of(args),)))

    def chunk_of(self, args):
        total = self.scalars
        for i in self.sized:
            total += args[i].size
        last = self.last                     # read once: another thread may replace it
        if total != last[0]:                 # the same sizes call after call: computed once
            last = self.last = (total, chunk_for(total, self.chunk))
        return last[1]

    def split(self, args, value, flat):
        """(value, gradient per argument), or the Jacobian per argument; None for inactive ones."""
        if self.jacobian:
            flat = flat.reshape(np.shape(value) + (flat.shape[-1],))
            return per_argument(split(flat, self.items, args), self.active, args)
        out, start = [None] * self.count, 0
        for i, array, convert in self.pieces:
            if array:
                stop = start + args[i].size
                part = flat if args[i].shape == flat.shape else flat[start:stop].reshape(args[i].shape)
                out[i] = part if convert is None else part.astype(convert)
            else:
                out[i], stop = convert(flat[start]), start + 1
            start = stop
        return value, tuple(out)


def piece(args, item):
    """(position, is an array, conversion) of an active argument's piece of a flat float64
    gradient, as split and per_argument convert it: an array piece is a view (float64) or
    converted to the argument's dtype; a scalar becomes a float or the argument's NumPy type."""
    value = args[item.position]
    if not item.scalar:
        return item.position, True, None if value.dtype == np.float64 else value.dtype
    return item.position, False, type(value) if isinstance(value, np.floating) else float
