"""Hessian sparsity detection (fwdad/transform/hessian_sparsity.py) and star coloring
(fwdad/coloring.py, fwdad/sparse/hessian.py): the detected pattern never misses a nonzero of the
dense Hessian (both corpora's scalar programs and the fuzzer's, at random points), is exact on
Rosenbrock (tridiagonal), separable sums (diagonal) and an arrowhead; every star coloring is
valid and its symmetric decompression equals the dense Hessian."""
import math
import types

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from scipy import sparse

import corpus_arrays
import corpus_scalar
import fwdad
from fuzz.generator import ARRAY, FLOAT, MATRIX, programs
from fwdad.coloring import is_star_coloring, star_color
from fwdad.errors import FwdadError, OptionError, SparsityError
from fwdad.sparse.hessian import decompress_symmetric
from fwdad.transform.hessian_sparsity import curvature_pairs
from fwdad.transform import rules


# ---- programs --------------------------------------------------------------------------------------
@fwdad.forward_grad
def rosenbrock(x):
    s = 0.0
    for i in range(x.shape[0] - 1):
        s += 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    return s


@fwdad.forward_grad
def separable(x):
    return np.sum(np.sin(x) * x ** 2) + np.sum(np.exp(x))


@fwdad.forward_grad
def arrowhead(x):
    s = 0.0
    for i in range(1, x.shape[0]):
        s += (x[0] * x[i] - 1.0) ** 2 + x[i] ** 4
    return s + math.exp(x[0])


def spring(x):
    return np.sum((x[1:] - x[:-1]) ** 2) * x[0]


@fwdad.forward_grad(wrt=(0,))
def through_a_helper_and_branches(x, k):
    """A helper's pairs reach the caller; both sides of a branch on the inputs count."""
    s = k * spring(x) + np.max(x) + abs(x[2])
    if x[1] > 0.0:
        s += x[3] * x[4]
    else:
        s += math.floor(x[3] * x[5]) + x[5] ** 2
    return s


def blocks_to_matrix(blocks, args, active):
    return np.vstack([np.hstack([np.reshape(blocks[i][j], (np.size(args[i]), np.size(args[j])))
                                 for j in active]) for i in active])


def dense_nonzeros(f, args):
    active = f.active_positions(args)
    H = blocks_to_matrix(f.hessian(*[a.copy() if isinstance(a, np.ndarray) else a for a in args]), args, active)
    return (H != 0) & np.isfinite(H)


def tridiagonal(n):
    return (np.abs(np.subtract.outer(np.arange(n), np.arange(n))) <= 1)


# ---- exact patterns, star colors, sparse == dense ---------------------------------------------------
def test_rosenbrock_is_tridiagonal_with_three_colors():
    x = np.linspace(-1.0, 1.2, 9)
    pattern = rosenbrock.hessian_sparsity(x)
    np.testing.assert_array_equal(pattern.toarray(), tridiagonal(9))
    assert pattern.n_colors == 3          # sparse=True == dense: test_second_order.py::test_sparse_hessian
    assert is_star_coloring(pattern.matrix.indptr, pattern.matrix.indices, pattern.colors)


@pytest.mark.slow
def test_separable_sum_is_diagonal_with_one_color():
    x = np.linspace(-1.0, 1.2, 7)
    pattern = separable.hessian_sparsity(x)
    np.testing.assert_array_equal(pattern.toarray(), np.eye(7, dtype=bool))
    assert pattern.n_colors == 1
    np.testing.assert_allclose(separable.hessian(x, sparse=True).toarray(), separable.hessian(x)[0][0],
                               rtol=1e-13, atol=1e-12)


@pytest.mark.slow
def test_arrowhead_needs_two_colors_where_column_coloring_needs_n():
    x = np.linspace(0.3, 1.1, 10)
    pattern = arrowhead.hessian_sparsity(x)
    expected = np.eye(10, dtype=bool)
    expected[0, :] = expected[:, 0] = True
    np.testing.assert_array_equal(pattern.toarray(), expected)
    assert pattern.n_colors == 2 and is_star_coloring(pattern.matrix.indptr, pattern.matrix.indices, pattern.colors)
    assert fwdad.sparse.Sparsity(pattern.matrix, pattern.arguments).n_colors == 10     # column coloring
    expected = np.diag(2.0 * x[0] ** 2 + 12.0 * x ** 2)           # the Hessian by hand
    expected[0, 1:] = expected[1:, 0] = 4.0 * x[0] * x[1:] - 2.0
    expected[0, 0] = 2.0 * np.sum(x[1:] ** 2) + math.exp(x[0])
    np.testing.assert_allclose(arrowhead.hessian(x, sparse=True).toarray(), expected, rtol=1e-12, atol=1e-10)


@pytest.mark.slow
def test_helpers_branches_and_piecewise_operations():
    """spring's pairs come back from the helper; both branches count; max and abs are piecewise
    linear (no pairs); floor(x3 * x5) adds its pair, but its result carries no gradient (x3 and x5
    reach the output through the other branch, so the pair stays: conservative, never a miss)."""
    x = np.array([0.5, 0.7, -0.2, 1.1, 0.4, 0.9])
    pattern = through_a_helper_and_branches.hessian_sparsity(x, 2.0).toarray()
    expected = np.zeros((6, 6), bool)
    expected[:, 0] = expected[0, :] = True                 # x[0] * (differences of every element)
    expected |= tridiagonal(6)                             # the squared differences
    expected[3, 4] = expected[4, 3] = expected[5, 5] = True
    expected[3, 5] = expected[5, 3] = True                 # the floor's pair (see the docstring)
    np.testing.assert_array_equal(pattern, expected)
    for point in (x, x * np.array([1, -1, 1, 1, 1, 1])):    # the pattern holds on both sides
        assert not (dense_nonzeros(through_a_helper_and_branches, (point, 2.0)) & ~pattern).any()


@fwdad.forward_grad
def dead_pairs(x):
    unused = x[0] * x[1]
    return x[2] + math.floor(x[0] * x[2])


def test_pairs_outside_the_outputs_gradient_are_dropped():
    """x0 * x1 never reaches the output, and floor drops x0 from it: only x2 reaches the output,
    linearly, so the pairs that the products add are dropped and the pattern is empty."""
    assert dead_pairs.hessian_sparsity(np.array([0.3, 0.4, 0.5])).nnz == 0


@pytest.mark.slow
def test_local_pattern_follows_the_branch_taken():
    x = np.array([0.5, 0.7, -0.2, 1.1, 0.4, 0.9])
    local = through_a_helper_and_branches.hessian_sparsity(x, 2.0, local=True).toarray()
    assert local[3, 4] and not local[3, 5]            # the floor's pair is on the other side


def test_user_patterns_are_symmetrized_checked_and_refused():
    x = np.linspace(-1.0, 1.0, 8)
    lower = np.tril(tridiagonal(8))
    H = rosenbrock.hessian(x, sparsity=lower)               # the lower triangle stands for both
    np.testing.assert_allclose(H.toarray(), rosenbrock.hessian(x, sparse=True).toarray(), rtol=1e-15)
    np.testing.assert_array_equal(H.toarray() != 0, tridiagonal(8))
    with pytest.raises(SparsityError, match="misses a nonzero of the Hessian"):
        rosenbrock.hessian(x, sparsity=np.eye(8, dtype=bool))
    with pytest.raises(SparsityError, match="8 x 8"):
        rosenbrock.hessian(x, sparsity=np.eye(7, dtype=bool))
    with pytest.raises(OptionError, match="not a pattern"):
        rosenbrock.hessian(x, sparsity="band")


def test_vector_output_is_refused():
    f = fwdad.forward_grad(lambda_vector)
    with pytest.raises(FwdadError, match="float scalar"):
        f.hessian_sparsity(np.ones(3))


def lambda_vector(x):
    return x * x


# ---- the curvature of each rule, read from its template ---------------------------------------------
@pytest.mark.parametrize("template, pairs", [
    ("dx * y + x * dy", {("x", "y")}),                      # bilinear
    ("dx / y - z * dy / y", {("x", "y"), ("y", "y")}),
    ("dx + dy", set()),                                     # linear
    ("dx * z", {("x", "x")}),                               # exp: nonlinear
    ("np.where(x >= 0, dx, -dx)", set()),                   # abs: piecewise linear
    ("dx - dy * np.floor(x / y)", set()),                   # mod
    ("dx * np.sign(x) * np.sign(y)", set()),
    ("np.linalg.solve(x, dy - dx @ z)", {("x", "x"), ("x", "y"), ("y", "y")}),
    ("np.sum(dx) / x.size", set()),                         # mean: the size is no value
    ("dx ** 2", {("x", "x")}),                              # not linear in dx: conservative
])
def test_curvature_pairs(template, pairs):
    assert curvature_pairs(template) == pairs


def test_module_doctests():
    import doctest
    import fwdad.transform.hessian_sparsity as module
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_rows_marked_piecewise_linear():
    assert rules.ROWS[np.max].curvature == rules.PIECEWISE_LINEAR
    assert rules.ROWS[np.sin].curvature is None


# ---- star coloring and symmetric decompression ------------------------------------------------------
def random_symmetric(rng, n, density):
    mask = rng.random((n, n)) < density
    mask = mask | mask.T | np.eye(n, dtype=bool)
    values = rng.normal(size=(n, n))
    return np.where(mask, values + values.T, 0.0), mask


@pytest.mark.parametrize("seed", range(40))
def test_star_colorings_are_valid_and_decompress_exactly(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    H, mask = random_symmetric(rng, n, rng.uniform(0.02, 0.4))
    pattern = sparse.csr_array(mask)
    pattern.sort_indices()
    colors = star_color(pattern.indptr, pattern.indices, n)
    assert is_star_coloring(pattern.indptr, pattern.indices, colors)
    k = int(colors.max()) + 1
    S = np.zeros((n, k))
    S[np.arange(n), colors] = 1.0
    v = rng.uniform(0.5, 1.5, n)
    compressed = np.hstack([H @ S, (H @ v)[:, None]])
    data, row, why = decompress_symmetric(compressed, pattern.indptr, pattern.indices, colors, v, 1e-10)
    assert (row, why) == (-1, 0)
    rebuilt = sparse.csr_array((data, pattern.indices, pattern.indptr), shape=(n, n)).toarray()
    np.testing.assert_allclose(rebuilt, H, rtol=1e-12, atol=1e-12)


def test_is_star_coloring_rejects_a_two_colored_path():
    path = sparse.csr_array(tridiagonal(4))
    assert not is_star_coloring(path.indptr, path.indices, np.array([0, 1, 0, 1]))
    assert not is_star_coloring(path.indptr, path.indices, np.array([0, 0, 1, 2]))
    assert is_star_coloring(path.indptr, path.indices, np.array([0, 1, 0, 2]))


# ---- never a miss: the corpora and the fuzzer -------------------------------------------------------
def is_float(value):
    return isinstance(value, (float, np.floating)) or (isinstance(value, np.ndarray) and value.dtype.kind == "f")


def check_program(f, args):
    """The sparse Jacobian tests' check on the Hessian: the pattern (global, and local at the
    first point) holds the nonzeros of the dense Hessian at two points; fails on a miss."""
    from sparse.test_corpora import check_program as check, pattern_or_refusal   # tests/sparse/
    outcome = check(f, args, points=2, find="hessian_sparsity", nonzeros=dense_nonzeros)
    if outcome != "refused":
        return outcome
    local = pattern_or_refusal(f, args, local=True, find="hessian_sparsity")   # a jump out of a branch
    try:                                                  # on a float refuses the global pattern only
        with np.errstate(all="ignore"):
            nonzero = dense_nonzeros(f, args)
    except (FwdadError, ZeroDivisionError, ValueError, OverflowError):
        return outcome
    assert local is not None and not (nonzero & ~local.toarray()).any(), "the local pattern misses a nonzero"
    return "refused, local checked"


def scalar_cases():
    out = []
    for function, make_args in corpus_scalar.CASES + corpus_arrays.CASES:
        args = make_args(np.random.default_rng(20261130))
        try:
            with np.errstate(all="ignore"):
                value = function(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
        except Exception:          # noqa: BLE001 - not runnable at this point
            continue
        if isinstance(value, (float, np.floating)) and any(is_float(a) for a in args):
            out.append((function, make_args))
    return out


SCALAR_CASES = scalar_cases()


@pytest.mark.slow
@pytest.mark.parametrize("function, make_args", SCALAR_CASES, ids=[f.__name__ for f, _ in SCALAR_CASES])
def test_corpus_all(function, make_args):
    check_program(fwdad.forward_grad(function), make_args(np.random.default_rng(20261130)))


OUTCOMES = {}


@pytest.mark.slow
@settings(max_examples=60, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(program=programs(max_functions=2, max_statements=4, max_depth=2, expression_depth=2))
def test_fuzz_programs(program):
    """Each drawn program with one float output; an array output is summed (a wrapper appended
    to its source): the sum's Hessian holds every element's nonzeros (up to cancellation)."""
    from sparse.test_corpora import fuzz_outcome       # the sparse Jacobian tests' runner
    if program.entry.returns not in ((FLOAT,), (ARRAY,), (MATRIX,)):
        return
    outcome = fuzz_outcome(program if program.entry.returns == (FLOAT,) else summed(program), check_program,
                           lambda value: isinstance(value, (float, np.floating)))
    if outcome is not None:
        OUTCOMES[outcome] = OUTCOMES.get(outcome, 0) + 1


def summed(program):
    """The program with `def hessian_entry(...): return np.sum(entry(...))` as its entry."""
    names = ", ".join(name for name, _ in program.entry.params)
    source = (f"{program.source}\n\ndef hessian_entry({names}):\n"
              f"    return np.sum({program.entry.name}({names}))\n")
    entry = types.SimpleNamespace(name="hessian_entry", params=program.entry.params, returns=(FLOAT,))
    return types.SimpleNamespace(source=source, entry=entry)


@pytest.mark.slow
def test_fuzz_outcomes_reported():
    """Runs after test_fuzz_programs (file order): most scalar programs drawn get a checked pattern."""
    if OUTCOMES:
        print(f"\nHessian sparsity over fuzz programs: {OUTCOMES}")
        assert OUTCOMES.get("checked", 0) >= sum(OUTCOMES.values()) // 3


def softplus(x):
    return math.log(1.0 + math.exp(x))


@fwdad.defjvp(softplus)
def softplus_rule(x, dx):
    return softplus(x), dx / (1.0 + math.exp(-x))


@fwdad.forward_grad
def through_a_rule(x):
    return softplus(x[0] * x[1]) + x[2] ** 2 + x[3]


@pytest.mark.slow
def test_a_defjvp_rule_inside_counts_as_nonlinear_in_its_arguments():
    pattern = through_a_rule.hessian_sparsity(np.array([0.3, 0.5, 0.7, 0.9])).toarray()
    expected = np.zeros((4, 4), bool)
    expected[:2, :2] = expected[2, 2] = True
    np.testing.assert_array_equal(pattern, expected)
