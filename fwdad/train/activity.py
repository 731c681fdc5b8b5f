"""fgd(gradient="activity"): forward gradients in activation space (activity perturbation).

Ren, Kornblith, Liao, Hinton (ICLR 2023) perturb each layer's output z instead of the weights,
independently per example, and turn the estimate g_z = (d loss . u) u of d loss / d z into the
weight update x^T g_z of a linear layer z = x W + b. The variance of a forward gradient grows with
the dimension perturbed: a layer's 1024 outputs per example instead of 1.9 million weights.

One step, for a model `fn(*params, *args, *batch)` that returns per-example losses, shape (B,),
or (B, L) for L local losses, and computes its layers with fwdad.dense / dense_relu:

1. the probe (fwdad/transform/activity.py) runs K times, once per direction k: the JVP along
   noise injected at every layer gives d[k, i, l], example i's loss l along direction k;
2. the coefficients: c = d / K (combine="mean"), or per example and loss the orthogonal
   projection onto the K noise directions, c = (U^T U)^-1 d (combine="orthogonal", Flügel et al.
   2024), with the Gram matrices U^T U from one pass that draws the noise again;
3. the update pass draws the noise u_k of each layer again (counter-based: nothing is stored) and
   adds x^T g_z, g_z[i] = sum_k c[k, i, loss] u_k[i], to the gradient of W, and sum_i g_z[i] to b's.

Layers are found in the parameters by address: W and b must be contiguous views of them (as
`theta[a:b].reshape(n_in, n_out)` is); the first step checks that every parameter is covered.
"""
import ast
import contextlib

import numba
import numpy as np
from numba.core.errors import NumbaError

from .. import layers, runtime
from .. import random as fwdrandom
from ..arguments import arg_type
from ..codegen import NUMBA_OPTIONS, compile_source
from ..compiler import numba_error
from ..errors import FwdadError, OptionError
from ..frontend.parse import ParsedFunction
from ..frontend.resolve import Resolver, assigned_names
from ..nested import generated_function
from ..transform import activity

COMBINE = ("mean", "orthogonal")
UPDATE, GRAM, COVERAGE = 0, 1, 2          # what fwdad_update does (fwdad_state's last entry)


# ---- the compiled pieces --------------------------------------------------------------------------
@numba.njit(error_model="numpy")
def parameter_view(arrays, A):
    """(index, offset) of the parameter whose memory holds the contiguous array A, or (-1, 0)."""
    size = A.size * A.itemsize
    for p in range(len(arrays)):
        start = arrays[p].ctypes.data
        end = start + arrays[p].size * arrays[p].itemsize
        if start <= A.ctypes.data and A.ctypes.data + size <= end:
            return p, (A.ctypes.data - start) // A.itemsize
    return -1, 0


@numba.njit(error_model="numpy")
def add_into(grads, params, A, update):
    """grads[p][view of A] += update: A is a contiguous view of parameter p."""
    p, offset = parameter_view(params, A)
    if p < 0 or not A.flags.c_contiguous:
        raise ValueError("a layer's weights or bias are not a contiguous view of a parameter (a copy, "
                         "a computed array or a transposed view): activity perturbation cannot update "
                         "them. Use views such as theta[a:b].reshape((n_in, n_out))")
    flat = update.ravel()
    target = grads[p]
    for e in range(flat.size):
        target[offset + e] += flat[e]


@numba.njit(error_model="numpy")
def draw(u, key_plus_site, relu, z):
    runtime.fill_noise(u, runtime.noise_key(key_plus_site), relu, z)


@numba.njit(error_model="numpy")
def dense_update(x, W, b, relu, loss, groups, site, state, params, grads):
    """A layer of the update pass: its value, and what fwdad_state's mode asks for. Output j is
    trained by the losses' column loss + j * groups // n (fwdad.dense's groups)."""
    keys, coef, gram, mode = state
    z = layers.dense_relu(x, W, b) if relu else layers.dense(x, W, b)   # 2-D (else a typing error:
    # numba_errors_at_user_lines reports it as "x of shape (batch, n_in)" at the model's lines)
    if loss < 0 or groups < 1 or loss + groups > coef.shape[2] or groups > z.shape[1]:
        raise ValueError("a layer's loss= (and groups=) name columns the per-example losses the model "
                         "returns do not have (or more groups than outputs)")
    if mode[0] == COVERAGE:                 # which entries and loss columns layers reach
        add_into(grads, params, W, np.ones(W.shape, W.dtype))
        add_into(grads, params, b, np.ones(b.shape, b.dtype))
        gram[0, loss:loss + groups, 0, 0] = 1.0
        return z
    zc = np.ascontiguousarray(z)
    K, (B, n) = keys.size, z.shape
    if mode[0] == GRAM:
        U = np.empty((K, B, n), z.dtype)
        for k in range(K):
            draw(U[k], keys[k] + site, relu, zc)
        for i in range(B):
            for j in range(n):
                column = loss + j * groups // n
                for k in range(K):
                    for m in range(K):
                        gram[i, column, k, m] += np.float64(U[k, i, j]) * U[m, i, j]
        return z
    G = np.zeros((B, n), z.dtype)
    u = np.empty((B, n), z.dtype)
    for k in range(K):
        draw(u, keys[k] + site, relu, zc)
        for i in range(B):
            for j in range(n):
                G[i, j] += z.dtype.type(coef[k, i, loss + j * groups // n]) * u[i, j]
    add_into(grads, params, W, np.ascontiguousarray(x).T @ G)
    add_into(grads, params, b, G.sum(axis=0))
    return z


@numba.njit(error_model="numpy")
def projection_coefficients(gram, d):
    """c[:, i, l] = gram[i, l]^-1 d[:, i, l] (Cholesky, with a relative ridge of 1e-10 for
    directions that coincide; a loss that no layer feeds has a zero Gram and gets c = 0)."""
    K, B, L = d.shape
    c = np.zeros_like(d)
    for i in range(B):
        for l in range(L):
            A = gram[i, l].copy()
            scale = np.trace(A) / K
            if scale <= 0:
                continue
            for k in range(K):
                A[k, k] += 1e-10 * scale
            c[:, i, l] = cholesky_solve(A, d[:, i, l].copy())
    return c


@numba.njit(error_model="numpy")
def orthogonal_projection(gram, d):
    """c = gram^-1 d for one Gram matrix of K directions (same ridge as projection_coefficients)."""
    return projection_coefficients(gram.reshape((1, 1) + gram.shape), d.reshape((d.size, 1, 1))).reshape(d.size)


@numba.njit(error_model="numpy")
def cholesky_solve(A, y):
    """x with A x = y for a small symmetric positive definite A."""
    K = A.shape[0]
    Lo = np.zeros_like(A)
    for r in range(K):
        for c in range(r + 1):
            total = A[r, c]
            for m in range(c):
                total -= Lo[r, m] * Lo[c, m]
            Lo[r, c] = np.sqrt(total) if r == c else total / Lo[c, c]
    for r in range(K):
        for m in range(r):
            y[r] -= Lo[r, m] * y[m]
        y[r] /= Lo[r, r]
    for r in range(K - 1, -1, -1):
        for m in range(r + 1, K):
            y[r] -= Lo[m, r] * y[m]
        y[r] /= Lo[r, r]
    return y


# ---- the estimator ---------------------------------------------------------------------------------
def activity_gradient(forward, sample_args, n_params, combine="mean"):
    """The ActivityGradient of `forward` for these argument types, built once (kept with the
    specialization, as fwdad's other drivers are: fgd and a caller's own estimates share it)."""
    spec = forward.specialization(sample_args, ())
    return spec.driver(("activity", n_params, combine),
                       lambda: ActivityGradient(forward, sample_args, n_params, combine))


class ActivityGradient:
    """The activity-perturbation estimator of one model for one set of argument types: a compiled
    driver with fgd's estimator signature (params..., args..., batch..., seed, first direction, K,
    distribution, table) -> (mean loss, gradients shaped like the parameters)."""

    def __init__(self, forward, sample_args, n_params, combine="mean"):
        self.forward, self.n_params, self.combine = forward, n_params, combine
        self.refuse_parameters(sample_args[:n_params])
        unit = forward.unit
        parsed = unit.parsed
        resolve = Resolver(parsed.namespace, assigned_names(parsed.tree))
        probe_tree = activity.probe(parsed.tree, resolve, parsed.filename)
        self.refuse_without_layers(probe_tree, parsed)
        namespace = dict(parsed.namespace, fwdad_inject=layers.inject, fwdad_inject_active=layers.inject_active)
        self.probe_unit = self.model_unit(unit, probe_tree, namespace, "probe")
        self.where = f"{parsed.name} ({parsed.filename}:{parsed.tree.lineno}; layers at lines " \
            f"{', '.join(map(str, activity.layer_lines(probe_tree)))})"
        self.held = self.model_unit(unit, activity.held(parsed.tree, resolve, parsed.filename),
                                    dict(parsed.namespace, fwdad_stop=layers.stop_gradient), "held")
        update_tree = activity.update(parsed.tree, resolve, parsed.filename)
        self.update_source = ast.unparse(update_tree)
        self.update = compile_source(self.update_source, parsed.name, dict(unit.namespace, fwdad_update=dense_update),
                                     numba.njit(**NUMBA_OPTIONS))
        eps_position = len(sample_args)
        probe_args = tuple(sample_args) + (sample_args[0].dtype.type(0), np.int64(0))
        self.probe = self.probe_unit.specialization(arg_types(probe_args), (eps_position,))
        self.driver = compile_source(self.driver_source(len(sample_args)), "activity_gradient",
                                     self.driver_namespace(), numba.njit(**NUMBA_OPTIONS))
        with numba_errors_at_user_lines(self.probe, self.where):
            self.check_coverage(sample_args)
            self.check_held(sample_args)
            self(*(np.copy(a) if isinstance(a, np.ndarray) else a for a in sample_args))   # compiles it

    @staticmethod
    def model_unit(unit, tree, namespace, kind):
        """A Unit of the rewritten model `tree`, at the user's file and lines."""
        parsed = unit.parsed
        function = generated_function(ast.unparse(tree), parsed.name, namespace)
        return unit.compiler.unit(function, parsed=ParsedFunction(
            function, tree, parsed.filename, namespace, parsed.source + f"\n# fwdad activity {kind}",
            first_line=parsed.first_line))

    def check_held(self, sample_args):
        """Refuse a model whose parameters reach its losses other than as a layer's W and b: the
        estimate would miss that part of the gradient, silently."""
        n = self.n_params
        spec = self.held.specialization(arg_types(sample_args), tuple(range(n)))
        rng = np.random.default_rng(0)
        tangents = tuple(rng.standard_normal(np.shape(p)).astype(p.dtype) for p in sample_args[:n])
        _, tangent = spec.jvp(*(np.copy(a) if isinstance(a, np.ndarray) else a for a in sample_args), *tangents)
        if np.any(np.asarray(tangent) != 0):
            raise OptionError(
                f"fgd(gradient='activity'): the parameters of {self.where} reach its losses other than as "
                "the weights and biases of its layers (a penalty on the weights, a layer inside a helper, "
                "a parameter used directly): activity perturbation estimates the gradient through its "
                "layers only, and would drop that part.\nWhat to do: compute every use of the "
                "parameters through fwdad.dense / dense_relu in the function itself, or use "
                "gradient='forward'.")

    def refuse_parameters(self, params):
        arrays = [p for p in params if isinstance(p, np.ndarray)]
        if len(arrays) != len(params) or len({a.dtype for a in arrays}) > 1:
            raise OptionError("fgd(gradient='activity'): the parameters must be arrays of one dtype (the "
                              "layers' weights and biases are views of them).\nWhat to do: pass float "
                              "arrays of one dtype, e.g. one flat theta.")

    def refuse_without_layers(self, probe_tree, parsed):
        if not any(isinstance(n, ast.Name) and n.id.startswith("fwdad_inject") for n in ast.walk(probe_tree)):
            raise OptionError(f"fgd(gradient='activity'): {parsed.name} ({parsed.filename}:{parsed.tree.lineno}) "
                              "computes no layer with fwdad.dense or fwdad.dense_relu in its own body (layers "
                              "in helpers it calls are not perturbed), so there is no activity to perturb."
                              "\nWhat to do: write its linear layers as fwdad.dense(x, W, b) / "
                              "fwdad.dense_relu(x, W, b) in the function itself, or use gradient='forward'.")

    def driver_source(self, n_args):
        """The compiled estimator (see the module docstring)."""
        a = [f"a{i}" for i in range(n_args)]
        p = a[:self.n_params]
        flats = ", ".join(f"{x}.reshape({x}.size)" for x in p)
        combine = ("    coef = projection_coefficients(gram, d) / B\n" if self.combine == "orthogonal"
                   else "    coef = d / (K * B)\n")
        gram_pass = ("    mode[0] = GRAM\n"
                     f"    update({', '.join(a)}, (keys, d, gram, mode), params, grads)\n"
                     if self.combine == "orthogonal" else "")
        return (f"def activity_gradient({', '.join(a)}, seed, first, K, distribution, table):\n"
                "    keys = np.empty(K, np.int64)\n"
                "    for k in range(K):\n"
                "        keys[k] = np.int64(stream_key(seed, first + k))\n"
                "    zero, one = a0.dtype.type(0), a0.dtype.type(1)\n"
                f"    losses, dl = probe({', '.join(a)}, zero, keys[0], one)\n"
                "    B = losses.shape[0]\n"
                "    L = losses.size // B\n"
                "    value = np.ascontiguousarray(losses).reshape((B, L))[:, L - 1].mean()\n"
                "    d = np.empty((K, B, L), np.float64)\n"
                "    d[0] = np.ascontiguousarray(dl).reshape((B, L))\n"
                "    for k in range(1, K):\n"
                f"        losses, dl = probe({', '.join(a)}, zero, keys[k], one)\n"
                "        d[k] = np.ascontiguousarray(dl).reshape((B, L))\n"
                f"    params = ({flats},)\n"
                f"    grads = ({', '.join(f'np.zeros({x}.size, {x}.dtype)' for x in p)},)\n"
                f"    gram = np.zeros({'(B, L, K, K)' if self.combine == 'orthogonal' else '(1, 1, 1, 1)'}, np.float64)\n"
                "    mode = np.zeros(1, np.int64)\n"
                + gram_pass + combine +
                "    mode[0] = UPDATE\n"
                f"    update({', '.join(a)}, (keys, coef, gram, mode), params, grads)\n"
                f"    return value, ({', '.join(f'grads[{i}].reshape({x}.shape)' for i, x in enumerate(p))},)\n")

    def driver_namespace(self):
        return {"np": np, "probe": self.probe.jvp, "update": self.update, "stream_key": fwdrandom.stream_key,
                "projection_coefficients": projection_coefficients, "GRAM": GRAM, "UPDATE": UPDATE}

    def __call__(self, *args, seed=0, first=0, directions=1):
        """(mean loss, gradient estimates) at one batch: args are fn's arguments."""
        return self.driver(*args, np.uint64(seed), first, directions, 0, fwdrandom.NORMAL_TABLE)

    def check_coverage(self, sample_args):
        """Refuse a model whose parameters are not all weights or biases of its layers: activity
        perturbation would leave the others unchanged, silently."""
        copies = tuple(np.copy(a) if isinstance(a, np.ndarray) else a for a in sample_args)
        params = tuple(p.reshape(p.size) for p in copies[:self.n_params])
        counts = tuple(np.zeros(p.size, p.dtype) for p in params)
        losses = self.forward(*sample_args)
        refuse_returns(losses)
        B, L = np.shape(losses)[0], max(1, np.size(losses) // max(np.shape(losses)[0], 1))
        state = (np.zeros(1, np.int64), np.zeros((1, B, L)), np.zeros((B, L, 1, 1)), np.array([COVERAGE]))
        try:
            self.update(*copies, state, params, counts)
        except ValueError as error:
            raise OptionError(f"fgd(gradient='activity'): in {self.where}: {error}.\nWhat to do: see "
                              "docs/forward-learning.md (Checks and refusals).") from None
        unnamed = np.flatnonzero(state[2][0, :, 0, 0] == 0)
        if unnamed.size:
            raise OptionError(f"fgd(gradient='activity'): {self.where} returns {L} losses per example, but "
                              f"no layer names column(s) {unnamed.tolist()} with loss= (and groups=): their "
                              "gradient would be dropped.\nWhat to do: name every column by the layers "
                              "it trains, separating blocks with fwdad.stop_gradient.")
        for i, c in enumerate(counts):
            missing = np.flatnonzero(c == 0)
            if missing.size:
                raise OptionError(
                    f"fgd(gradient='activity'): {missing.size} of the {c.size} entries of parameter {i} "
                    f"(first: index {missing[0]}) are not the weights or bias of any fwdad.dense / "
                    f"dense_relu layer of {self.forward.__name__}, so activity perturbation would never "
                    "change them.\nWhat to do: compute every use of the parameters through layers called "
                    "in the function itself (not in a helper), or use gradient='forward'.")


@contextlib.contextmanager
def numba_errors_at_user_lines(probe, where):
    """Numba's errors on the probe, the update or the driver as a CompilationError at the
    user's line (as fwdad reports them for its other generated code), never a Numba traceback."""
    try:
        yield
    except NumbaError as error:
        raise numba_error(error, probe.modules(), f"Numba cannot compile the activity-perturbation "
                          f"code fwdad generated for {where} (its layers need x of shape (batch, n_in), "
                          "W of shape (n_in, n_out) and b of shape (n_out,), all float arrays of one "
                          "dtype)") from None


def arg_types(values):
    return tuple(arg_type(v) for v in values)


def refuse_returns(losses, who="fgd(gradient='activity')"):
    if np.ndim(losses) not in (1, 2) or np.size(losses) == 0:
        raise FwdadError(f"{who}: the model must return per-example losses, shape (batch,) or (batch, L) "
                         f"for L local losses, not shape {np.shape(losses)}.")
