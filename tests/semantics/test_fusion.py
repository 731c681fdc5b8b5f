"""Fused elementwise loops (transform/elementwise.py) and the rebuilt primal (frontend/rebuild.py).

The fused code must give the values and tangents of the unfused code (fusion switched off),
CPython's values, jax.jvp's tangents and central differences; slices that overlap the target
keep NumPy's copy-first semantics; float32 stays float32; broadcasting and 0-d arrays fall back
to the array statements. One test fails if fusion silently stops for the heat equation.
"""
import ast
import copy
import re

import numba
import numpy as np
import pytest

import fwdad
import fwdad.compiler
from fwdad.bench.arrays import diffusion, heat
from helpers import check_jvp

try:
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
except ImportError:
    jax = None


def shift_overlapping(u, a):
    v = u * 1.0
    v[1:] = v[:-1] * a + v[1:] * v[1:]      # reads v[:-1], which the same statement writes
    v[:-1] = np.exp(v[1:]) - v[:-1] / a
    return v


def broadcast_and_0d(A, B, c, z):
    P = A * B + np.tanh(A) * c              # (3, 1) and (3, 4): same ndim, shapes differ
    q = B[0] * z + B[1] * z                 # z is 0-d
    return np.sum(P * P) + np.sum(q * q)


def relu_layer(x, W, b):
    h = x @ W
    a = np.maximum(h + b, 0.0) * 2.0 - np.where(h > 0.5, h, 0.0)
    return np.sum(a * a)


def run_then_loop(x, y, c):
    z = x * y + c * x                       # the fused run ends where the for loop starts
    for i in range(1, z.shape[0]):
        z[i] = z[i] + z[i - 1]
    return z


HEAT = fwdad.forward_grad(heat)
U = np.sin(np.linspace(0.0, 3.0, 16))
DU = np.cos(np.linspace(0.0, 2.0, 16))


def unfused(function, monkeypatch):
    """The same function compiled with the fusion pass switched off (the code before it)."""
    monkeypatch.setattr(fwdad.compiler, "fuse_tangent", lambda function, *args: function)
    return fwdad.forward_grad(copy_of(function))


def copy_of(function):
    import types
    return types.FunctionType(function.__code__, function.__globals__, function.__name__ + "_copy")


def time_loop_body(source):
    function = ast.parse(source).body[0]
    return next(s for s in function.body if isinstance(s, ast.For)).body


def test_heat_fuses_into_one_loop_without_temporaries():
    """Inside the time loop: the slices, then one loop that writes two buffers (the value's and
    the tangent's, made once ahead of the time loop), then the two slice writes as copy loops;
    the final np.sum(u * u) is accumulated in a loop."""
    source = HEAT.source_for(U, 0.2, 3)
    body = time_loop_body(source)
    fused = next(s for s in body if isinstance(s, ast.If))
    loops = [s for s in ast.walk(ast.Module(fused.body, [])) if isinstance(s, ast.For)]
    assert len(loops) == 3                       # the step, then the two copies into u and d_u
    allocations = [n for n in ast.walk(ast.Module(body, [])) if isinstance(n, ast.Call)
                   and ast.unparse(n.func) == "np.empty"]
    assert allocations == []                     # nothing allocated per step: the buffers of t8
    function = ast.parse(source).body[0]         # and d_t8 are made once, ahead of the time loop
    loop = next(i for i, s in enumerate(function.body) if isinstance(s, ast.For))
    assert [ast.unparse(s) for s in function.body[loop - 2:loop]] == [
        "t8_buffer = np.empty(u[1:-1].shape, np.float64)", "d_t8_buffer = np.empty(u[1:-1].shape, np.float64)"]
    copies = [ast.unparse(s.body[0]) for s in fused.body if isinstance(s, ast.For)][1:]
    assert copies == ["t1[i_1] = t8_buffer[i_1]", "d_t1[i_2] = d_t8_buffer[i_2]"]   # u[1:-1] = t8
    assert "_sum += " in source
    primal = HEAT.unit.module.source
    assert "u[1:-1] = t1 + r * (u[2:] - 2.0 * t1 + u[:-2])" in primal   # one Numba array expression


@pytest.mark.slow
def test_heat_matches_unfused_cpython_and_jax(monkeypatch):
    value, tangent = HEAT.jvp((U, 0.2, 40), (DU, None, None))
    assert value == pytest.approx(heat(U, 0.2, 40), rel=1e-13)
    assert HEAT(U, 0.2, 40) == pytest.approx(heat(U, 0.2, 40), rel=1e-13)
    plain = unfused(heat, monkeypatch)
    plain_value, plain_tangent = plain.jvp((U, 0.2, 40), (DU, None, None))
    assert "_sum" not in plain.source
    assert (value, tangent) == pytest.approx((plain_value, plain_tangent), rel=1e-13)
    if jax is not None:
        jax_heat = lambda u: jnp.sum(jax_steps(u, 0.2, 40) ** 2)   # noqa: E731
        _, expected = jax.jvp(jax_heat, (jnp.asarray(U),), (jnp.asarray(DU),))
        assert tangent == pytest.approx(float(expected), rel=1e-11)


def jax_steps(u, r, steps):
    for _ in range(steps):
        u = u.at[1:-1].set(u[1:-1] + r * (u[2:] - 2.0 * u[1:-1] + u[:-2]))
    return u


@pytest.mark.slow
def test_heat_float32_stays_float32():
    u, du = U.astype(np.float32), DU.astype(np.float32)
    value, tangent = HEAT.jvp((u, np.float32(0.2), 10), (du, None, None))
    source = HEAT.source_for(u, np.float32(0.2), 10)
    # Numba types 2.0 * u (float32) as float64, so the step's buffers are float64 as the primal's
    # arrays are; u * u stays float32 and so does the fused sum of it
    assert "t8_buffer = np.empty(u[1:-1].shape, np.float64)" in source and "t10_sum = np.float32(0.0)" in source
    expected_value, expected_tangent = HEAT.jvp((U, 0.2, 10), (DU, None, None))
    assert value == pytest.approx(expected_value, rel=1e-5)
    assert tangent == pytest.approx(expected_tangent, rel=1e-4)


def test_overlapping_slices_keep_numpy_semantics(rng):
    shifted = fwdad.forward_grad(shift_overlapping)
    check_jvp(shifted, [rng.normal(size=9), 1.5], rng)
    assert "np.empty(" in shifted.source_for(rng.normal(size=9), 1.5)


def shrinking_window(u, a):
    v = u * 1.0
    for k in range(1, 4):                   # the run's shape changes every step: new buffers
        v[k:] = np.sin(v[k:]) * a + v[:-k]
    return v


def keeps_the_previous_step(u, a, steps):
    prev = u * 0.0
    for s in range(steps):
        new = np.sin(u) * a + u
        u[:] = new + prev                   # `new` outlives the step: its buffer is not reused
        prev = new
    return np.sum(prev * u)


def rows_in_prange(A, a):
    B = np.zeros_like(A)
    for i in numba.prange(A.shape[0]):     # iterations may run at once: one buffer each
        B[i, :] = np.sin(A[i]) * a + A[i] * A[i]
    return B


def stores_elsewhere(u, w, a, steps):
    u, w = u.copy(), w.copy()
    for s in range(steps):
        w[1:] = u[1:] * a + np.sin(w[:-1])  # w[1:] is no view the run reads: a store of the buffer
        u[:] = w * 0.5 + u
        w[0] = u[0] * a
    return np.sum(u * w)


def view_rebound_in_the_run(u, a, steps):
    u = u.copy()
    for s in range(steps):
        v = u[1:-1]
        v = v * a + v                       # `v` is no longer the view u[1:-1] ...
        u[1:-1] = v * 0.5                   # ... so this write must not go through it
        u[0] = np.sum(v) * 0.1
    return np.sum(u * u)


def snapshots_in_a_list(x, c):
    out = [x, x]
    for s in range(2):
        y = x * (s + 1.0) + 1.0
        out[s] = y                          # a list keeps the array itself: no buffer is reused
    return c * (out[0][0] + out[1][0])


def test_a_list_keeps_the_array_not_a_copy():
    f = fwdad.forward_grad(snapshots_in_a_list, wrt="c")
    assert f.jvp((np.array([1.0, 2.0]), 3.0), (None, 1.0)) == (15.0, 5.0)


def test_a_kept_buffer_is_not_shared_and_not_written_through_a_rebound_view(rng):
    previous = fwdad.forward_grad(keeps_the_previous_step)
    check_jvp(previous, [rng.normal(size=5), 0.3, 4], rng)
    assert "    new = np.empty(u.shape, np.float64)" in previous.source_for(rng.normal(size=5), 0.3, 4)
    check_jvp(fwdad.forward_grad(view_rebound_in_the_run), [rng.normal(size=8), 0.3, 4], rng)


@pytest.mark.slow
def test_kept_buffers_follow_shape_changes_and_other_targets(rng):
    window = fwdad.forward_grad(shrinking_window)
    check_jvp(window, [rng.normal(size=9), 0.7], rng)
    assert "_buffer" not in window.source_for(rng.normal(size=9), 0.7)   # k changes v[k:]'s shape
    elsewhere = fwdad.forward_grad(stores_elsewhere)
    check_jvp(elsewhere, [rng.normal(size=7), rng.normal(size=7), 0.8, 5], rng)
    assert re.search(r"\n +w\[1:\] = t\d+_buffer\n", elsewhere.source_for(rng.normal(size=7), rng.normal(size=7), 0.8, 5))


@pytest.mark.slow                                   # target="parallel" compiles for 3-5 s
def test_no_buffer_is_shared_by_prange_iterations(rng):
    parallel = fwdad.forward_grad(rows_in_prange, target="parallel")
    check_jvp(parallel, [rng.normal(size=(6, 5)), 0.5], rng)
    assert "_buffer" not in parallel.source_for(rng.normal(size=(6, 5)), 0.5)


def test_run_followed_by_a_loop(rng):
    function = fwdad.forward_grad(run_then_loop)
    check_jvp(function, [rng.normal(size=6), rng.normal(size=6), 0.5], rng)
    assert "_i = " in function.source_for(rng.normal(size=6), rng.normal(size=6), 0.5)


@pytest.mark.slow
def test_diffusion_2d_matches_jax(rng):
    function = fwdad.forward_grad(diffusion)
    A, dA = rng.normal(size=(7, 6)), rng.normal(size=(7, 6))
    value, tangent = function.jvp((A, 0.1, 5), (dA, None, None))
    assert value == pytest.approx(diffusion(A, 0.1, 5), rel=1e-13)
    assert "for i_1 in range(" in function.source_for(A, 0.1, 5)
    if jax is not None:
        def jax_diffusion(A):
            for _ in range(5):
                A = A.at[1:-1, 1:-1].set(A[1:-1, 1:-1] + 0.1 * (A[2:, 1:-1] + A[:-2, 1:-1] + A[1:-1, 2:]
                                                                 + A[1:-1, :-2] - 4.0 * A[1:-1, 1:-1]))
            return jnp.sum(A * A)
        _, expected = jax.jvp(jax_diffusion, (jnp.asarray(A),), (jnp.asarray(dA),))
        np.testing.assert_allclose(tangent, np.asarray(expected), rtol=1e-11, atol=1e-13)


@pytest.mark.slow
def test_broadcasting_and_0d_fall_back(rng):
    function = fwdad.forward_grad(broadcast_and_0d)
    args = [rng.normal(size=(3, 1)), rng.normal(size=(3, 4)), 0.7, np.array(1.3)]
    check_jvp(function, args, rng)
    source = function.source_for(*args)
    assert "if B.shape == A.shape" in source or "A.shape == B.shape" in source or ".shape ==" in source


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relu_like_layer_fused_matches_unfused(dtype, rng, monkeypatch):
    args = [rng.normal(size=(5, 4)).astype(dtype), rng.normal(size=(4, 3)).astype(dtype),
            rng.normal(size=3).astype(dtype)]
    tangents = [rng.normal(size=a.shape).astype(dtype) for a in args]
    fused = fwdad.forward_grad(relu_layer)
    value, tangent = fused.jvp(copy.deepcopy(args), copy.deepcopy(tangents))
    source = fused.source_for(*args)
    assert "_sum += " in source and "b[i_" in source and "d_b[i_" in source   # the bias is fused too
    plain = unfused(relu_layer, monkeypatch)
    plain_value, plain_tangent = plain.jvp(copy.deepcopy(args), copy.deepcopy(tangents))
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose([value, tangent], [plain_value, plain_tangent], rtol=rtol)
    check_jvp(fused, [a.astype(np.float64) for a in args], rng)
