"""fgd on the GPU (target="cuda"): parameters, data and optimizer state stay on the device for
the whole run; directions, minibatch order and results are those of the CPU target."""
import math

import numpy as np

from ..device import compile_kernel, cuda, device_random, device_table
from ..errors import CompilationError, FwdadError
from ..drivers.kernels import ForwardGradientKernels
from ..random import DISTRIBUTIONS
from .chunks import FGDResult, run_in_chunks
from .options import as_parameters, minibatches, progress_bar, refuse_unbounded_directions
from .steps import optimizer_lines, shuffle_epoch

COMPONENT_SOURCE = '''


def component(ts, seed, first, K, distribution, table, index):
    """Component `index` of the forward gradient (1/K) sum_k t_k v_k, regenerating the v_k."""
    g = 0.0
    for k in range(K):
        g += ts[k] * sample(table, stream_key(seed, first + k), index, distribution)
    return g / K
'''

KERNELS_SOURCE = '''


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


def update_source(optimizer):
    """The kernel of one optimizer step on one parameter array: the optimizer lines of the CPU
    loop (steps.UPDATES), one thread per element."""
    lines = optimizer_lines(optimizer, "P", "g", "M", "S", sqrt="math.sqrt")
    return ('def update(P, ts, values, seed, first, K, distribution, table, offset, rate, mu, beta1, beta2,\n'
            '           eps, t, M, S, losses, record, clip, norm2, path, record_path):\n'
            '    e = cuda.grid(1)\n'
            '    if record and e == 0:\n'
            '        losses[t] = values[0]\n'
            '    if e < P.shape[0]:\n'
            '        g = component(ts, seed, first, K, distribution, table, offset + e)\n'
            '        if clip > 0.0 and norm2[0] > clip * clip:\n'
            '            g *= clip / math.sqrt(norm2[0])\n' +
            "".join(f"        {line}\n" for line in lines) +
            '        if record_path:\n'
            '            path[t + 1, offset + e] = P[e]\n')


_STEP = {}


def step_kernels(optimizer):
    """(update, norm_squared, take_rows): the kernels of one fgd step besides the JVPs."""
    if optimizer not in _STEP:
        stream_key, sample = device_random()
        namespace = {"cuda": cuda(), "math": math, "stream_key": stream_key, "sample": sample}
        namespace["component"] = compile_kernel(COMPONENT_SOURCE, "component", namespace, device=True)
        _STEP[optimizer] = (compile_kernel(update_source(optimizer), "update", namespace),) + tuple(
            compile_kernel(KERNELS_SOURCE, name, namespace) for name in ("norm_squared", "take_rows"))
    return _STEP[optimizer]


def fgd_cuda(forward, params, o, *, data, gradient, args, callback):
    """fgd with target="cuda": parameters, data and optimizer state stay on the GPU for the whole
    run; directions, minibatch order and results are those of the CPU target."""
    if gradient != "forward" or o.combine != "mean":
        raise FwdadError(f"fgd on target='cuda' computes averaged forward gradients only, got gradient="
                         f"{gradient!r}, combine={o.combine!r}.\nWhat to do: leave gradient='forward' and "
                         "combine='mean', or use target='cpu' or 'parallel'.")
    values, rebuild = as_parameters(params)
    refuse_unbounded_directions(o.directions, sum(np.size(v) for v in values))
    batches = minibatches(data, o.batch_size)
    bar = progress_bar(o.steps, o.progress)
    if callback is not None:                     # the caller's structure, as on the CPU
        user = callback
        callback = lambda step, current, losses: user(step, rebuild(     # noqa: E731
            [c if isinstance(v, np.ndarray) else c[0] for c, v in zip(current, values)]), losses)
    final, losses, record, path = fgd_on_device(forward, values, tuple(args), o, batches=batches,
                                                bar=bar, callback=callback)
    result = FGDResult(rebuild(final), losses[:record.done], record.times, record.seconds, record.done,
                       record.history)
    if o.trajectory:
        result.trajectory = path[:record.done + 1]
    return record.finish(result)


def fgd_on_device(forward, values, args, options, *, batches, callback, bar):
    """Forward gradient descent with parameters on the GPU. Per step: one kernel per data array
    copies the minibatch, one kernel draws the K directions and runs the JVPs, and one kernel per
    parameter array applies the update (with clip=, one more first adds up the gradient's norm).

    options: fgd's validated FGDOptions. Returns (final parameters, losses, the ChunkedRun, path)."""
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
    kernels, (update, norm_squared, take_rows) = spec.driver(
        ("cuda fgd", scalars, optimizer),
        lambda: (ForwardGradientKernels(spec, len(sample_args), scalars), step_kernels(optimizer)))
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
                    momentum, betas[0], betas[1], eps, t, m, s, losses, j == 0,
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
