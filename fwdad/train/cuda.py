"""fgd on the GPU (target="cuda"): parameters, data and optimizer state stay on the device for
the whole run; directions, minibatch order and results are those of the CPU target."""
import math

import numpy as np

from ..device import cuda, device_table
from ..errors import CompilationError, FwdadError
from ..kernels import ForwardGradientKernels, step_kernels
from ..random import DISTRIBUTIONS
from .chunks import FGDResult, run_in_chunks
from .options import as_parameters, minibatches, progress_bar, refuse_unbounded_directions
from .steps import shuffle_epoch

OPTIMIZER_CODES = {"sgd": 0, "momentum": 1, "adam": 2}


def fgd_cuda(forward, params, o, *, data, gradient, args, callback):
    """fgd with target="cuda": parameters, data and optimizer state stay on the GPU for the whole
    run; directions, minibatch order and results are those of the CPU target."""
    if gradient != "forward":
        raise FwdadError(f"fgd on target='cuda' computes forward gradients only, got gradient={gradient!r}.\n"
                         "What to do: leave gradient='forward', or use target='cpu' or 'parallel'.")
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
        ("cuda fgd", scalars), lambda: (ForwardGradientKernels(spec, len(sample_args), scalars), step_kernels()))
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
