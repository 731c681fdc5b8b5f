"""Counter-based random directions: the same numbers on every target, thread and process.

The k-th direction's i-th component is a pure function of (seed, k, i): a splitmix64 hash of
the counters gives 64 random bits, split into four 16-bit lanes; a lane indexes a table of
2**16 standard-normal quantiles (bin centres, antisymmetric, unit second moment, shipped with
fwdad). Only integer arithmetic and a table lookup are involved, so CPU, parallel, CUDA and MPI
runs regenerate bit-identical directions from a seed, and any component can be regenerated
alone. E[v] = 0 and E[v v^T] = I hold exactly (up to float32 rounding of the table), which is
what makes the forward gradient unbiased; the largest CDF error of the quantized normal is
2**-17. `distribution="rademacher"` gives +-1 from single bits.
"""
import os

import numba
import numpy as np

from .cache import numba_can_cache

CACHE = numba_can_cache(__file__)        # importing fwdad needs no writable directory
TABLE_BITS = 16
NORMAL_TABLE = np.load(os.path.join(os.path.dirname(__file__), "data_files", "normal_table.npy"))
NORMAL, RADEMACHER = 0, 1
DISTRIBUTIONS = {"normal": NORMAL, "rademacher": RADEMACHER}

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)
S30, S27, S31 = np.uint64(30), np.uint64(27), np.uint64(31)
LANE_MASK = np.uint64(0xFFFF)


@numba.njit(inline="always", cache=CACHE)
def mix64(z):
    """splitmix64's finalizer: a bijective, well-mixing hash of a 64-bit integer."""
    z = (z ^ (z >> S30)) * MIX1
    z = (z ^ (z >> S27)) * MIX2
    return z ^ (z >> S31)


@numba.njit(inline="always", cache=CACHE)
def stream_key(seed, direction):
    """The key of direction number `direction` under `seed`."""
    return mix64(mix64(np.uint64(seed) + GOLDEN) ^ (np.uint64(direction) * MIX1 + GOLDEN))


@numba.njit(inline="always", cache=CACHE)
def sample(table, key, index, distribution):
    """Component `index` of the direction with this key."""
    key, index = np.uint64(key), np.uint64(index)
    if distribution == 1:
        bits = mix64(key + (index >> np.uint64(6)) * GOLDEN)
        return np.float32(1.0) if (bits >> (index & np.uint64(63))) & np.uint64(1) else np.float32(-1.0)
    bits = mix64(key + (index >> np.uint64(2)) * GOLDEN)
    lane = (bits >> ((index & np.uint64(3)) * np.uint64(16))) & LANE_MASK
    return table[lane]


@numba.njit(error_model="numpy", cache=CACHE)
def fill(out, table, seed, direction, offset, distribution):
    """out.flat[i] = component offset + i of direction `direction` under `seed`.

    Same numbers as `sample`, with one hash per 4 (normal) or 64 (Rademacher) components.
    """
    key = stream_key(seed, direction)
    flat = out.reshape(out.size)
    n = flat.size
    if distribution == 1:
        for i in range(n):
            flat[i] = sample(table, key, offset + i, 1)
        return
    i = 0
    while i < n and (offset + i) % 4 != 0:
        flat[i] = sample(table, key, offset + i, 0)
        i += 1
    while i + 4 <= n:
        bits = mix64(key + np.uint64((offset + i) >> 2) * GOLDEN)
        flat[i] = table[bits & LANE_MASK]
        flat[i + 1] = table[(bits >> np.uint64(16)) & LANE_MASK]
        flat[i + 2] = table[(bits >> np.uint64(32)) & LANE_MASK]
        flat[i + 3] = table[bits >> np.uint64(48)]
        i += 4
    while i < n:
        flat[i] = sample(table, key, offset + i, 0)
        i += 1


def direction(seed, k, shape, dtype=np.float64, offset=0, distribution="normal"):
    """Direction number k under `seed` as an array (components offset, offset + 1, ...)."""
    out = np.empty(shape, dtype)
    fill(out, NORMAL_TABLE, np.uint64(seed), k, offset, DISTRIBUTIONS[distribution])   # any 64-bit seed
    return out
