"""The arithmetic of one fgd step, as source lines shared by the compiled CPU loop, the MPI
update and the CUDA update kernel, so that every path rounds the same way."""
import numba
import numpy as np

from .. import random as fwdrandom

UPDATES = {          # {g} is the gradient component e: g0f[e], or jv * v0f[e] when fused
    "sgd": ["{p}[e] -= rate * {g}"],
    "momentum": ["{m}[e] = mu * {m}[e] + {g}", "{p}[e] -= rate * {m}[e]"],
    "adam": ["ge = {g}",
             "{m}[e] = beta1 * {m}[e] + (1.0 - beta1) * ge",
             "{s}[e] = beta2 * {s}[e] + (1.0 - beta2) * ge * ge",
             "{p}[e] -= rate * ({m}[e] / (1.0 - beta1 ** (t + 1))) / "
             "(np.sqrt({s}[e] / (1.0 - beta2 ** (t + 1))) + eps)"],
}


@numba.njit(error_model="numpy")
def shuffle_epoch(perm, seed, epoch):
    """Fisher-Yates with the counter-based generator: the same order on every target."""
    key = fwdrandom.stream_key(np.uint64(seed) ^ np.uint64(0x5EED), epoch)
    for i in range(perm.size):
        perm[i] = i
    for i in range(perm.size - 1, 0, -1):
        j = np.int64(fwdrandom.mix64(key + np.uint64(i) * fwdrandom.GOLDEN) % np.uint64(i + 1))
        perm[i], perm[j] = perm[j], perm[i]
