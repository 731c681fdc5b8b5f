"""CUDA kernels around a tangent device function: forward gradients and the steps of fgd.

Thread k draws direction k from the counter-based generator (fwdad.random, compiled for the
device by fwdad.device), so the directions are those of the CPU drivers.
"""
import math

import numpy as np

from .device import compile_kernel, cuda, device_random
from .errors import CompilationError
from .gradients import actives
from .random import stream_key


def direction_kernel_source(spec, n_args, active, scalar_params=()):
    """Kernel: thread k draws direction first + k over the active arguments and runs the JVP.

    Array arguments' directions go to rows of V buffers (K, size); `scalar_params` are passed
    as one-element device arrays (fgd's parameters) and read as p[0].
    """
    items = actives(spec)
    args = [f"a{j}" for j in range(n_args)]
    buffers = [f"V{a.i}" for a in items if not a.scalar]
    head = ", ".join(args + buffers + ["offsets", "seed", "first", "K", "distribution", "table", "ts", "values"])
    lines = ["k = cuda.grid(1)", "if k < K:", "    key = stream_key(seed, first + k)"]
    call = [f"{a}[0]" if j in scalar_params else a for j, a in enumerate(args)]
    tangents = []
    for number, a in enumerate(items):
        if a.scalar:
            lines.append(f"    s{a.i} = sample(table, key, offsets[{number}], distribution)")
            tangents.append(f"s{a.i}")
        else:
            if a.kind.ndim != 1:
                raise CompilationError("forward_gradient on the CUDA target supports scalar and 1-D "
                                       "array arguments.\nWhat to do: pass 1-D parameter arrays and "
                                       "index them as x[i * m + j] inside the function.")
            lines += [f"    v{a.i} = V{a.i}[k]", f"    for e in range(v{a.i}.shape[0]):",
                      f"        v{a.i}[e] = sample(table, key, offsets[{number}] + e, distribution)"]
            tangents.append(f"v{a.i}")
    lines += [f"    value, t = jvp({', '.join(call + tangents)})", "    ts[k] = t", "    values[k] = value"]
    return f"def directions({head}):\n" + "\n".join("    " + line for line in lines) + "\n"


GATHER_SOURCE = '''
def gather(ts, keys, K, distribution, table, offset, out):
    """out[e] = (1/K) sum_k t_k v_k[offset + e], regenerating each direction's component."""
    e = cuda.grid(1)
    if e < out.shape[0]:
        s = 0.0
        for k in range(K):
            s += ts[k] * sample(table, keys[k], offset + e, distribution)
        out[e] = s / K
'''


class ForwardGradientKernels:
    """The two kernels of a forward gradient on the device, compiled once per specialization."""

    def __init__(self, spec, n_args, scalar_params=()):
        stream_key, sample = device_random()
        namespace = {"cuda": cuda(), "stream_key": stream_key, "sample": sample, "jvp": spec.device_jvp}
        self.spec, self.items = spec, actives(spec)
        self.directions = compile_kernel(direction_kernel_source(spec, n_args, spec.active, scalar_params),
                                         "directions", namespace)
        self.gather = compile_kernel(GATHER_SOURCE, "gather", namespace)

    def offsets(self, args):
        sizes = [1 if a.scalar else int(np.size(args[a.i])) for a in self.items]
        return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64), sizes

    def jvps(self, device_args, args, seed, first, K, distribution, table):
        """(values, ts) on the device: the JVP along each of K directions."""
        numba_cuda = cuda()
        offsets, _ = self.offsets(args)
        buffers = [numba_cuda.device_array((K,) + np.shape(args[a.i]), np.asarray(args[a.i]).dtype)
                   for a in self.items if not a.scalar]
        ts = numba_cuda.device_array(K, np.float64)
        values = numba_cuda.device_array(K, np.float64)
        blocks = (K + 63) // 64
        self.directions[blocks, 64](*device_args, *buffers, numba_cuda.to_device(offsets), np.uint64(seed),
                                   first, K, distribution, table, ts, values)
        return values, ts

    def gradient(self, ts, args, seed, first, K, distribution, table):
        """Per active argument, the forward gradient as a flat device array."""
        numba_cuda = cuda()
        keys = numba_cuda.to_device(np.array([stream_key(np.uint64(seed), first + k) for k in range(K)],
                                             dtype=np.uint64))
        offsets, sizes = self.offsets(args)
        out = []
        for a, offset, size in zip(self.items, offsets, sizes):
            flat = numba_cuda.device_array(size, np.float64)
            blocks = (size + 127) // 128
            self.gather[blocks, 128](ts, keys, K, distribution, table, int(offset), flat)
            out.append(flat)
        return out


COMPONENT_SOURCE = '''
def component(ts, seed, first, K, distribution, table, index):
    """Component `index` of the forward gradient (1/K) sum_k t_k v_k, regenerating the v_k."""
    g = 0.0
    for k in range(K):
        g += ts[k] * sample(table, stream_key(seed, first + k), index, distribution)
    return g / K
'''

STEP_SOURCE = '''
def update(P, ts, values, seed, first, K, distribution, table, offset, rate, optimizer, mu, beta1,
           beta2, eps, t, M, S, losses, record, clip, norm2, path, record_path):
    """One optimizer step on one parameter array (the CPU loop's arithmetic, element by element)."""
    e = cuda.grid(1)
    if record and e == 0:
        losses[t] = values[0]
    if e < P.shape[0]:
        g = component(ts, seed, first, K, distribution, table, offset + e)
        if clip > 0.0 and norm2[0] > clip * clip:
            g *= clip / math.sqrt(norm2[0])
        if optimizer == 0:
            P[e] -= rate * g
        elif optimizer == 1:
            M[e] = mu * M[e] + g
            P[e] -= rate * M[e]
        else:
            M[e] = beta1 * M[e] + (1.0 - beta1) * g
            S[e] = beta2 * S[e] + (1.0 - beta2) * g * g
            P[e] -= rate * (M[e] / (1.0 - beta1 ** (t + 1))) / (math.sqrt(S[e] / (1.0 - beta2 ** (t + 1))) + eps)
        if record_path:
            path[t + 1, offset + e] = P[e]


def norm_squared(ts, seed, first, K, distribution, table, offset, size, out):
    """out[0] += the squared norm of the forward gradient's components offset .. offset + size."""
    e = cuda.grid(1)
    if e < size:
        g = component(ts, seed, first, K, distribution, table, offset + e)
        cuda.atomic.add(out, 0, g * g)


def take_rows(full, perm, start, out):
    """The minibatch rows perm[start:start + batch] of `full`, both arrays flattened."""
    e = cuda.grid(1)
    if e < out.shape[0]:
        width = full.shape[0] // perm.shape[0]
        i = e // width
        out[e] = full[perm[start + i] * width + e - i * width]
'''


_STEP = {}


def step_kernels():
    """(update, norm_squared, take_rows): the kernels of one fgd step besides the JVPs."""
    if _STEP:
        return _STEP["kernels"]
    stream_key, sample = device_random()
    namespace = {"cuda": cuda(), "math": math, "stream_key": stream_key, "sample": sample}
    namespace["component"] = compile_kernel(COMPONENT_SOURCE, "component", namespace, device=True)
    _STEP["kernels"] = tuple(compile_kernel(STEP_SOURCE, name, namespace)
                             for name in ("update", "norm_squared", "take_rows"))
    return _STEP["kernels"]
