"""Forward gradient descent (Baydin et al. 2022, Algorithm 1) as one compiled loop.

The loop samples directions from the counter-based generator, runs the JVP, forms the forward
gradient, applies the optimizer and records the loss, all in native code; with `data=` it also
draws shuffled minibatches. `every=N` runs it in chunks of N steps and calls back (a tqdm
progress bar by default) between chunks.
"""
import math
import sys
import time
from dataclasses import dataclass, field

import numba
import numpy as np

from . import random as fwdrandom
from .errors import FwdadError
from .gradients import actives, compile_driver, namespace, offsets, scalar_output_required

OPTIMIZERS = ("sgd", "momentum", "adam")


@dataclass
class FGDResult:
    """What fgd returns: final parameters (same structure as given), one loss per step, timing."""
    params: object
    losses: np.ndarray
    times: np.ndarray               # wall-clock seconds since the start, at the end of each step
    seconds: float
    steps: int
    history: list = field(default_factory=list)
    trajectory: np.ndarray = None   # with trajectory=True: (steps + 1, total parameter count)
    communication: dict = None      # with comm=: bytes sent and received per step, this rank's share

    @property
    def steps_per_second(self):
        return self.steps / self.seconds if self.seconds > 0 else math.inf


def as_parameters(params):
    """(tuple of float arrays/scalars, function rebuilding the user's structure)."""
    single = not isinstance(params, (tuple, list))
    items = (params,) if single else tuple(params)
    copies = []
    for item in items:
        if isinstance(item, np.ndarray):
            if item.dtype.kind != "f":
                raise FwdadError(f"fgd: parameter arrays must be float arrays, got {item.dtype}.\n"
                                 "What to do: pass params.astype(np.float64) (or float32).")
            copies.append(np.array(item, copy=True, order="C"))
        elif isinstance(item, (float, int, np.floating)) and not isinstance(item, bool):
            copies.append(float(item) if not isinstance(item, np.floating) else item)
        else:
            raise FwdadError(f"fgd: parameters must be float arrays or floats, got {type(item).__name__}.")

    def rebuild(values):
        values = [v if isinstance(v, np.ndarray) else type(items[i])(v) if isinstance(items[i], np.floating)
                  else float(v) for i, v in enumerate(values)]
        if single:
            return values[0]
        return type(params)(values) if isinstance(params, list) else tuple(values)
    return tuple(copies), rebuild


@numba.njit(error_model="numpy")
def shuffle_epoch(perm, seed, epoch):
    """Fisher-Yates with the counter-based generator: the same order on every target."""
    key = fwdrandom.stream_key(np.uint64(seed) ^ np.uint64(0x5EED), epoch)
    for i in range(perm.size):
        perm[i] = i
    for i in range(perm.size - 1, 0, -1):
        j = np.int64(fwdrandom.mix64(key + np.uint64(i) * fwdrandom.GOLDEN) % np.uint64(i + 1))
        perm[i], perm[j] = perm[j], perm[i]


def copy_flat(target, source):
    """Lines copying the flat array `source` into the flat view of buffer `target`."""
    return [f"{target}src = {source}", f"for e in range({target}f.size):",
            f"    {target}f[e] = {target}src[e]"]


def loop_source(spec, n_params, n_args, n_data, gradient, optimizer, sequential, clip, single=False):
    """Generated source of the training loop for one configuration (see docs/optim.md)."""
    active = actives(spec)[:n_params]
    P = [f"a{i}" for i in range(n_params)]                    # parameters (scalars as size-1 arrays)
    A = [f"a{n_params + i}" for i in range(n_args)]           # constant arguments
    D = [f"x{i}" for i in range(n_data)]                      # whole data arrays
    B = [f"a{n_params + n_args + i}" for i in range(n_data)]  # minibatch buffers
    state = [f"m{i}" for i in range(n_params)] + [f"s{i}" for i in range(n_params)]
    head = ", ".join(P + A + D + B + state + [
        "perm", "losses", "path", "t0", "steps", "seed", "K", "distribution", "table", "lr", "decay",
        "mu", "beta1", "beta2", "eps", "clip", "batch", "shuffle"])
    lines = offsets(active) + [f"g{i} = np.empty_like({p})" for i, p in enumerate(P)]
    if sequential:
        lines += [f"v{i} = np.empty_like({p})" for i, p in enumerate(P)]
    for i, p in enumerate(P):           # flat views made once, outside the step loop
        lines += [f"{p}f, g{i}f, m{i}f, s{i}f = {p}.reshape({p}.size), g{i}.reshape(g{i}.size), "
                  f"m{i}.reshape(m{i}.size), s{i}.reshape(s{i}.size)"]
        if sequential:
            lines.append(f"v{i}f = v{i}.reshape(v{i}.size)")
    body = []
    if n_data:
        body += ["per_epoch = perm.size // batch", "b = t % per_epoch",
                 "if b == 0 and shuffle:", "    shuffle_epoch(perm, seed, t // per_epoch)",
                 "for i in range(batch):", "    j = perm[b * batch + i]"]
        body += [f"    {buf}[i] = {full}[j]" for buf, full in zip(B, D)]
    call = [p if not a.scalar else f"{p}[0]" for p, a in zip(P, active)] + A + B
    if sequential:                      # the paper's estimator, one direction at a time
        body.append("for k in range(K):")
        for i, a in enumerate(active):
            if a.scalar:
                body.append(f"    v{i}f[0] = sample(table, stream_key(seed, t * K + k), o{i}, distribution)")
            else:
                body.append(f"    fill(v{i}, table, seed, t * K + k, o{i}, distribution)")
        tangents = [f"v{i}" if not a.scalar else f"v{i}f[0]" for i, a in enumerate(active)]
        body.append(f"    value, jv = jvp({', '.join(call + tangents)})")
        if not single:                  # one direction: the update reads jv * v directly
            for i in range(n_params):
                body += [f"    for e in range(g{i}f.size):",
                         f"        g{i}f[e] = (g{i}f[e] if k > 0 else g{i}f.dtype.type(0)) + jv * v{i}f[e]"]
            body += ["if K > 1:"] + [f"    g{i} /= K" for i in range(n_params)]
    elif gradient == "exact":           # gradient descent with the exact gradient (vector mode)
        body.append(f"value, G = gradient({', '.join(call + ['K'])})")
        for i in range(n_params):
            body += copy_flat(f"g{i}", f"G[o{i}:]")
    elif gradient == "forward":         # vector-mode or parallel forward gradient driver
        body.append(f"value, gs = gradient({', '.join(call + ['seed', 't * K', 'K', 'distribution', 'table'])})")
        for i, a in enumerate(active):
            body += [f"g{i}f[0] = gs[{i}]"] if a.scalar else copy_flat(f"g{i}", f"gs[{i}].reshape(-1)")
    else:                               # the user's own compiled gradient (e.g. backpropagation)
        body.append(f"value, gs = gradient({', '.join(call)})")
        for i, a in enumerate(active):
            source = "gs" if n_params == 1 else f"gs[{i}]"
            body += [f"g{i}f[0] = {source}"] if a.scalar else copy_flat(f"g{i}", f"{source}.reshape(-1)")
    body += ["losses[t] = value", "rate = lr if decay == 0.0 else lr * np.exp(-decay * t)"]
    if clip:
        body += ["norm2 = 0.0"] + [f"norm2 += np.sum(g{i}.astype(np.float64) ** 2)" for i in range(n_params)]
        body += ["if norm2 > clip * clip:", "    scale = clip / np.sqrt(norm2)"]
        body += [f"    g{i} *= g{i}.dtype.type(scale)" for i in range(n_params)]
    for i, p in enumerate(P):
        g = f"(jv * v{i}f[e])" if single else f"g{i}f[e]"
        body += [f"for e in range({p}f.size):"]
        body += ["    " + line.format(p=f"{p}f", g=g, m=f"m{i}f", s=f"s{i}f") for line in UPDATES[optimizer]]
    body += ["if path.shape[0] > t + 1:"]           # trajectory=True: record the parameters
    for i, p in enumerate(P):
        body += [f"    for e in range({p}f.size):", f"        path[t + 1, o{i} + e] = {p}f[e]"]
    lines.append("for t in range(t0, t0 + steps):")
    lines += ["    " + line for line in body]
    lines.append("return 0")
    return "def fgd_loop({}):\n{}\n".format(head, "\n".join("    " + line for line in lines))


UPDATES = {          # {g} is the gradient component e: g0f[e], or jv * v0f[e] when fused
    "sgd": ["{p}[e] -= rate * {g}"],
    "momentum": ["{m}[e] = mu * {m}[e] + {g}", "{p}[e] -= rate * {m}[e]"],
    "adam": ["ge = {g}",
             "{m}[e] = beta1 * {m}[e] + (1.0 - beta1) * ge",
             "{s}[e] = beta2 * {s}[e] + (1.0 - beta2) * ge * ge",
             "{p}[e] -= rate * ({m}[e] / (1.0 - beta1 ** (t + 1))) / "
             "(np.sqrt({s}[e] / (1.0 - beta2 ** (t + 1))) + eps)"],
}


def fgd(fn, params, *, lr, steps, seed=0, optimizer="sgd", momentum=0.9, decay=0.0, directions=1,
        clip=None, data=None, batch_size=None, shuffle=True, every=None, callback=None,
        gradient="forward", args=(), distribution="normal", betas=(0.9, 0.999), eps=1e-8,
        progress=None, trajectory=False, comm=None, mode="directions", **distributed):
    """Minimize fn(*params, *args, *batch) by forward gradient descent in one compiled loop.

    gradient: "forward" (the paper's estimator), "exact" (gradient descent with the exact
    gradient by vector forward mode) or a compiled function returning (value, gradients)
    for the same arguments (e.g. a hand-written backpropagation).
    decay: the learning rate at step t is lr * exp(-decay * t).
    clip: rescale the gradient to this global 2-norm when it is larger.
    trajectory: also return the parameters after every step (result.trajectory, flattened).
    comm: an mpi4py communicator to spread directions (mode="directions") or data (mode="data")
    over ranks; further keywords (check_every, timeout, ...) go to fwdad.distributed.
    Time spent in callbacks and the progress bar is excluded from result.times and .seconds.
    """
    if distributed and comm is None:
        raise TypeError(f"fgd() got unexpected keyword arguments {sorted(distributed)}")
    if clip is not None and not clip > 0:
        raise FwdadError(f"fgd: clip must be a positive gradient norm, got {clip!r}.\n"
                         "What to do: pass clip=None for no clipping.")
    if comm is not None:
        if gradient != "forward" or trajectory:
            raise FwdadError("fgd with comm= runs forward gradients only, without trajectory.\n"
                             "What to do: leave gradient and trajectory at their defaults.")
        from .distributed import distributed_fgd
        return distributed_fgd(fn, params, comm=comm, mode=mode, lr=lr, steps=steps, seed=seed,
                               optimizer=optimizer, momentum=momentum, decay=decay,
                               directions=directions, clip=clip, data=data, batch_size=batch_size,
                               shuffle=shuffle, every=every, callback=callback, args=args,
                               distribution=distribution, betas=betas, eps=eps, progress=progress,
                               **distributed)
    from .api import as_forward
    if optimizer not in OPTIMIZERS:
        raise FwdadError(f"fgd: unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if distribution not in fwdrandom.DISTRIBUTIONS:
        raise FwdadError(f"fgd: unknown distribution {distribution!r}")
    forward = as_forward(fn)
    if forward.target == "cuda":
        return fgd_cuda(forward, params, lr=lr, steps=int(steps), seed=seed, optimizer=optimizer,
                        momentum=momentum, decay=decay, directions=int(directions), clip=clip, data=data,
                        batch_size=batch_size, shuffle=shuffle, gradient=gradient, args=args,
                        distribution=distribution, betas=betas, eps=eps, every=every, callback=callback,
                        progress=progress, trajectory=trajectory)
    plan = Plan(forward, params, args, data, batch_size, gradient, directions, shuffle)
    loop = plan.compile(optimizer, clip)
    losses = np.zeros(int(steps), np.float64)
    times = np.zeros(int(steps), np.float64)
    beta1, beta2 = betas
    every = int(every) if every else None
    bar = progress_bar(int(steps), progress, every)
    if bar is not None and every is None:
        every = max(1, int(steps) // 100)
    chunk = every or int(steps)
    plan.path = np.zeros((int(steps) + 1 if trajectory else 1, plan.size), np.float64)
    plan.path[0] = plan.flat()
    plan.run(loop, losses, 0, 0, seed, directions, distribution, lr, decay, momentum, beta1, beta2,
             eps, clip)                         # zero steps: compiles the loop outside the timing
    run = lambda done, n: plan.run(loop, losses, done, n, seed, directions, distribution, lr, decay,
                                   momentum, beta1, beta2, eps, clip)
    times, seconds, history = run_in_chunks(int(steps), chunk, run, plan.current, losses, callback, bar)
    result = FGDResult(plan.current(), losses, times, seconds, int(steps), history)
    if trajectory:
        result.trajectory = plan.path
    return result


def run_in_chunks(steps, chunk, run, current, losses, callback=None, bar=None):
    """Call run(done, n) for consecutive chunks of n steps: (times, seconds, history).

    times[t] is the wall time at the end of step t (interpolated inside a chunk); the callback
    and the progress bar run between chunks and their time is left out of times and seconds.
    """
    times, history, done, paused = np.zeros(steps), [], 0, 0.0
    start = time.perf_counter()
    while done < steps:
        n = min(chunk, steps - done)
        run(done, n)
        elapsed = time.perf_counter() - start - paused
        previous = times[done - 1] if done else 0.0
        times[done:done + n] = previous + (elapsed - previous) * np.arange(1, n + 1) / n
        done += n
        outside = time.perf_counter()
        if bar is not None:
            bar.update(n)
            bar.set_postfix(loss=f"{losses[done - 1]:.4g}")
        if callback is not None:
            history.append(callback(done, current(), losses[:done]))
        paused += time.perf_counter() - outside
    if bar is not None:
        bar.close()
    return times, time.perf_counter() - start - paused, history


def fgd_cuda(forward, params, *, data, batch_size, shuffle, gradient, trajectory, progress, **options):
    """fgd with target="cuda": parameters, data and optimizer state stay on the GPU for the whole
    run; directions, minibatch order and results are those of the CPU target."""
    from .backends.cuda import fgd_on_device
    if gradient != "forward":
        raise FwdadError(f"fgd on target='cuda' computes forward gradients only, got gradient={gradient!r}.\n"
                         "What to do: leave gradient='forward', or use target='cpu' or 'parallel'.")
    values, rebuild = as_parameters(params)
    batches = minibatches(data, batch_size)
    bar = progress_bar(options["steps"], progress, options["every"])
    if bar is not None and options["every"] is None:
        options["every"] = max(1, options["steps"] // 100)
    callback = options.pop("callback")
    if callback is not None:                     # the caller's structure, as on the CPU
        user = callback
        callback = lambda step, current, losses: user(step, rebuild(
            [c if isinstance(v, np.ndarray) else c[0] for c, v in zip(current, values)]), losses)
    final, losses, times, seconds, history, path = fgd_on_device(
        forward, values, tuple(options.pop("args")), batches=batches, shuffle=bool(shuffle),
        trajectory=trajectory, bar=bar, callback=callback, **options)
    result = FGDResult(rebuild(final), losses, times, seconds, options["steps"], history)
    if trajectory:
        result.trajectory = path
    return result


def progress_bar(total, progress, every):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="fgd", unit="step", leave=False)


def minibatches(data, batch_size):
    """(data arrays, batch size, one batch buffer per array, permutation) for fgd's data=."""
    data = tuple(np.ascontiguousarray(d) for d in (data or ()))
    if not data:
        return data, 0, [], np.zeros(1, np.int64)
    n = len(data[0])
    if any(len(d) != n for d in data):
        raise FwdadError("fgd: every array in data must have the same length (first axis).")
    batch = int(batch_size) if batch_size else n
    if not 0 < batch <= n:
        raise FwdadError(f"fgd: batch_size must be between 1 and {n}.")
    return data, batch, [np.empty((batch,) + d.shape[1:], d.dtype) for d in data], np.arange(n, dtype=np.int64)


class Plan:
    """Everything fgd prepares once: parameters, data, batch buffers, the compiled loop."""

    def __init__(self, forward, params, args, data, batch_size, gradient, directions, shuffle):
        self.forward, self.shuffle = forward, bool(shuffle)
        self.values, self.rebuild = as_parameters(params)
        self.arrays = [v if isinstance(v, np.ndarray) else np.array([v], dtype=np.float64
                       if isinstance(v, float) else type(v)) for v in self.values]
        self.args = tuple(args)
        self.data, self.batch, self.buffers, self.perm = minibatches(data, batch_size)
        self.gradient, self.directions = gradient, int(directions)
        self.sample_args = tuple(self.values) + self.args + tuple(self.buffers)
        self.active = list(range(len(self.values)))
        self.state = [np.zeros_like(a) for a in self.arrays] + [np.zeros_like(a) for a in self.arrays]

    def compile(self, optimizer, clip):
        forward, sample = self.forward, self.sample_args
        scalar = forward.specialization(sample, self.active)
        scalar_output_required(scalar, "fgd")
        ns = dict(namespace(scalar), shuffle_epoch=shuffle_epoch)
        kind, sequential = "forward", False
        if callable(self.gradient):
            ns["gradient"], kind = self.gradient, "custom"
        elif self.gradient == "exact":
            ns["gradient"], kind = forward._driver("value_and_grad", sample, self.active)[0], "exact"
        elif self.gradient != "forward":
            raise FwdadError(f"fgd: gradient must be 'forward', 'exact' or a compiled function, "
                             f"got {self.gradient!r}")
        elif forward.target == "parallel" or self.directions > 1:
            ns["gradient"] = forward._driver("forward_gradient", sample, self.active, self.directions)[0]
        else:
            sequential = True
        self.uses_chunk = kind == "exact"
        single = sequential and self.directions == 1 and not clip
        self.source = loop_source(scalar, len(self.values), len(self.args), len(self.data), kind,
                                  optimizer, sequential, clip, single)
        key = ("fgd", self.source, id(scalar), id(ns.get("gradient")))
        if key not in forward._drivers:                 # compiled once per configuration
            forward._drivers[key] = (compile_driver(self.source, "fgd_loop", ns), ns.get("gradient"))
        return forward._drivers[key][0]

    def run(self, loop, losses, t0, n, seed, directions, distribution, lr, decay, momentum, beta1,
            beta2, eps, clip):
        K = self.forward._chunk(self.sample_args, self.active, None) if self.uses_chunk else directions
        loop(*self.arrays, *self.args, *self.data, *self.buffers, *self.state, self.perm, losses,
             self.path, t0, n, np.uint64(seed), K, fwdrandom.DISTRIBUTIONS[distribution],
             fwdrandom.NORMAL_TABLE, float(lr), float(decay), float(momentum), float(beta1),
             float(beta2), float(eps), float(clip or 0.0), self.batch, self.shuffle)

    @property
    def size(self):
        return sum(a.size for a in self.arrays)

    def flat(self):
        return np.concatenate([a.ravel().astype(np.float64) for a in self.arrays])

    def current(self):
        values = [a.copy() if isinstance(v, np.ndarray) else a[0] for a, v in zip(self.arrays, self.values)]
        return self.rebuild(values)

