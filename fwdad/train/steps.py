"""The arithmetic of one fgd step, as source lines shared by the compiled CPU loop, the MPI
update and the CUDA update kernel, so that every path rounds the same way."""
import numba
import numpy as np

from .. import random as fwdrandom

RATE = "rate = lr if decay == 0.0 else lr * np.exp(-decay * t)"     # the learning rate at step t

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


def loop_arguments(n_params, n_args, n_data):
    """The names the generated loops give fn's arguments: the parameters (scalars as size-1
    arrays), the constant arguments, the whole data arrays and their minibatch buffers."""
    params = [f"a{i}" for i in range(n_params)]
    constants = [f"a{n_params + i}" for i in range(n_args)]
    full_data = [f"x{i}" for i in range(n_data)]
    batches = [f"a{n_params + n_args + i}" for i in range(n_data)]
    return params, constants, full_data, batches


def optimizer_lines(optimizer, p, g, m, s, sqrt="np.sqrt"):
    """The update of component e of one parameter: p, m, s name its array and the optimizer's
    state arrays, g is the text of the gradient's component (sqrt: math.sqrt on the device)."""
    return [line.format(p=p, g=g, m=m, s=s).replace("np.sqrt", sqrt) for line in UPDATES[optimizer]]


def clip_lines(n_params):
    """Rescale the gradients g0, g1, ... (flat views g0f, ...) to the global 2-norm `clip`
    when it is larger."""
    lines = ["norm2 = 0.0"] + [f"norm2 += np.sum(g{i}.astype(np.float64) ** 2)" for i in range(n_params)]
    lines += ["if norm2 > clip * clip:", "    scale = clip / np.sqrt(norm2)"]
    for i in range(n_params):
        lines += [f"    for e in range(g{i}f.size):", f"        g{i}f[e] *= g{i}f.dtype.type(scale)"]
    return lines


def update_lines(n_params, optimizer, clip, gradient_of):
    """The lines of one step after the gradient is known, shared by the compiled CPU loop and
    the MPI update: the rate, the optional clipping, then every parameter a0, a1, ... (flat
    views a0f, ...) updated element by element; gradient_of(i) is the text of component e of
    parameter i's gradient (g{i}f[e], or the fused (jv * v{i}f[e]) for one direction)."""
    lines = [RATE] + (clip_lines(n_params) if clip else [])
    for i in range(n_params):
        lines.append(f"for e in range(a{i}f.size):")
        lines += ["    " + line for line in optimizer_lines(optimizer, f"a{i}f", gradient_of(i), f"m{i}f", f"s{i}f")]
    return lines
