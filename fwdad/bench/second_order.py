"""`fwdad bench --only second`: second derivatives, forward over forward (docs/second-order.md).

Rows, side by side in one process:
* Rosenbrock n = 100 and n = 1e5: one JVP, `f.jvp2` (goal: <= 3 JVPs) and JAX's jvp of jvp
  (jitted);
* Rosenbrock n = 100 and n = 1e4: Hessian pattern detection (uncached; first call with
  compiling), its star colors beside a column coloring's, the sparse Hessian with the detected
  pattern (`sparse=True`), the dense one (`f.hessian`, n = 100 only) and `f.hvp`, against
  `jax.jit(jax.hessian)` (dense), sparsejac's compressed Jacobian of `jax.grad` with the same
  pattern (JAX's sparse Hessian route) and JAX's Hessian-vector product (jvp of grad, jitted)
  (goal: the Hessian no slower than jax.hessian).
"""
import time

import numpy as np

from .. import forward_grad
from .harness import timeit
from .problems import rosenbrock


def jax_rosenbrock():
    try:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
    except ImportError:
        return None, None
    return jax, lambda x: jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def jvp2_rows(table, f, n, kw):
    jax, r = jax_rosenbrock()
    x, v = np.linspace(-1.0, 1.0, n), np.ones(n)
    benchmark = f"second derivative along v, rosenbrock n={n}"
    table.add(benchmark, "one JVP (fwdad)", timeit(lambda: f.jvp((x,), (v,)), **kw))
    table.add(benchmark, "jvp2 (fwdad)", timeit(lambda: f.jvp2((x,), (v,)), **kw))
    if jax is not None:
        jv = jax.jit(lambda p, d: jax.jvp(lambda q: jax.jvp(r, (q,), (d,))[1], (p,), (d,)))
        xj, vj = jax.numpy.asarray(x), jax.numpy.asarray(v)
        second = float(jv(xj, vj)[1])
        assert np.isclose(second, f.jvp2((x,), (v,))[2], rtol=1e-10), "jvp2 differs from JAX"
        table.add(benchmark, "jvp of jvp (jax, jit)", timeit(lambda: jax.block_until_ready(jv(xj, vj)), **kw))
    table.set_baseline(benchmark, "one JVP (fwdad)")


def hessian_rows(table, f, n, kw):
    """The sparse Hessian with the detected pattern and its star coloring beside the dense ones;
    the dense f.hessian only where it takes seconds (n x n directional passes)."""
    from ..coloring import color_columns
    from ..sparse.hessian import detect_hessian
    jax, r = jax_rosenbrock()
    x, v = np.linspace(-1.0, 1.0, n), np.ones(n)
    benchmark = f"Hessian, rosenbrock n={n}"
    start = time.perf_counter()
    pattern = f.hessian_sparsity(x)
    first = time.perf_counter() - start
    column_colors = int(color_columns(pattern.matrix.indptr, pattern.matrix.indices, n).max()) + 1
    sparse = f.hessian(x, sparse=True)
    few = dict(kw, repeat=min(kw["repeat"], 3)) if n > 1000 else kw
    table.add(benchmark, "detection (fwdad, uncached)", timeit(lambda: detect_hessian(f, (x,), False), **few),
              first_s=round(first, 3), nnz=pattern.nnz)
    table.add(benchmark, "hessian (fwdad, sparse=True)",
              timeit(lambda: f.hessian(x, sparse=True), **few), colors=pattern.n_colors,
              column_colors=column_colors)
    if n <= 1000:
        dense = f.hessian(x)[0][0]
        assert np.allclose(sparse.toarray(), dense, rtol=1e-12, atol=1e-9), "sparse Hessian differs"
        table.add(benchmark, "hessian (fwdad, dense)", timeit(lambda: f.hessian(x), **kw))
        table.add(benchmark, "hvp (fwdad)", timeit(lambda: f.hvp((x,), (v,)), **kw))
    else:
        table.note(f"n={n}: no dense f.hessian row (n x n forward-over-forward passes: minutes)")
    if jax is not None:
        xj, vj = jax.numpy.asarray(x), jax.numpy.asarray(v)
        hessian = jax.jit(jax.hessian(r))
        assert np.allclose(np.asarray(hessian(xj))[pattern.matrix.nonzero()], sparse.data, rtol=1e-12, atol=1e-9), \
            "Hessian differs from JAX"
        table.add(benchmark, "jax.hessian (jit, dense)", timeit(lambda: jax.block_until_ready(hessian(xj)), **few))
        if n <= 1000:
            hvp = jax.jit(lambda p, d: jax.jvp(jax.grad(r), (p,), (d,))[1])
            table.add(benchmark, "hvp: jvp of grad (jax, jit)", timeit(lambda: jax.block_until_ready(hvp(xj, vj)), **kw))
        sparsejac_row(table, benchmark, jax, r, xj, pattern, sparse, few)
        table.set_baseline(benchmark, "jax.hessian (jit, dense)")
    else:
        table.note("jax not installed: no jax.hessian row")


def sparsejac_row(table, benchmark, jax, r, xj, pattern, sparse, kw):
    """JAX's sparse Hessian route: sparsejac's compressed jacfwd of jax.grad (forward over
    reverse, column coloring) with fwdad's detected pattern."""
    try:
        import sparsejac
        from jax.experimental import sparse as jsparse
    except ImportError:
        table.note("sparsejac not installed: no sparse JAX Hessian row")
        return
    bcoo = jsparse.BCOO.from_scipy_sparse(pattern.matrix.astype(np.float64).tocoo())
    hessian = jax.jit(sparsejac.jacfwd(jax.grad(r), sparsity=bcoo))
    out = hessian(xj)
    indices = np.asarray(out.indices)
    theirs = type(sparse)((np.asarray(out.data), (indices[:, 0], indices[:, 1])), shape=sparse.shape)
    assert abs(theirs - sparse).max() <= 1e-9 * abs(sparse).max(), "sparsejac differs"
    table.add(benchmark, "sparsejac.jacfwd(jax.grad) (jit)", timeit(lambda: jax.block_until_ready(hessian(xj)), **kw))


def second_order_section(table, quick):
    """The rows described in this module's docstring."""
    table.section("second", "Second derivatives: forward over forward",
                  "jvp2 rows: ratio = time / one JVP (goal: jvp2 <= 3). Hessian rows: ratio = time "
                  "/ jax.jit(jax.hessian) (goal: <= 1 for the Hessian).", "time")
    kw = dict(repeat=3 if quick else 7, min_time=0.02 if quick else 0.2, max_time=5 if quick else 30)
    f = forward_grad(rosenbrock)
    for n in (100, 100_000):
        jvp2_rows(table, f, n, kw)
    for n in (100, 2_000 if quick else 10_000):           # quick: a smaller large case
        hessian_rows(table, f, n, kw)
