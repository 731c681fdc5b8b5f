"""Forward gradient descent (Baydin et al. 2022, Algorithm 1) as one compiled loop.

The loop samples directions from the counter-based generator, runs the JVP, forms the forward
gradient, applies the optimizer and records the loss, all in native code; with `data=` it also
draws shuffled minibatches. The loop runs in chunks sized to take a fraction of a second each,
so that Ctrl-C, a non-finite loss and the progress bar are seen promptly; `every=N` calls back
after every N steps. A run that stops early (Ctrl-C, a raising callback, a non-finite loss)
raises an error whose `.result` is the FGDResult of the steps done.
"""
import math
import signal
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import numba
import numpy as np

from . import options as check
from . import random as fwdrandom
from .errors import FwdadError, user_stacklevel
from .gradients import actives, compile_driver, namespace, offsets, scalar_output_required

OPTIMIZERS = ("sgd", "momentum", "adam")
GRADIENTS = ("forward", "exact")
ON_NONFINITE = ("raise", "warn", "continue")
CHUNK_SECONDS = 0.2            # target wall time of one compiled chunk (Ctrl-C is seen between chunks)


@dataclass(frozen=True)
class FGDOptions:
    """fgd's options, validated once (`FGDOptions.validated`) and shared by the CPU, parallel,
    CUDA and MPI paths, so that every path refuses the same bad values with the same message."""
    lr: float
    steps: int
    seed: int = 0
    optimizer: str = "sgd"
    momentum: float = 0.9
    decay: float = 0.0
    directions: int = 1
    clip: float = None
    batch_size: int = None
    shuffle: bool = True
    every: int = None
    distribution: str = "normal"
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    progress: bool = None
    trajectory: bool = False
    on_nonfinite: str = "raise"

    @classmethod
    def validated(cls, who="fgd", **given):
        """The options with every value checked (and converted: NumPy integers to int, ...)."""
        o = cls(**given)
        betas = check.sequence(who, "betas", o.betas, "two numbers", "pass betas=(0.9, 0.999).")
        if len(betas) != 2:
            check.refuse(who, "betas", o.betas, "a pair (beta1, beta2)", "pass betas=(0.9, 0.999).")
        return cls(
            lr=check.real(who, "lr", o.lr, positive=True),
            steps=check.integer(who, "steps", o.steps, 0),
            seed=check.seed(who, o.seed),
            optimizer=check.choice(who, "optimizer", o.optimizer, OPTIMIZERS),
            momentum=check.real(who, "momentum", o.momentum, minimum=0.0, below=1.0),
            decay=check.real(who, "decay", o.decay, minimum=0.0),
            directions=check.integer(who, "directions", o.directions, 1),
            clip=check.optional_real(who, "clip", o.clip, positive=True),
            batch_size=check.optional_integer(who, "batch_size", o.batch_size, 1),
            shuffle=check.flag(who, "shuffle", o.shuffle),
            every=check.optional_integer(who, "every", o.every, 1),
            distribution=check.choice(who, "distribution", o.distribution, tuple(fwdrandom.DISTRIBUTIONS)),
            betas=tuple(check.real(who, f"betas[{i}]", b, minimum=0.0, below=1.0) for i, b in enumerate(betas)),
            eps=check.real(who, "eps", o.eps, positive=True),
            progress=check.optional_flag(who, "progress", o.progress),
            trajectory=check.flag(who, "trajectory", o.trajectory),
            on_nonfinite=check.choice(who, "on_nonfinite", o.on_nonfinite, ON_NONFINITE))


def checked_inputs(who, params, args, data, gradient, callback):
    """(args, data) as tuples, with params, gradient and callback checked (see FGDOptions)."""
    if isinstance(params, (tuple, list)) and not params:
        check.refuse(who, "params", params, "a float, a float array or a tuple of them",
                     "pass the initial values of the parameters to optimize.")
    args = check.sequence(who, "args", args, "constant arguments", "pass args=(a, b) (or args=() ).")
    data = () if data is None else check.sequence(
        who, "data", data, "data arrays (rows along the first axis)",
        "pass data=(X,) for one array, data=(X, Y) for two.")
    for i, array in enumerate(data):
        if np.ndim(array) < 1:
            check.refuse(who, f"data[{i}]", array, "an array with rows along its first axis",
                         "pass arrays (constants go in args=).")
    if not (gradient in GRADIENTS or callable(gradient)):
        check.refuse(who, "gradient", gradient, "'forward', 'exact' or a compiled function",
                     "pass one of those.")
    check.optional_callable(who, "callback", callback)
    return args, data


def check_arity(forward, n_params, n_args, n_data):
    """Refuse a call of fn with more or fewer arguments than it takes (params, args, data)."""
    signature = forward.signature.parameters.values()
    required = sum(1 for p in signature if p.default is p.empty)
    given = n_params + n_args + n_data
    if not required <= given <= len(forward.parameters):
        takes = f"{required}" if required == len(forward.parameters) else \
            f"{required} to {len(forward.parameters)}"
        raise check.OptionError(
            f"fgd: {forward.__name__}({', '.join(forward.parameters)}) takes {takes} arguments, but "
            f"fgd would call it with {given}: {n_params} parameter(s), {n_args} in args, "
            f"{n_data} data array(s).\nWhat to do: pass fn's arguments in that order: the "
            "parameters to optimize, then args=(...), then one batch of each data=(...) array.")


class FGDStopped(FwdadError):
    """fgd stopped before its last step; `.result` is the FGDResult of the steps done."""
    result = None


class NonFiniteLossError(FGDStopped, FloatingPointError):
    """The loss became NaN or infinite (on_nonfinite="raise"); `.step` is the first such step."""


class CallbackError(FGDStopped):
    """fgd's callback raised; the callback's exception is `__cause__`."""


class FGDInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped fgd; `.result` is the FGDResult of the steps done."""
    result = None


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
            from .api import refuse_foreign_byte_order
            refuse_foreign_byte_order("fgd", ["params" if single else f"params[{len(copies)}]"], [item])
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


def check_user_gradient(gradient, params, rest):
    """Refuse fgd's gradient=<function> unless it is a Numba dispatcher returning (value, grads)
    with value a float and grads shaped like params (the bare gradient for one parameter): the
    compiled loop copies grads element by element, so a wrong length would read past its end and
    a wrong structure would fail as a raw Numba TypingError. Called once, in Python, on the
    initial parameters (and the first minibatch)."""
    def refuse(wanted, got):
        raise check.OptionError(f"fgd: gradient must be {wanted}, got {got}.\nWhat to do: make "
                                "gradient a @numba.njit function of the same arguments as fn returning "
                                "(loss, gradients), with one gradient per parameter of the "
                                "parameter's shape and dtype (the bare gradient for a single parameter).")
    if not isinstance(gradient, numba.core.dispatcher.Dispatcher):
        refuse("a @numba.njit function", f"{check.shown(gradient)}, which is not compiled "
               "(decorate it with @numba.njit)")
    try:
        out = gradient(*params, *rest)
    except Exception as error:            # typing errors of the user's function, or its raise
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        refuse("callable on fn's arguments", f"{type(error).__name__} calling it on the initial "
               f"parameters: {first}")
    if not isinstance(out, tuple) or len(out) != 2:
        refuse("a function returning a pair (value, gradients)", f"a result {check.shown(out)}")
    value, grads = out
    if not isinstance(value, (float, np.floating)):
        refuse("a function whose first result is the loss, a float scalar",
               f"{check.shown(value)} first (are value and gradients swapped?)")
    if len(params) == 1:
        grads = (grads,)
    elif not isinstance(grads, (tuple, list)) or len(grads) != len(params):
        refuse(f"a function returning a tuple of {len(params)} gradients, one per parameter",
               check.shown(grads))
    for i, (param, grad) in enumerate(zip(params, grads)):
        if isinstance(param, np.ndarray):
            ok = isinstance(grad, np.ndarray) and grad.shape == param.shape and grad.dtype == param.dtype
            wanted = f"an array of shape {param.shape} and dtype {param.dtype}"
        else:
            ok = isinstance(grad, (float, np.floating)) and np.ndim(grad) == 0
            wanted = "a float scalar"
        if not ok:
            refuse(f"a function whose gradient of parameter {i} is {wanted}", check.shown(grad))


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
        "mu", "beta1", "beta2", "eps", "clip", "batch", "shuffle", "stop_nonfinite"])
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
    record_path = ["if path.shape[0] > t + 1:"]       # trajectory=True: record the parameters
    for i, p in enumerate(P):
        record_path += [f"    for e in range({p}f.size):", f"        path[t + 1, o{i} + e] = {p}f[e]"]
    body += ["losses[t] = value", "if stop_nonfinite and not np.isfinite(value):"]   # stop at once:
    body += ["    " + line for line in record_path] + ["    return t - t0 + 1"]   # step t not applied
    body += ["rate = lr if decay == 0.0 else lr * np.exp(-decay * t)"]
    if clip:
        body += ["norm2 = 0.0"] + [f"norm2 += np.sum(g{i}.astype(np.float64) ** 2)" for i in range(n_params)]
        body += ["if norm2 > clip * clip:", "    scale = clip / np.sqrt(norm2)"]
        body += [f"    g{i} *= g{i}.dtype.type(scale)" for i in range(n_params)]
    for i, p in enumerate(P):
        g = f"(jv * v{i}f[e])" if single else f"g{i}f[e]"
        body += [f"for e in range({p}f.size):"]
        body += ["    " + line.format(p=f"{p}f", g=g, m=f"m{i}f", s=f"s{i}f") for line in UPDATES[optimizer]]
    body += record_path
    lines.append("for t in range(t0, t0 + steps):")
    lines += ["    " + line for line in body]
    lines.append("return steps")
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
        progress=None, trajectory=False, on_nonfinite="raise", comm=None, mode="directions",
        **distributed):
    """Minimize fn(*params, *args, *batch) by forward gradient descent in one compiled loop.

    gradient: "forward" (the paper's estimator), "exact" (gradient descent with the exact
    gradient by vector forward mode) or a compiled function returning (value, gradients)
    for the same arguments (e.g. a hand-written backpropagation).
    decay: the learning rate at step t is lr * exp(-decay * t).
    clip: rescale the gradient to this global 2-norm when it is larger.
    trajectory: also return the parameters after every step (result.trajectory, flattened).
    on_nonfinite: "raise" (default) stops at a NaN or infinite loss with NonFiniteLossError,
    "warn" warns once and goes on, "continue" says nothing.
    comm: an mpi4py communicator to spread directions (mode="directions") or data (mode="data")
    over ranks; further keywords (check_every, timeout, ...) go to fwdad.distributed.
    Time spent in callbacks and the progress bar is excluded from result.times and .seconds.
    A run stopped early (Ctrl-C: FGDInterrupted; a raising callback: CallbackError; a non-finite
    loss: NonFiniteLossError) raises an error whose `.result` holds the steps done.
    """
    if distributed and comm is None:
        raise TypeError(f"fgd() got unexpected keyword arguments {sorted(distributed)}")
    given = dict(lr=lr, steps=steps, seed=seed, optimizer=optimizer, momentum=momentum, decay=decay,
                 directions=directions, clip=clip, batch_size=batch_size, shuffle=shuffle, every=every,
                 distribution=distribution, betas=betas, eps=eps, progress=progress,
                 trajectory=trajectory, on_nonfinite=on_nonfinite)
    if comm is not None:
        if gradient != "forward" or trajectory:
            raise FwdadError("fgd with comm= runs forward gradients only, without trajectory.\n"
                             "What to do: leave gradient and trajectory at their defaults.")
        from .distributed import distributed_fgd
        given.pop("trajectory")
        return distributed_fgd(fn, params, comm=comm, mode=mode, data=data, callback=callback,
                               args=args, **given, **distributed)
    options = FGDOptions.validated(**given)
    args, data = checked_inputs("fgd", params, args, data, gradient, callback)
    from .api import as_forward
    forward = as_forward(fn)
    n_params = len(params) if isinstance(params, (tuple, list)) else 1
    check_arity(forward, n_params, len(args), len(data))
    if forward.target == "cuda":
        return fgd_cuda(forward, params, options, data=data, gradient=gradient, args=args,
                        callback=callback)
    return fgd_local(forward, params, options, data, gradient, args, callback)


def fgd_local(forward, params, o, data, gradient, args, callback):
    """fgd on target="cpu" or "parallel": the compiled loop, run in chunks (see run_in_chunks)."""
    plan = Plan(forward, params, args, data, o.batch_size, gradient, o.directions, o.shuffle)
    loop = plan.compile(o.optimizer, o.clip)
    losses = np.zeros(o.steps, np.float64)
    bar = progress_bar(o.steps, o.progress)
    plan.path = np.zeros((o.steps + 1 if o.trajectory else 1, plan.size), np.float64)
    plan.path[0] = plan.flat()
    run = lambda done, n: plan.run(loop, losses, done, n, o)      # noqa: E731
    run(0, 0)                                    # zero steps: compiles the loop outside the timing
    record = run_in_chunks(o.steps, run, plan.current, losses, o.every, callback, bar, o.on_nonfinite)
    result = FGDResult(plan.current(), losses[:record.done], record.times, record.seconds, record.done,
                       record.history)
    if o.trajectory:
        result.trajectory = plan.path[:record.done + 1]
    return record.finish(result)


@dataclass
class ChunkedRun:
    """What run_in_chunks reports: per-step times, the callback's history, the steps done, and
    the error to raise when the run stopped early (with the caller's partial result)."""
    times: np.ndarray
    seconds: float
    history: list
    done: int
    stop: BaseException = None
    cause: BaseException = None

    def finish(self, result):
        """`result` when the run completed; else raise the stopping error carrying it."""
        if self.stop is None:
            return result
        self.stop.result = result
        raise self.stop from self.cause


def run_in_chunks(steps, run, current, losses, every=None, callback=None, bar=None, on_nonfinite="raise"):
    """Call run(done, n) for consecutive chunks of n steps, n sized so that each chunk takes
    about CHUNK_SECONDS and never crosses a multiple of `every`; a ChunkedRun.

    run may return how many of its n steps it ran (fewer: it stopped at a non-finite loss).
    times[t] is the wall time at the end of step t (interpolated inside a chunk); the callback
    and the progress bar run between chunks and their time is left out of times and seconds.
    Ctrl-C during a chunk is deferred to its end, so the steps done are always known.
    """
    times, history, done, paused, size = np.zeros(steps), [], 0, 0.0, 1
    stop = cause = None
    warned = [on_nonfinite != "warn"]
    start = time.perf_counter()
    try:
        while done < steps and stop is None:
            n = min(size, steps - done, (done // every + 1) * every - done if every else steps)
            began = time.perf_counter()
            with interrupts_deferred() as interrupted:
                ran = run(done, n)
                ran = n if ran is None else ran
                first, done = done, done + ran
            elapsed = time.perf_counter() - start - paused
            previous = times[first - 1] if first else 0.0
            times[first:done] = previous + (elapsed - previous) * np.arange(1, ran + 1) / max(ran, 1)
            size = max(1, min(16 * size, int(ran * CHUNK_SECONDS / max(time.perf_counter() - began, 1e-9))))
            outside = time.perf_counter()
            stop = nonfinite_stop(losses, first, done, on_nonfinite, warned)
            if interrupted and stop is None:
                stop = interruption(done, steps)
            if bar is not None:
                bar.update(ran)
                bar.set_postfix(loss=f"{losses[done - 1]:.4g}")
            if callback is not None and stop is None and (done == steps or (every and done % every == 0)):
                stop, cause = call_back(callback, done, current, losses, history)
            paused += time.perf_counter() - outside
    except KeyboardInterrupt:                   # Ctrl-C outside a chunk (callback, progress bar)
        stop = interruption(done, steps)
    finally:
        if bar is not None:
            bar.close()
    return ChunkedRun(times[:done], time.perf_counter() - start - paused, history, done, stop, cause)


def interruption(done, steps):
    return FGDInterrupted(f"fgd: interrupted after step {done} of {steps}; the error's .result "
                          "holds the steps done.")


def call_back(callback, done, current, losses, history):
    """Call the user's callback, appending its value to history; (None, None), or the
    CallbackError to stop with and the callback's exception."""
    try:
        history.append(callback(done, current(), losses[:done]))
        return None, None
    except Exception as error:
        return CallbackError(f"fgd: the callback raised {type(error).__name__}: {error} (after step "
                             f"{done}).\nWhat to do: fix the callback; the error's .result holds the "
                             "steps done."), error


def nonfinite_stop(losses, first, done, on_nonfinite, warned):
    """The NonFiniteLossError for the first NaN/inf loss in losses[first:done] (on_nonfinite=
    "raise"), or None; with "warn", one RuntimeWarning for the first such step of the run."""
    if on_nonfinite == "continue" or done == first:
        return None
    recent = np.asarray(losses[first:done])
    bad = np.flatnonzero(~np.isfinite(recent))
    if not bad.size:
        return None
    step, value = first + int(bad[0]), recent[bad[0]]
    stopped = ("the run stopped there; the error's .result.params are the parameters that loss "
               "was computed at (that step's update is not applied)" if done == step + 1
               else f"the run stopped after step {done}")
    message = (f"fgd: the loss at step {step} is {value} (not finite); {stopped}."
               f"\nWhat to do: lower lr, clip the gradient (clip=...), check the data; or pass "
               "on_nonfinite='warn' or 'continue' to go on. The error's .result holds the steps done.")
    if on_nonfinite == "raise":
        error = NonFiniteLossError(message)
        error.step = step
        return error
    if not warned[0]:
        warned[0] = True
        warnings.warn(f"fgd: the loss at step {step} is {value} (not finite); going on "
                      "(on_nonfinite='warn').", RuntimeWarning, stacklevel=user_stacklevel())
    return None


@contextmanager
def interrupts_deferred():
    """Within the block, Ctrl-C sets a flag (a non-empty list) instead of raising, so a chunk of
    compiled steps always ends with its parameters and losses consistent. A no-op outside the
    main thread or when SIGINT has a handler other than Python's default."""
    flag = []
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield flag
        return
    signal.signal(signal.SIGINT, lambda *_: flag.append(True))
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def fgd_cuda(forward, params, o, *, data, gradient, args, callback):
    """fgd with target="cuda": parameters, data and optimizer state stay on the GPU for the whole
    run; directions, minibatch order and results are those of the CPU target."""
    from .backends.cuda import fgd_on_device
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


def refuse_unbounded_directions(directions, size):
    """fgd on CUDA holds all K directions of a step on the device (K x parameter count floats):
    refuse a K whose buffers would exceed about api.DIRECTION_ENTRIES entries, naming the memory."""
    from .api import DIRECTION_ENTRIES
    if directions * max(size, 1) > DIRECTION_ENTRIES:
        gigabytes = directions * max(size, 1) * 8 / 2 ** 30
        check.refuse("fgd", "directions", directions,
                     f"at most {DIRECTION_ENTRIES // max(size, 1)} on target='cuda' with {size} "
                     f"parameters (the step's directions would need about {gigabytes:.3g} GiB)",
                     "pass fewer directions, or use target='cpu' or 'parallel', which draw them "
                     "one at a time when they do not fit.")


def progress_bar(total, progress):
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
    data = tuple(np.ascontiguousarray(d) for d in data)
    if not data:
        return data, 0, [], np.zeros(1, np.int64)
    n = len(data[0])
    if any(len(d) != n for d in data):
        raise FwdadError("fgd: every array in data must have the same length (first axis).")
    batch = batch_size or n
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
        self.gradient, self.directions = gradient, directions
        self.sample_args = tuple(self.values) + self.args + tuple(self.buffers)
        self.active = list(range(len(self.values)))
        self.state = [np.zeros_like(a) for a in self.arrays] + [np.zeros_like(a) for a in self.arrays]

    def compile(self, optimizer, clip):
        forward, sample = self.forward, self.sample_args
        scalar = self.spec = forward.specialization(sample, self.active)
        scalar_output_required(scalar, "fgd")
        ns = dict(namespace(scalar), shuffle_epoch=shuffle_epoch)
        kind, sequential = "forward", False
        if callable(self.gradient):
            check_user_gradient(self.gradient, [np.copy(v) if isinstance(v, np.ndarray) else v
                                                for v in self.values], self.args + tuple(
                np.ascontiguousarray(d[:self.batch]) for d in self.data))
            ns["gradient"], kind = self.gradient, "custom"
        elif self.gradient == "exact":
            ns["gradient"], kind = forward._driver("value_and_grad", sample, self.active)[0], "exact"
        elif self.gradient != "forward":
            raise FwdadError(f"fgd: gradient must be 'forward', 'exact' or a compiled function, "
                             f"got {self.gradient!r}")
        elif (forward.target == "parallel" or self.directions > 1) and self.directions_fit():
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

    def directions_fit(self):
        """Whether the K directions of one step fit the forward_gradient drivers' K-wide buffers
        (about api.DIRECTION_ENTRIES entries); else the loop draws them one at a time."""
        from .api import DIRECTION_ENTRIES
        return self.directions * max(self.size, 1) <= DIRECTION_ENTRIES

    def run(self, loop, losses, t0, n, o):
        """Steps t0 .. t0 + n - 1 of the compiled loop with the options `o` (an FGDOptions); an
        exception the compiled code raises names the user's line (see api.execution_error)."""
        from .api import execution_error, raised_at_run_time
        try:
            return self.call(loop, losses, t0, n, o)
        except Exception as error:
            if not raised_at_run_time(error):
                raise
            raise execution_error(error, self.spec, self.forward.py_func) from error

    def call(self, loop, losses, t0, n, o):
        """The number of steps run: n, or fewer when a non-finite loss stopped the loop."""
        K = self.forward._chunk(self.sample_args, self.active, None) if self.uses_chunk else o.directions
        return loop(*self.arrays, *self.args, *self.data, *self.buffers, *self.state, self.perm, losses,
                    self.path, t0, n, np.uint64(o.seed), K, fwdrandom.DISTRIBUTIONS[o.distribution],
                    fwdrandom.NORMAL_TABLE, o.lr, o.decay, o.momentum, o.betas[0], o.betas[1], o.eps,
                    o.clip or 0.0, self.batch, self.shuffle, o.on_nonfinite == "raise")

    @property
    def size(self):
        return sum(a.size for a in self.arrays)

    def flat(self):
        return np.concatenate([a.ravel().astype(np.float64) for a in self.arrays])

    def current(self):
        values = [a.copy() if isinstance(v, np.ndarray) else a[0] for a, v in zip(self.arrays, self.values)]
        return self.rebuild(values)

