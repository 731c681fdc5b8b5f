"""The CUDA target: fwdad's generated code as numba-cuda device functions, and batched kernels.

Device code cannot allocate arrays; code that does gets a fwdad error at the user's line when
the kernel that calls it is compiled.
"""
import numpy as np

from ..errors import CompilationError


def cuda():
    """numba.cuda, or a clear error when the cuda extra is not installed."""
    try:
        from numba import cuda as numba_cuda
    except ImportError as error:                          # pragma: no cover - depends on extras
        raise CompilationError(
            f"the CUDA target needs numba-cuda ({error}).\nWhat to do: pip install 'fwdad[cuda]' "
            "(or set NUMBA_ENABLE_CUDASIM=1 to run kernels in the simulator).") from None
    return numba_cuda


def device_function(py_func, modules):
    """`py_func` compiled lazily as a CUDA device function."""
    function = cuda().jit(device=True)(py_func)
    function.fwdad_modules = modules
    return function


ALLOCATING = {"zeros", "zeros_like", "empty", "empty_like", "ones", "ones_like", "full", "full_like",
              "copy", "arange", "linspace", "eye", "identity", "concatenate", "stack", "outer", "dot"}


def check_device_code(function, kinds, filename):
    """Reject array allocation in code meant for the GPU, at the user's line, before numba-cuda does.

    Device functions cannot allocate: array results must be written into arrays passed in.
    """
    import ast
    from ..errors import located
    for node in ast.walk(function):
        if not isinstance(node, ast.Assign):
            continue
        target, value = node.targets[0], node.value
        name = target.id if isinstance(target, ast.Name) else None
        kind = kinds.get(name[2:] if name and name.startswith("d_") else name)
        allocating_call = isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) \
            and value.func.attr in ALLOCATING
        array_result = kind is not None and kind.shape == "array" and not isinstance(value, (ast.Name, ast.Subscript))
        if allocating_call or array_result:
            raise located(CompilationError, filename, getattr(node, "lineno", 0),
                          "the CUDA target cannot allocate arrays inside device code (this line "
                          "creates a new array, or its tangent needs one).",
                          "pass preallocated arrays as arguments and write the results into them "
                          "with element assignments; give every array that the function writes a tangent")


def is_device_array(value):
    """A numba-cuda device array (or any __cuda_array_interface__ array, or the simulator's)."""
    if isinstance(value, (np.ndarray, int, float, np.generic)) or value is None:
        return False
    return hasattr(value, "__cuda_array_interface__") or type(value).__name__ == "FakeCUDAArray"


def host_like(value):
    """A host stand-in with the same Numba type as `value` (a device array's shape and dtype)."""
    if is_device_array(value):
        return np.empty(value.shape, value.dtype)
    return value


# ---- counter-based directions on the device --------------------------------------------------------
_RANDOM = {}


def device_random():
    """(stream_key, sample) as device functions: the same code and numbers as fwdad.random."""
    if not _RANDOM:
        import types as pytypes
        from .. import random as fwdrandom
        scope = dict(vars(fwdrandom))
        for name in ("mix64", "stream_key", "sample"):
            py_func = getattr(fwdrandom, name).py_func
            scope[name] = cuda().jit(device=True)(pytypes.FunctionType(py_func.__code__, scope, name))
        _RANDOM.update(stream_key=scope["stream_key"], sample=scope["sample"])
    return _RANDOM["stream_key"], _RANDOM["sample"]


def direction_kernel_source(spec, n_args, active, scalar_params=()):
    """Kernel: thread k draws direction first + k over the active arguments and runs the JVP.

    Array arguments' directions go to rows of V buffers (K, size); `scalar_params` are passed
    as one-element device arrays (fgd's parameters) and read as p[0].
    """
    from ..gradients import actives
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


def compile_kernel(text, name, namespace, device=False):
    """Kernel (or device function) `name` defined in `text`, with readable tracebacks."""
    import linecache
    filename = f"<fwdad cuda {name} {abs(hash(text)):x}>"
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    scope = dict(namespace)
    exec(compile(text, filename, "exec"), scope)
    return cuda().jit(device=device)(scope[name])


class ForwardGradientKernels:
    """The two kernels of a forward gradient on the device, compiled once per specialization."""

    def __init__(self, spec, n_args, scalar_params=()):
        from ..gradients import actives
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
        from ..random import stream_key
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
    import math
    if _STEP:
        return _STEP["kernels"]
    stream_key, sample = device_random()
    namespace = {"cuda": cuda(), "math": math, "stream_key": stream_key, "sample": sample}
    namespace["component"] = compile_kernel(COMPONENT_SOURCE, "component", namespace, device=True)
    _STEP["kernels"] = tuple(compile_kernel(STEP_SOURCE, name, namespace)
                             for name in ("update", "norm_squared", "take_rows"))
    return _STEP["kernels"]


OPTIMIZER_CODES = {"sgd": 0, "momentum": 1, "adam": 2}
_TABLE = {}


def device_table():
    from ..random import NORMAL_TABLE
    if "table" not in _TABLE:
        _TABLE["table"] = cuda().to_device(NORMAL_TABLE)
    return _TABLE["table"]


def fgd_on_device(forward, values, args, options, *, batches, callback, bar):
    """Forward gradient descent with parameters on the GPU. Per step: one kernel per data array
    copies the minibatch, one kernel draws the K directions and runs the JVPs, and one kernel per
    parameter array applies the update (with clip=, one more first adds up the gradient's norm).

    options: fgd's validated FGDOptions. Returns (final parameters, losses, the ChunkedRun, path)."""
    import math
    from ..optim import run_in_chunks, shuffle_epoch
    from ..random import DISTRIBUTIONS
    o = options
    shuffle, clip, trajectory, lr, steps, seed = o.shuffle, o.clip, o.trajectory, o.lr, o.steps, o.seed
    optimizer, momentum, decay, directions, distribution = o.optimizer, o.momentum, o.decay, o.directions, \
        o.distribution
    betas, eps = o.betas, o.eps
    numba_cuda = cuda()
    data, batch, buffers, perm = batches
    host = [np.atleast_1d(np.asarray(v, dtype=np.float64 if isinstance(v, float) else None)).copy()
            for v in values]
    if any(h.ndim != 1 for h in host):
        raise CompilationError("fgd on the CUDA target takes scalar and 1-D array parameters.\n"
                               "What to do: pass 1-D parameter arrays and index them as x[i * m + j].")
    scalars = tuple(j for j, v in enumerate(values) if not isinstance(v, np.ndarray))
    sample_args = tuple(values) + tuple(args) + tuple(buffers)
    spec = forward.specialization(sample_args, list(range(len(values))))
    key = ("cuda fgd", id(spec), scalars)
    if key not in forward._drivers:
        forward._drivers[key] = (ForwardGradientKernels(spec, len(sample_args), scalars), step_kernels())
    kernels, (update, norm_squared, take_rows) = forward._drivers[key]
    params = [numba_cuda.to_device(h) for h in host]
    state = [(numba_cuda.to_device(np.zeros_like(h)), numba_cuda.to_device(np.zeros_like(h))) for h in host]
    flat_batches = [numba_cuda.device_array(b.size, b.dtype) for b in buffers]
    constants = [numba_cuda.to_device(a) if isinstance(a, np.ndarray) else a for a in args] + \
        [flat.reshape(b.shape) for flat, b in zip(flat_batches, buffers)]
    full_data, device_perm = [numba_cuda.to_device(d.reshape(-1)) for d in data], numba_cuda.to_device(perm)
    losses = numba_cuda.to_device(np.zeros(steps))
    zero = np.zeros(1)
    norm2 = numba_cuda.to_device(zero)
    path = np.zeros((steps + 1 if trajectory else 1, sum(h.size for h in host)))
    path[0] = np.concatenate(host)
    path = numba_cuda.to_device(path)
    table, code = device_table(), DISTRIBUTIONS[distribution]
    offsets, _ = kernels.offsets(sample_args)
    blocks = lambda size: (size + 127) // 128                               # noqa: E731

    def next_batch(t):
        """The CPU loop's minibatch of step t: the same shuffled order, from the same generator."""
        b = t % (len(perm) // batch)
        if b == 0 and shuffle:
            shuffle_epoch(perm, np.uint64(seed), t // (len(perm) // batch))
            device_perm.copy_to_device(perm)
        for full, flat in zip(full_data, flat_batches):
            take_rows[blocks(flat.size), 128](full, device_perm, b * batch, flat)

    def run(done, n):
        for t in range(done, done + n):
            if data:
                next_batch(t)
            first = t * directions
            vals, ts = kernels.jvps(params + constants, sample_args, seed, first, directions, code, table)
            if clip:
                norm2.copy_to_device(zero)
                for p, offset in zip(params, offsets):
                    norm_squared[blocks(p.shape[0]), 128](ts, np.uint64(seed), first, directions, code, table,
                                                          int(offset), p.shape[0], norm2)
            rate = lr * math.exp(-decay * t)
            for j, (p, (m, s)) in enumerate(zip(params, state)):
                update[blocks(p.shape[0]), 128](
                    p, ts, vals, np.uint64(seed), first, directions, code, table, int(offsets[j]), rate,
                    OPTIMIZER_CODES[optimizer], momentum, betas[0], betas[1], eps, t, m, s, losses, j == 0,
                    float(clip or 0.0), norm2, path, bool(trajectory))
        numba_cuda.synchronize()

    host_losses = LossesOnDevice(losses)
    current = lambda: [p.copy_to_host() for p in params]                    # noqa: E731
    record = run_in_chunks(steps, run, current, host_losses, o.every, callback, bar, o.on_nonfinite)
    final = [p.copy_to_host() for p in params]
    final = [f[0] if j in scalars else f.astype(values[j].dtype, copy=False) for j, f in enumerate(final)]
    return final, losses.copy_to_host(), record, path.copy_to_host()


class LossesOnDevice:
    """The device's loss record as run_in_chunks reads it (copied to the host when sliced)."""

    def __init__(self, device_losses):
        self.device = device_losses

    def __getitem__(self, index):
        return self.device.copy_to_host()[index]
