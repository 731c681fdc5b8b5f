"""Small compiled helpers that tangent code calls where one NumPy line would not do.

They are plain @numba.njit functions, so generated code calls them as `fwdad_runtime.name(...)`.
"""
import numba
import numpy as np

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
    return total / count if count else total


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
