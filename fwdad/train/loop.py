"""fgd on the CPU (target="cpu" and "parallel") as one compiled loop.

The loop samples directions from the counter-based generator, runs the JVP, forms the forward
gradient, applies the optimizer and records the loss, all in native code; with `data=` it also
draws shuffled minibatches. It runs in chunks (see chunks.run_in_chunks).
"""
import numpy as np

from .. import random as fwdrandom
from ..execution import execution_error, raised_at_run_time
from ..errors import FwdadError
from ..drivers.gradients import (actives, chunk_size, compile_driver, directions_fit, exact_gradient_driver,
                                 forward_gradient_driver, namespace, offsets, scalar_output_required)
from .activity import activity_gradient, orthogonal_projection
from .chunks import FGDResult, run_in_chunks
from .options import as_parameters, check_user_gradient, minibatches, progress_bar
from .steps import loop_arguments, shuffle_epoch, update_lines


def copy_flat(target, source):
    """Lines copying the flat array `source` into the flat view of buffer `target`."""
    return [f"{target}src = {source}", f"for e in range({target}f.size):",
            f"    {target}f[e] = {target}src[e]"]


def loop_source(spec, n_params, n_args, n_data, gradient, optimizer, sequential, clip, single=False,
                orthogonal=False):
    """Generated source of the training loop for one configuration (see docs/optim.md)."""
    active = actives(spec)[:n_params]
    params, constants, full_data, batches = loop_arguments(n_params, n_args, n_data)
    state = [f"m{i}" for i in range(n_params)] + [f"s{i}" for i in range(n_params)]
    head = ", ".join(params + constants + full_data + batches + state + [
        "perm", "losses", "path", "t0", "steps", "seed", "K", "distribution", "table", "lr", "decay",
        "mu", "beta1", "beta2", "eps", "clip", "batch", "shuffle", "stop_nonfinite"])
    lines = offsets(active) + [f"g{i} = np.empty_like({p})" for i, p in enumerate(params)]
    if sequential:
        lines += [f"v{i} = np.empty_like({p})" for i, p in enumerate(params)]
    for i, p in enumerate(params):           # flat views made once, outside the step loop
        lines += [f"{p}f, g{i}f, m{i}f, s{i}f = {p}.reshape({p}.size), g{i}.reshape(g{i}.size), "
                  f"m{i}.reshape(m{i}.size), s{i}.reshape(s{i}.size)"]
        if sequential:
            lines.append(f"v{i}f = v{i}.reshape(v{i}.size)")
        if orthogonal:                  # the step's K directions, kept for their Gram matrix
            lines.append(f"V{i} = np.empty((K, {p}.size), {p}.dtype)")
    if orthogonal:
        lines.append("d = np.empty(K, np.float64)")
    body = []
    if n_data:
        body += ["per_epoch = perm.size // batch", "b = t % per_epoch",
                 "if b == 0 and shuffle:", "    shuffle_epoch(perm, seed, t // per_epoch)",
                 "for i in range(batch):", "    j = perm[b * batch + i]"]
        body += [f"    {buf}[i] = {full}[j]" for buf, full in zip(batches, full_data)]
    call = [p if not a.scalar else f"{p}[0]" for p, a in zip(params, active)] + constants + batches
    if sequential:                      # the paper's estimator, one direction at a time
        body.append("for k in range(K):")
        for i, a in enumerate(active):
            if a.scalar:
                body.append(f"    v{i}f[0] = sample(table, stream_key(seed, t * K + k), o{i}, distribution)")
            else:
                body.append(f"    fill(v{i}, table, seed, t * K + k, o{i}, distribution)")
        tangents = [f"v{i}" if not a.scalar else f"v{i}f[0]" for i, a in enumerate(active)]
        body.append(f"    value, jv = jvp({', '.join(call + tangents)})")
        if orthogonal:
            body += ["    d[k] = jv"] + [f"    V{i}[k] = v{i}f" for i in range(n_params)]
            body += orthogonal_lines(n_params)
        elif not single:                  # one direction: the update reads jv * v directly
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
    for i, p in enumerate(params):
        record_path += [f"    for e in range({p}f.size):", f"        path[t + 1, o{i} + e] = {p}f[e]"]
    body += ["losses[t] = value", "if stop_nonfinite and not np.isfinite(value):"]   # stop at once:
    body += ["    " + line for line in record_path] + ["    return t - t0 + 1"]   # step t not applied
    body += update_lines(n_params, optimizer, clip, lambda i: f"(jv * v{i}f[e])" if single else f"g{i}f[e]")
    body += record_path
    lines.append("for t in range(t0, t0 + steps):")
    lines += ["    " + line for line in body]
    lines.append("return steps")
    return "def fgd_loop({}):\n{}\n".format(head, "\n".join("    " + line for line in lines))


def orthogonal_lines(n_params):
    """g = V (V^T V)^-1 d: the projection of the gradient onto the span of the step's K directions
    (Flügel et al. 2024), for fgd(combine="orthogonal") with weight perturbation."""
    lines = ["gram = np.zeros((K, K), np.float64)"]
    lines += [f"gram += V{i}.astype(np.float64) @ V{i}.T.astype(np.float64)" for i in range(n_params)]
    lines.append("c = projection(gram, d)")
    for i in range(n_params):
        lines += [f"for e in range(g{i}f.size):", f"    g{i}f[e] = 0.0",
                  "    for k in range(K):", f"        g{i}f[e] += c[k] * V{i}[k, e]"]
    return lines


def fgd_local(forward, params, o, data, gradient, args, callback):
    """fgd on target="cpu" or "parallel": the compiled loop, run in chunks (see run_in_chunks)."""
    plan = Plan(forward, params, args, data, o.batch_size, gradient, o.directions, o.shuffle)
    loop = plan.compile(o.optimizer, o.clip, o.combine)
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

    def compile(self, optimizer, clip, combine="mean"):
        forward, sample, target = self.forward, self.sample_args, self.forward.backend
        scalar = self.spec = forward.specialization(sample, self.active)
        if self.gradient != "activity":               # activity: per-example losses
            scalar_output_required(scalar, "fgd")
        ns = dict(namespace(scalar), shuffle_epoch=shuffle_epoch)
        estimator, sequential = "forward", False
        if callable(self.gradient):
            check_user_gradient(self.gradient, [np.copy(v) if isinstance(v, np.ndarray) else v
                                                for v in self.values], self.args + tuple(
                np.ascontiguousarray(d[:self.batch]) for d in self.data))
            ns["gradient"], estimator = self.gradient, "custom"
        elif self.gradient == "exact":
            vector = forward.specialization(sample, self.active, "vector")
            ns["gradient"], estimator = exact_gradient_driver(target, scalar, vector, False)[0], "exact"
        elif self.gradient == "activity":
            first_batch = tuple(self.values) + self.args + tuple(np.ascontiguousarray(d[:self.batch]) for d in self.data)
            ns["gradient"] = activity_gradient(forward, first_batch, len(self.values), combine).driver
        elif self.gradient != "forward":
            raise FwdadError(f"fgd: gradient must be 'forward', 'exact', 'activity' or a compiled function, "
                             f"got {self.gradient!r}")
        elif combine != "orthogonal" and target.loop_calls_driver(self.directions) and \
                directions_fit(self.directions, self.size):
            vector = forward.specialization(sample, self.active, "vector")
            ns["gradient"] = forward_gradient_driver(target, scalar, vector, self.directions)[0]
        else:
            sequential = True
        self.uses_chunk = estimator == "exact"
        orthogonal = sequential and combine == "orthogonal"
        if orthogonal and not directions_fit(self.directions, self.size):
            raise FwdadError(f"fgd: combine='orthogonal' keeps the step's {self.directions} directions of "
                             f"{self.size} parameters, more than fwdad holds at once.\nWhat to do: pass "
                             "fewer directions, or combine='mean'.")
        single = sequential and self.directions == 1 and not clip and not orthogonal
        self.source = loop_source(scalar, len(self.values), len(self.args), len(self.data), estimator,
                                  optimizer, sequential, clip, single, orthogonal)
        ns["projection"] = orthogonal_projection
        gradient = ns.get("gradient")                   # kept with the loop: its id stays unique
        build = lambda: (compile_driver(self.source, "fgd_loop", ns), gradient)      # noqa: E731
        return scalar.driver(("fgd", self.source, id(gradient)), build)[0]

    def run(self, loop, losses, t0, n, o):
        """Steps t0 .. t0 + n - 1 of the compiled loop with the options `o` (an FGDOptions); an
        exception the compiled code raises names the user's line (see api.execution_error)."""
        try:
            return self.call(loop, losses, t0, n, o)
        except Exception as error:
            if not raised_at_run_time(error):
                raise
            raise execution_error(error, self.spec, self.forward.py_func) from error

    def call(self, loop, losses, t0, n, o):
        """The number of steps run: n, or fewer when a non-finite loss stopped the loop."""
        K = chunk_size(self.sample_args, self.active, None) if self.uses_chunk else o.directions
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
