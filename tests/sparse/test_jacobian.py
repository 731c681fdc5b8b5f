"""Compressed sparse Jacobians (fwdad/sparse/jacobian.py) and colorings (fwdad/coloring.py)."""
import sys

import numpy as np
import pytest
import scipy.sparse

import fwdad
from fwdad import coloring
from fwdad.errors import SparsityError


@fwdad.forward_grad
def reaction_diffusion(u, k):
    n = u.shape[0] // 2
    du = np.empty(2 * n)
    for i in range(n):
        left, right = (i - 1) % n, (i + 1) % n
        a, b = u[i], u[n + i]
        du[i] = u[left] - 2.0 * a + u[right] + k * a * a * b
        du[n + i] = 0.1 * (u[n + left] - 2.0 * b + u[n + right]) - k * a * a * b
    return du


def point(n=40, seed=0):
    return np.random.default_rng(seed).uniform(0.5, 1.5, 2 * n), 0.7


def test_sparse_equals_dense_for_every_argument():
    u, k = point()
    sparse_u, sparse_k = reaction_diffusion.jacobian(u, k, sparse=True)
    dense_u, dense_k = reaction_diffusion.jacobian(u, k)
    assert isinstance(sparse_u, scipy.sparse.csr_array) and sparse_u.shape == (80, 80)
    np.testing.assert_allclose(sparse_u.toarray(), dense_u, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(sparse_k.toarray().ravel(), dense_k, rtol=1e-14, atol=1e-14)


def test_colors_stay_few_whatever_the_size():
    for n in (10, 40, 200):
        pattern = reaction_diffusion.sparsity(*point(n))
        assert coloring.is_valid_coloring(pattern.matrix.indptr, pattern.matrix.indices, pattern.colors)
        assert pattern.n_colors <= 8, pattern          # 3 + 3 stencil columns, the k column, and slack


def test_a_user_pattern_is_used_and_one_that_misses_a_nonzero_is_refused():
    u, k = point(6)
    detected = reaction_diffusion.sparsity(u, k)
    again = reaction_diffusion.jacobian(u, k, sparsity=detected.matrix)
    np.testing.assert_allclose(again[0].toarray(), reaction_diffusion.jacobian(u, k)[0], atol=1e-14)
    # rows 6..11 claim no column of u: the compressed pass sees their nonzeros and refuses
    half = np.hstack([np.diag(np.arange(12) < 6), np.ones((12, 1), bool)])
    with pytest.raises(SparsityError, match="misses a nonzero.*\n.*What to do"):
        reaction_diffusion.jacobian(u, k, sparsity=half)
    # the diagonal claims a column of each color in each row: the check direction sees the misses
    diagonal_only = np.hstack([np.eye(12, dtype=bool), np.ones((12, 1), bool)])
    with pytest.raises(SparsityError, match="J v differs"):
        reaction_diffusion.jacobian(u, k, sparsity=diagonal_only)
    with pytest.raises(SparsityError, match="misses 36 entries"):
        fwdad.sparse.check_pattern(reaction_diffusion, u, k, sparsity=diagonal_only)
    assert fwdad.sparse.check_pattern(reaction_diffusion, u, k, sparsity=detected).nnz == detected.nnz


def test_a_pattern_of_the_wrong_shape_is_refused():
    u, k = point(6)
    with pytest.raises(SparsityError, match=r"shape \(3, 3\).*12 rows.*13 columns"):
        reaction_diffusion.jacobian(u, k, sparsity=np.ones((3, 3)))


def test_the_pattern_is_cached_per_shape_and_integer_arguments():
    u, k = point(6)
    first = fwdad.sparse.jacobian.cached_pattern(reaction_diffusion, (u, k))
    assert fwdad.sparse.jacobian.cached_pattern(reaction_diffusion, (u * 2.0, 3.0)) is first
    assert fwdad.sparse.jacobian.cached_pattern(reaction_diffusion, point(7)) is not first


def test_without_scipy_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.sparse", None)
    with pytest.raises(fwdad.FwdadError, match=r"fwdad\[sparse\]"):
        fwdad.sparse.jacobian.scipy_sparse()


@pytest.mark.parametrize("seed", range(20))
def test_random_colorings_are_valid(seed):
    rng = np.random.default_rng(seed)
    rows, columns = rng.integers(1, 60, 2)
    matrix = scipy.sparse.random_array((rows, columns), density=rng.uniform(0.01, 0.5), rng=rng,
                                       format="csr")
    colors = coloring.color_columns(matrix.indptr, matrix.indices, columns)
    assert colors.shape == (columns,) and colors.min() >= 0
    assert coloring.is_valid_coloring(matrix.indptr, matrix.indices, colors)
    assert colors.max() + 1 >= coloring.lower_bound(matrix.indptr)


def test_a_coloring_with_a_shared_row_is_invalid():
    tridiagonal = scipy.sparse.csr_array(np.eye(5) + np.eye(5, k=1))
    assert not coloring.is_valid_coloring(tridiagonal.indptr, tridiagonal.indices, np.zeros(5, np.int64))
    assert coloring.color_columns(tridiagonal.indptr, tridiagonal.indices, 5).max() + 1 == 2


@pytest.mark.parametrize("module", ["fwdad.transform.sparsity", "fwdad.coloring"])
def test_module_doctests(module):
    import doctest
    import importlib
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def square_in_place(x):
    for i in range(len(x)):
        x[i] = x[i] * x[i]
    return x * 1.0


def scale_in_place(x, s):
    x *= s
    return x + x[::-1] * s


@pytest.mark.parametrize("how", ["sparse", "sparsity", "detected first"])
def test_a_function_writing_its_argument_is_differentiated_at_the_values_passed(how):
    """Found by the outside-user trial: detection and the output-size probe ran on the caller's
    arrays, so the compressed pass saw values the function had already written (wrong entries,
    no error) and the argument was written twice."""
    f = fwdad.forward_grad(square_in_place)
    g = fwdad.forward_grad(scale_in_place)
    x0 = np.array([1.0, 2.0, 3.0])
    once = x0.copy()
    square_in_place(once)
    if how == "detected first":
        probe = x0.copy()
        f.sparsity(probe)
        np.testing.assert_array_equal(probe, x0)             # f.sparsity writes nothing
    x = x0.copy()
    options = dict(sparse=True) if how != "sparsity" else dict(sparsity=np.eye(3, dtype=bool))
    J = f.jacobian(x, **options)[0]
    np.testing.assert_allclose(J.toarray(), np.diag(2 * x0), rtol=1e-15)
    np.testing.assert_array_equal(x, once)                   # written once, as one call
    x = x0.copy()
    dense = g.jacobian(x.copy(), 0.7)
    sparse_parts = g.jacobian(x, 0.7, sparse=True)
    np.testing.assert_allclose(sparse_parts[0].toarray(), dense[0], rtol=1e-14)
    np.testing.assert_allclose(sparse_parts[1].toarray().ravel(), dense[1], rtol=1e-14)


def ring(u, D):
    n = len(u)
    out = np.empty(n)
    for i in range(n):
        out[i] = D * (u[(i - 1) % n] - 2.0 * u[i] + u[(i + 1) % n]) + u[i] * (1.0 - u[i])
    return out


RING = fwdad.forward_grad(ring, wrt="u")


def test_nan_in_the_state_gives_nan_entries_as_the_dense_jacobian():
    """Found by the trial: a NaN state raised 'the pattern misses a nonzero' about fwdad's own pattern."""
    u = np.linspace(0.1, 0.9, 9)
    u[3] = np.nan
    dense = RING.jacobian(u, 0.7)[0]
    sparse = RING.jacobian(u, 0.7, sparse=True)[0].toarray()
    pattern = RING.sparsity(u, 0.7).matrix.toarray()
    np.testing.assert_array_equal(np.isnan(sparse), np.isnan(dense) & pattern)
    finite = ~np.isnan(dense)
    np.testing.assert_allclose(sparse[finite & pattern], dense[finite & pattern], rtol=1e-14)


def test_empty_arrays():
    assert RING.sparsity(np.zeros(0), 0.7).matrix.shape == (0, 0)
    assert RING.jacobian(np.zeros(0), 0.7, sparse=True)[0].shape == (0, 0)


@pytest.mark.parametrize("options", [dict(sparse="yes"), dict(sparse=1), dict(sparse=True, chunk=2),
                                     dict(sparsity="dense"), dict(sparsity=True)])
def test_sparse_options_are_checked(options):
    with pytest.raises(fwdad.errors.OptionError):
        RING.jacobian(np.linspace(0.1, 0.9, 9), 0.7, **options)
    with pytest.raises(fwdad.errors.OptionError):
        RING.sparsity(np.linspace(0.1, 0.9, 9), 0.7, local="no")
