"""`fwdad bench --only arrays`: array programs written with slices and small networks.

Benchmarks: the explicit 1-D heat equation with slices (64 points, 300 steps), 2-D diffusion
with `A[1:-1, 1:-1]` (32 x 32, 100 steps), both returning sum(u * u), and the paper's MLP
(784-1024-1024-10, batch 64, float32). Rows: numba.njit of the same source (the baseline),
fwdad's primal f(...), fwdad's JVP, a hand-written fused Numba tangent loop, jax.jit(jax.jvp)
and torch.func.jvp. Every row is timed in three interleaved rounds: seconds is the best round,
`spread` the lowest and highest ratio to the same round's baseline. Compile rows: the first
call of a fresh decoration (fwdad primal, fwdad JVP) vs numba.njit's first call.
"""
import time
import types

import numba
import numpy as np

from .. import forward_grad
from . import peers
from .harness import timeit

ROUNDS = 3


def heat(u0, r, steps):
    """Explicit 1-D heat equation, slices only."""
    u = u0.copy()
    for s in range(steps):
        u[1:-1] = u[1:-1] + r * (u[2:] - 2.0 * u[1:-1] + u[:-2])
    return np.sum(u * u)


def diffusion(A0, r, steps):
    """Explicit 2-D diffusion on the interior A[1:-1, 1:-1]."""
    A = A0.copy()
    for s in range(steps):
        A[1:-1, 1:-1] = A[1:-1, 1:-1] + r * (A[2:, 1:-1] + A[:-2, 1:-1] + A[1:-1, 2:] + A[1:-1, :-2]
                                             - 4.0 * A[1:-1, 1:-1])
    return np.sum(A * A)


@numba.njit(cache=False)
def heat_jvp_by_hand(u0, r, steps, du0):
    """The heat equation's value and tangent in one loop per step, buffers allocated once."""
    u, du = u0.copy(), du0.copy()
    n = u.shape[0]
    new, dnew = np.empty(n - 2), np.empty(n - 2)
    for s in range(steps):
        for i in range(1, n - 1):
            new[i - 1] = u[i] + r * (u[i + 1] - 2.0 * u[i] + u[i - 1])
            dnew[i - 1] = du[i] + r * (du[i + 1] - 2.0 * du[i] + du[i - 1])
        u[1:-1] = new
        du[1:-1] = dnew
    total, dtotal = 0.0, 0.0
    for i in range(n):
        total += u[i] * u[i]
        dtotal += 2.0 * u[i] * du[i]
    return total, dtotal


@numba.njit(cache=False)
def diffusion_jvp_by_hand(A0, r, steps, dA0):
    A, dA = A0.copy(), dA0.copy()
    n, m = A.shape
    new, dnew = np.empty((n - 2, m - 2)), np.empty((n - 2, m - 2))
    for s in range(steps):
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                new[i - 1, j - 1] = A[i, j] + r * (A[i + 1, j] + A[i - 1, j] + A[i, j + 1] + A[i, j - 1]
                                                   - 4.0 * A[i, j])
                dnew[i - 1, j - 1] = dA[i, j] + r * (dA[i + 1, j] + dA[i - 1, j] + dA[i, j + 1]
                                                     + dA[i, j - 1] - 4.0 * dA[i, j])
        A[1:-1, 1:-1] = new
        dA[1:-1, 1:-1] = dnew
    total, dtotal = 0.0, 0.0
    for i in range(n):
        for j in range(m):
            total += A[i, j] * A[i, j]
            dtotal += 2.0 * A[i, j] * dA[i, j]
    return total, dtotal


def jax_stencil(kind, r, steps):
    """jit(jvp) of the same program in JAX (lax.fori_loop over steps), or None without JAX."""
    if not peers.available().get("jax"):
        return None
    jax = peers.jax_setup()
    import jax.numpy as jnp

    def step(_, u):
        if kind == "heat":
            return u.at[1:-1].set(u[1:-1] + r * (u[2:] - 2.0 * u[1:-1] + u[:-2]))
        return u.at[1:-1, 1:-1].set(u[1:-1, 1:-1] + r * (u[2:, 1:-1] + u[:-2, 1:-1] + u[1:-1, 2:]
                                                         + u[1:-1, :-2] - 4.0 * u[1:-1, 1:-1]))

    def program(u):
        u = jax.lax.fori_loop(0, steps, step, u)
        return jnp.sum(u * u)
    jvp = jax.jit(lambda u, du: jax.jvp(program, (u,), (du,)))
    return lambda u, du: jax.block_until_ready(jvp(u, du))


def torch_stencil(kind, r, steps):
    """torch.func.jvp of the same program (a Python loop of tensor operations), or None."""
    if not peers.available().get("torch"):
        return None
    import torch

    def program(u):
        u = u.clone()
        for _ in range(steps):
            if kind == "heat":
                u = torch.cat([u[:1], u[1:-1] + r * (u[2:] - 2.0 * u[1:-1] + u[:-2]), u[-1:]])
            else:
                inner = u[1:-1, 1:-1] + r * (u[2:, 1:-1] + u[:-2, 1:-1] + u[1:-1, 2:] + u[1:-1, :-2]
                                             - 4.0 * u[1:-1, 1:-1])
                u = torch.cat([u[:1], torch.cat([u[1:-1, :1], inner, u[1:-1, -1:]], 1), u[-1:]])
        return (u * u).sum()
    return lambda u, du: torch.func.jvp(program, (torch.from_numpy(u),), (torch.from_numpy(du),))


def stencil_rows(kind, quick):
    """{implementation: zero-argument callable} for the heat or diffusion benchmark."""
    rng = np.random.default_rng(0)
    if kind == "heat":
        function, by_hand, steps = heat, heat_jvp_by_hand, 30 if quick else 300
        u = np.sin(np.linspace(0.0, np.pi, 64))
    else:
        function, by_hand, steps = diffusion, diffusion_jvp_by_hand, 10 if quick else 100
        u = rng.random((32, 32))
    du, r = rng.standard_normal(u.shape), 0.2 if kind == "heat" else 0.1
    f, njit = forward_grad(function), numba.njit(function)
    calls = {"numba.njit primal": lambda: njit(u, r, steps), "fwdad primal": lambda: f(u, r, steps),
             "fwdad JVP": lambda: f.jvp((u, r, steps), (du, None, None)),
             "Numba JVP, fused by hand": lambda: by_hand(u, r, steps, du)}
    for name, make in (("jax.jit(jax.jvp)", jax_stencil), ("torch.func.jvp", torch_stencil)):
        peer = make(kind, r, steps)
        if peer is not None:
            calls[name] = lambda peer=peer: peer(u, du)
    check(f, by_hand, u, r, steps, du)
    return f"{kind} {'x'.join(map(str, u.shape))} T={steps}", calls


def check(f, by_hand, u, r, steps, du):
    """fwdad's value and tangent agree with the hand-written loop (a benchmark of wrong code is none)."""
    value, tangent = f.jvp((u, r, steps), (du, None, None))
    expected = by_hand(u, r, steps, du)
    if not np.allclose((value, tangent), expected, rtol=1e-10):
        raise AssertionError(f"fwdad {value, tangent} != hand-written {expected}")


def mlp_rows(quick):
    """The paper's MLP: fwdad's primal and JVP beside the peers of the jvp section."""
    from .suites import mlp
    params, X, Y = peers.mlp_data(batch=64)
    tangents = peers.mlp_direction(params, 1)
    f = forward_grad(mlp)
    row = peers.suite("mlp", batch=64)
    calls = {"numba.njit primal": row["numba"].primal, "fwdad primal": lambda: f(*params, X, Y),
             "fwdad JVP": lambda: f.jvp((*params, X, Y), (*tangents, None, None)),
             "Numba JVP, fused by hand": row["numba"].jvp}
    for name, peer in (("jax.jit(jax.jvp)", "jax"), ("torch.func.jvp", "torch")):
        if peer in row:
            calls[name] = row[peer].jvp
    return "paper MLP 784-1024-1024-10 b=64 f32", calls


def measure(table, benchmark, calls, quick):
    """Interleaved rounds; seconds: the best round; spread: the range of the ratio to the baseline."""
    kw = dict(repeat=3, min_time=0.01 if quick else 0.05, max_time=2 if quick else 10)
    rounds = [{name: timeit(call, **kw) for name, call in calls.items()} for _ in range(ROUNDS)]
    for name in calls:
        ratios = [r[name] / r["numba.njit primal"] for r in rounds]
        table.add(benchmark, name, min(r[name] for r in rounds),
                  spread=f"{min(ratios):.2f}-{max(ratios):.2f}")
    table.set_baseline(benchmark, "numba.njit primal")


def compile_rows(table):
    """First call of a fresh decoration of the heat equation: fwdad first, then numba.njit (which
    then finds Numba's process-wide caches warm: the ratio is on the safe side for fwdad)."""
    u, du = np.sin(np.linspace(0.0, np.pi, 64)), np.ones(64)
    benchmark = "first call (compile), heat"
    numba.njit(lambda x: x + 1.0)(1.0)          # Numba's own first-compile set-up is not the program's
    f = forward_grad(types.FunctionType(heat.__code__, heat.__globals__, "heat_fwdad"))
    start = time.perf_counter()
    f(u, 0.2, 3)
    primal = time.perf_counter() - start
    start = time.perf_counter()
    f.jvp((u, 0.2, 3), (du, None, None))
    jvp = time.perf_counter() - start
    start = time.perf_counter()
    numba.njit(types.FunctionType(heat.__code__, heat.__globals__, "heat_njit"))(u, 0.2, 3)
    table.add(benchmark, "numba.njit primal", time.perf_counter() - start)
    table.add(benchmark, "fwdad primal", primal)
    table.add(benchmark, "fwdad JVP (after the primal)", jvp)
    table.set_baseline(benchmark, "numba.njit primal")


def arrays_section(table, quick):
    """The rows described in this module's docstring."""
    table.section("arrays", "Array programs: slices, stencils, the MLP",
                  "time: one call; ratio = time / numba.njit of the same source (primal); spread: "
                  "lowest-highest ratio over 3 interleaved rounds; compile rows: first call, seconds.",
                  "time", (("spread", "spread"),))
    compile_rows(table)
    for kind in ("heat", "diffusion"):
        measure(table, *stencil_rows(kind, quick), quick)
    measure(table, *mlp_rows(quick), quick)
