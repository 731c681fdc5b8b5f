"""`fwdad bench --only sparse`: sparse Jacobians of the 2-D Brusselator (N = 32, 2048 states).

Rows: the number of colors (and the clique lower bound), detection time, one sparse Jacobian,
one JVP (the baseline: the goal is a sparse Jacobian within (colors + 2) JVPs), dense
f.jacobian, jax.jacfwd (jitted) and sparsejac (jitted, the same pattern) where they install;
then whole solve_ivp(method="BDF") runs: fwdad's sparse Jacobian vs SciPy's finite differences
with the same jac_sparsity, each against a tight-tolerance reference.
"""
import time

import numpy as np

from .. import coloring, forward_grad
from ..sparse.jacobian import detect
from .harness import timeit

A, B, ALPHA = 3.4, 1.0, 10.0


def brusselator_2d(t, u, n):
    """du/dt of SciML's 2-D Brusselator: u holds species 1 then species 2, each n x n in row-major
    order, on a periodic grid over [0, 1]^2 (5-point Laplacian, alpha = 10, the forcing pulse
    switched on at t = 1.1 in a disc around (0.3, 0.6))."""
    step = 1.0 / (n - 1)
    diffusion = ALPHA / (step * step)
    nn = n * n
    du = np.empty(2 * nn)
    for i in range(n):
        x = i * step
        up, down = (i + 1) % n, (i - 1) % n
        for j in range(n):
            y = j * step
            right, left = (j + 1) % n, (j - 1) % n
            k = i * n + j
            u1, u2 = u[k], u[nn + k]
            lap1 = u[down * n + j] + u[up * n + j] + u[i * n + right] + u[i * n + left] - 4.0 * u1
            lap2 = (u[nn + down * n + j] + u[nn + up * n + j] + u[nn + i * n + right]
                    + u[nn + i * n + left] - 4.0 * u2)
            forcing = 0.0
            if t >= 1.1:
                if (x - 0.3) ** 2 + (y - 0.6) ** 2 <= 0.01:
                    forcing = 5.0
            du[k] = diffusion * lap1 + B + u1 * u1 * u2 - (A + 1.0) * u1 + forcing
            du[nn + k] = diffusion * lap2 + A * u1 - u1 * u1 * u2
    return du


def initial_state(n):
    """SciML's initial condition: u1 = 22 (y (1 - y))^1.5, u2 = 27 (x (1 - x))^1.5."""
    grid = np.linspace(0.0, 1.0, n)
    x, y = np.meshgrid(grid, grid, indexing="ij")
    return np.concatenate([(22.0 * (y * (1.0 - y)) ** 1.5).ravel(), (27.0 * (x * (1.0 - x)) ** 1.5).ravel()])


def jax_brusselator(n):
    """The same right-hand side in jax.numpy (rolls for the periodic stencil)."""
    import jax.numpy as jnp
    step = 1.0 / (n - 1)
    grid = jnp.linspace(0.0, 1.0, n)
    x, y = jnp.meshgrid(grid, grid, indexing="ij")
    disc = ((x - 0.3) ** 2 + (y - 0.6) ** 2 <= 0.01) * 5.0

    def laplacian(v):
        return (jnp.roll(v, 1, 0) + jnp.roll(v, -1, 0) + jnp.roll(v, 1, 1) + jnp.roll(v, -1, 1) - 4.0 * v)

    def rhs(u, t):
        u1, u2 = u[:n * n].reshape(n, n), u[n * n:].reshape(n, n)
        diffusion = ALPHA / (step * step)
        forcing = jnp.where(t >= 1.1, disc, 0.0)
        d1 = diffusion * laplacian(u1) + B + u1 * u1 * u2 - (A + 1.0) * u1 + forcing
        d2 = diffusion * laplacian(u2) + A * u1 - u1 * u1 * u2
        return jnp.concatenate([d1.ravel(), d2.ravel()])
    return rhs


def jax_rows(n, u, pattern, kw):
    """(name, seconds) for jax.jacfwd and sparsejac, each checked against fwdad's dense Jacobian;
    names with None seconds when they do not install."""
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
    except ImportError:
        return [("jax.jacfwd (jit)", None)]
    rhs = jax_brusselator(n)
    dense = jax.jit(jax.jacfwd(lambda v: rhs(v, 2.0)))
    u_jax = jax.numpy.asarray(u)
    jax.block_until_ready(dense(u_jax))
    rows = [("jax.jacfwd (jit)", timeit(lambda: jax.block_until_ready(dense(u_jax)), **kw), np.asarray(dense(u_jax)))]
    try:
        import sparsejac
        from jax.experimental import sparse as jsparse
    except ImportError:
        return rows + [("sparsejac (jit)", None, None)]
    bcoo = jsparse.BCOO.from_scipy_sparse(pattern.matrix.astype(np.float64).tocoo())
    sparse = jax.jit(sparsejac.jacfwd(lambda v: rhs(v, 2.0), sparsity=bcoo))
    jax.block_until_ready(sparse(u_jax))
    seconds = timeit(lambda: jax.block_until_ready(sparse(u_jax)), **kw)
    return rows + [("sparsejac (jit)", seconds, np.asarray(sparse(u_jax).todense()))]


def jacobian_rows(table, n, quick):
    f = forward_grad(brusselator_2d, wrt="u")
    u = initial_state(n) + 0.1
    kw = dict(repeat=3 if quick else 7, min_time=0.02 if quick else 0.2, max_time=5 if quick else 30)
    benchmark = f"brusselator 2-D N={n} Jacobian"
    start = time.perf_counter()
    pattern = f.sparsity(2.0, u, n)
    first = time.perf_counter() - start
    pattern.colors
    dense = f.jacobian(2.0, u, n)[1]
    sparse = f.jacobian(2.0, u, n, sparse=True)[1]
    assert np.allclose(sparse.toarray(), dense, rtol=1e-12, atol=1e-12)
    du = np.ones_like(u)
    f.jvp((2.0, u, n), (None, du, None))
    table.add(benchmark, "one JVP (fwdad)", timeit(lambda: f.jvp((2.0, u, n), (None, du, None)), **kw))
    table.add(benchmark, "sparse jacobian (fwdad)", timeit(lambda: f.jacobian(2.0, u, n, sparse=True), **kw),
              colors=pattern.n_colors, bound=coloring.lower_bound(pattern.matrix.indptr),
              nnz=pattern.nnz)
    table.add(benchmark, "detection (fwdad, uncached)", timeit(lambda: detect(f, (2.0, u, n), False), **kw),
              first_s=round(first, 3))
    table.add(benchmark, "dense f.jacobian (fwdad)", timeit(lambda: f.jacobian(2.0, u, n), **kw))
    for name, seconds, *matrix in jax_rows(n, u, pattern, kw):
        if matrix and matrix[0] is not None:
            assert np.allclose(matrix[0], dense, rtol=1e-10, atol=1e-8), name
        if seconds is not None:
            table.add(benchmark, name, seconds)
        else:
            table.note(f"{name}: not installed, no row")
    table.set_baseline(benchmark, "one JVP (fwdad)")
    return f, pattern


def solve_rows(table, f, pattern, n, quick):
    """Whole solve_ivp(BDF) runs; the FD run is the baseline."""
    from scipy.integrate import solve_ivp
    t_end = 2.0 if quick else 11.5
    u0 = initial_state(n)
    fun = lambda t, u: f(t, u, n)
    jac = lambda t, u: f.jacobian(t, u, n, sparse=True)[1]
    reference = solve_ivp(fun, (0.0, t_end), u0, method="BDF", rtol=1e-10, atol=1e-10, jac=jac)
    benchmark = f"brusselator 2-D N={n} solve_ivp BDF t=[0, {t_end}] rtol=1e-6"
    for name, options in (("SciPy FD, jac_sparsity=", dict(jac_sparsity=pattern.matrix)),
                          ("fwdad sparse jac=", dict(jac=jac))):
        seconds = np.inf
        for _ in range(1 if quick else 3):           # the fastest of 3 whole runs: a shared machine
            start = time.perf_counter()
            solution = solve_ivp(fun, (0.0, t_end), u0, method="BDF", rtol=1e-6, atol=1e-6, **options)
            seconds = min(seconds, time.perf_counter() - start)
        error = float(np.abs(solution.y[:, -1] - reference.y[:, -1]).max())
        table.add(benchmark, name, seconds, nfev=solution.nfev, njev=solution.njev, error=f"{error:.1e}")
    table.set_baseline(benchmark, "SciPy FD, jac_sparsity=")


def sparse_section(table, quick):
    """The rows described in this module's docstring."""
    table.section("sparse", "Sparse Jacobians: 2-D Brusselator (2048 states)",
                  "Jacobian rows: ratio = time / one JVP (goal: sparse jacobian <= colors + 2); "
                  "bound: most nonzeros in a row, no coloring has fewer colors; nnz: nonzeros; first_s: the "
                  "first call in seconds (compiling). solve_ivp rows: "
                  "ratio = time / SciPy's finite differences with the same sparsity; error: max "
                  "abs difference at t_end from a tol=1e-10 reference.", "time")
    n = 32
    f, pattern = jacobian_rows(table, n, quick)
    solve_rows(table, f, pattern, n, quick)
