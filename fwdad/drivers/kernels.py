"""CUDA kernels around a tangent device function: the forward gradient of K directions.

Thread k draws direction k from the counter-based generator (fwdad.random, compiled for the
device by fwdad.device), so the directions are those of the CPU drivers.
"""
import numpy as np

from ..device import compile_kernel, cuda, device_random
from ..errors import CompilationError
from .gradients import actives
from ..random import stream_key


def direction_kernel_source(spec, n_args, active, scalar_params=()):
    """Kernel: thread k draws direction first + k over the active arguments and runs the JVP.

    Array arguments' directions go to rows of V buffers (K, size); `scalar_params` are passed
    as one-element device arrays (fgd's parameters) and read as p[0].
    """
    items = actives(spec)
    args = [f"a{j}" for j in range(n_args)]
    buffers = [f"V{a.position}" for a in items if not a.scalar]
    head = ", ".join(args + buffers + ["offsets", "seed", "first", "K", "distribution", "table", "ts", "values"])
    lines = ["k = cuda.grid(1)", "if k < K:", "    key = stream_key(seed, first + k)"]
    call = [f"{a}[0]" if j in scalar_params else a for j, a in enumerate(args)]
    tangents = []
    for number, a in enumerate(items):
        if a.scalar:
            lines.append(f"    s{a.position} = sample(table, key, offsets[{number}], distribution)")
            tangents.append(f"s{a.position}")
        else:
            if a.kind.ndim != 1:
                raise CompilationError("forward_gradient on the CUDA target supports scalar and 1-D "
                                       "array arguments.\nWhat to do: pass 1-D parameter arrays and "
                                       "index them as x[i * m + j] inside the function.")
            lines += [f"    v{a.position} = V{a.position}[k]", f"    for e in range(v{a.position}.shape[0]):",
                      f"        v{a.position}[e] = sample(table, key, offsets[{number}] + e, distribution)"]
            tangents.append(f"v{a.position}")
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
        sizes = [1 if a.scalar else int(np.size(args[a.position])) for a in self.items]
        return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64), sizes

    def jvps(self, device_args, args, seed, first, K, distribution, table):
        """(values, ts) on the device: the JVP along each of K directions."""
        numba_cuda = cuda()
        offsets, _ = self.offsets(args)
        buffers = [numba_cuda.device_array((K,) + np.shape(args[a.position]), np.asarray(args[a.position]).dtype)
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
