"""Small compiled helpers that tangent code calls where one NumPy line would not do.

They are plain @numba.njit functions, so generated code calls them as `fwdad_runtime.name(...)`.
"""
import numba
import numpy as np
from numba.core import types
from numba.extending import overload

from . import random as fwdrandom
from .cache import numba_can_cache

CACHE = numba_can_cache(__file__)        # importing fwdad needs no writable directory


@numba.njit(error_model="numpy", cache=CACHE)
def extreme_jvp(x, dx, z):
    """Tangent of max(x) or min(x) = z: the mean tangent over the positions equal to z (ties split)."""
    total = dx.dtype.type(0)
    count = 0
    flat, dflat = x.ravel(), dx.ravel()
    for i in range(flat.size):
        if flat[i] == z:
            total += dflat[i]
            count += 1
    return total / dx.dtype.type(count) if count else total      # float32 stays float32


@numba.njit(error_model="numpy", cache=CACHE)
def prod_jvp(x, dx):
    """Tangent of prod(x) = sum_i dx_i * prod_{j != i} x_j, exact when x has zeros."""
    flat, dflat = x.ravel(), dx.ravel()
    n = flat.size
    prefix = np.ones(n + 1, x.dtype)
    for i in range(n):
        prefix[i + 1] = prefix[i] * flat[i]
    total = dx.dtype.type(0)
    suffix = x.dtype.type(1)
    for i in range(n - 1, -1, -1):
        total += dflat[i] * prefix[i] * suffix
        suffix *= flat[i]
    return total


@numba.njit(error_model="numpy", cache=CACHE)
def norm_jvp(x, dx, z):
    """Tangent of the 2-norm (Frobenius for matrices) z = ||x||: <x, dx> / z."""
    return np.sum(x * dx) / z


@numba.njit(error_model="numpy", cache=CACHE)
def cumprod_jvp(x, dx):
    """Tangent of np.cumprod(x) (flattened): dz_i = dz_(i-1) * x_i + z_(i-1) * dx_i, exact at zeros."""
    flat, dflat = x.ravel(), dx.ravel()
    out = np.empty(flat.size, dx.dtype)
    running, tangent = x.dtype.type(1), dx.dtype.type(0)
    for i in range(flat.size):
        tangent = tangent * flat[i] + running * dflat[i]
        running *= flat[i]
        out[i] = tangent
    return out


@numba.njit(error_model="numpy", cache=CACHE)
def vector_norm_jvp(x, dx, z, p):
    """Tangent of the vector p-norm z = ||x||_p, with abs'(0) = 1 and ties of inf/-inf split, as in JAX."""
    d_abs = np.where(x >= 0, dx, -dx)
    if p == np.inf or p == -np.inf:
        return extreme_jvp(np.abs(x), d_abs, z)
    if p == 0:                              # the count of nonzero entries
        return dx.dtype.type(0)
    if p == 1:
        return np.sum(d_abs)
    if p == 2:
        return np.sum(x * dx) / z
    out = np.empty(1, dx.dtype)             # in dx's dtype (a store casts, and fwdad can
    out[0] = np.sum(np.abs(x) ** (p - 1) * d_abs) * z ** (1 - p)    # differentiate it again)
    return out[0]


@numba.njit(error_model="numpy", cache=CACHE)
def matrix_norm_jvp(x, dx, z, p):
    """Tangent of a matrix norm with ord p: 1/-1 (column sums), inf/-inf (row sums), 2/-2 (the
    largest / smallest singular value: u_i' dx v_i)."""
    if p == 2 or p == -2:
        u, s, vt = np.linalg.svd(x, full_matrices=False)
        i = 0 if p == 2 else s.size - 1
        total = dx.dtype.type(0)
        for r in range(x.shape[0]):
            for c in range(x.shape[1]):
                total += u[r, i] * dx[r, c] * vt[i, c]
        return total
    axis = 0 if p == 1 or p == -1 else 1
    return extreme_jvp(np.abs(x).sum(axis=axis), np.where(x >= 0, dx, -dx).sum(axis=axis), z)


def norm_ord_jvp(x, dx, z, p):
    """Tangent of z = np.linalg.norm(x, p) inside compiled code: the overload below picks the
    vector or the matrix rule by x's rank (p None is the 2-norm / Frobenius norm)."""
    raise NotImplementedError("norm_ord_jvp runs in compiled code only")


@overload(norm_ord_jvp)
def _norm_ord_jvp(x, dx, z, p):
    if isinstance(p, types.NoneType):
        return lambda x, dx, z, p: norm_jvp(x, dx, z)
    if x.ndim == 1:
        return lambda x, dx, z, p: vector_norm_jvp(x, dx, z, p)
    return lambda x, dx, z, p: matrix_norm_jvp(x, dx, z, p)


def norm_ord_implementation(arg_types):
    """What norm_ord_jvp runs for these argument types, and which arguments it takes: fwdad
    differentiates that function for second derivatives (nested.TypedCallee)."""
    x, p = arg_types[0], arg_types[3]
    if isinstance(p, (types.NoneType, types.Omitted)):
        return norm_jvp, (0, 1, 2)
    return (vector_norm_jvp if x.ndim == 1 else matrix_norm_jvp), (0, 1, 2, 3)


norm_ord_jvp.fwdad_typed = norm_ord_implementation


# ---- activity perturbation (fwdad/layers.py: inject, inject_active) --------------------------------
@numba.njit(inline="always", cache=CACHE)
def noise_key(key_plus_site):
    """The noise key of a layer: the step's key plus the layer's number, hashed (fwdad/layers.py)."""
    return fwdrandom.mix64(np.uint64(key_plus_site))


@numba.njit(error_model="numpy", cache=CACHE)
def fill_noise(out, key, active_only, z):
    """out.flat[i] = component i of the counter-based normal direction `key` (fwdad.random), or 0
    where `active_only` and z.flat[i] <= 0; the same numbers wherever it runs."""
    flat, values = out.reshape(out.size), z.reshape(z.size)
    table = fwdrandom.NORMAL_TABLE
    for start in range(0, flat.size, 4):          # one hash gives four components (fwdrandom.fill)
        bits = fwdrandom.mix64(key + np.uint64(start >> 2) * fwdrandom.GOLDEN)
        for i in range(start, min(start + 4, flat.size)):
            if active_only and not values[i] > 0:
                flat[i] = 0
            else:
                flat[i] = table[(bits >> np.uint64(16 * (i - start))) & fwdrandom.LANE_MASK]


@numba.njit(error_model="numpy", cache=CACHE)
def site_noise(z, key):
    """The noise a layer's activity perturbation adds to the tangent of z: one independent normal
    per entry, so each example (row) is perturbed independently."""
    out = np.empty(z.shape, z.dtype)
    fill_noise(out, noise_key(key), False, np.ascontiguousarray(z))
    return out


@numba.njit(error_model="numpy", cache=CACHE)
def site_noise_active(z, key):
    """site_noise, zero where z <= 0: a ReLU's inactive units have an exactly zero gradient."""
    out = np.empty(z.shape, z.dtype)
    fill_noise(out, noise_key(key), True, np.ascontiguousarray(z))
    return out
