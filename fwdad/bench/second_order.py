"""`fwdad bench --only second`: second derivatives, forward over forward (docs/second-order.md).

Rows, side by side in one process:
* Rosenbrock n = 100 and n = 1e5: one JVP, `f.jvp2` (goal: <= 3 JVPs) and JAX's jvp of jvp
  (jitted);
* Rosenbrock n = 100: the dense Hessian (`f.hessian`), the sparse one with the tridiagonal
  pattern given (`sparsity=`), `f.hvp`, against `jax.jit(jax.hessian)` and JAX's Hessian-vector
  product (jvp of grad, jitted) (goal: the Hessian no slower than jax.hessian).
"""
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


def tridiagonal(n):
    from scipy import sparse
    return sparse.diags([np.ones(n - 1), np.ones(n), np.ones(n - 1)], [-1, 0, 1]).tocsr().astype(bool)


def hessian_rows(table, f, n, kw):
    jax, r = jax_rosenbrock()
    x, v = np.linspace(-1.0, 1.0, n), np.ones(n)
    benchmark = f"Hessian, rosenbrock n={n}"
    dense = f.hessian(x)[0][0]
    pattern = tridiagonal(n)
    sparse = f.hessian(x, sparse=True, sparsity=pattern)
    assert np.allclose(sparse.toarray(), dense, rtol=1e-12, atol=1e-9), "sparse Hessian differs"
    table.add(benchmark, "hessian (fwdad, dense)", timeit(lambda: f.hessian(x), **kw))
    table.add(benchmark, "hessian (fwdad, sparsity= tridiagonal)",
              timeit(lambda: f.hessian(x, sparse=True, sparsity=pattern), **kw))
    table.add(benchmark, "hvp (fwdad)", timeit(lambda: f.hvp((x,), (v,)), **kw))
    if jax is not None:
        xj, vj = jax.numpy.asarray(x), jax.numpy.asarray(v)
        hessian = jax.jit(jax.hessian(r))
        assert np.allclose(np.asarray(hessian(xj)), dense, rtol=1e-12, atol=1e-9), "Hessian differs from JAX"
        table.add(benchmark, "jax.hessian (jit)", timeit(lambda: jax.block_until_ready(hessian(xj)), **kw))
        hvp = jax.jit(lambda p, d: jax.jvp(jax.grad(r), (p,), (d,))[1])
        table.add(benchmark, "hvp: jvp of grad (jax, jit)", timeit(lambda: jax.block_until_ready(hvp(xj, vj)), **kw))
        table.set_baseline(benchmark, "jax.hessian (jit)")


def second_order_section(table, quick):
    """The rows described in this module's docstring."""
    table.section("second", "Second derivatives: forward over forward",
                  "jvp2 rows: ratio = time / one JVP (goal: jvp2 <= 3). Hessian rows: ratio = time "
                  "/ jax.jit(jax.hessian) (goal: <= 1 for the Hessian).", "time")
    kw = dict(repeat=3 if quick else 7, min_time=0.02 if quick else 0.2, max_time=5 if quick else 30)
    f = forward_grad(rosenbrock)
    for n in (100, 100_000):
        jvp2_rows(table, f, n, kw)
    hessian_rows(table, f, 100, kw)
