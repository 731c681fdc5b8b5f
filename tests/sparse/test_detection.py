"""Sparsity detection (fwdad/transform/sparsity.py): exact on stencils and banded systems, a
superset of the true nonzeros everywhere else, both branches of a condition on the inputs."""
import warnings

import numpy as np
import pytest

import fwdad
from fwdad.errors import SparsityError, SparsityWarning


def true_nonzeros(f, args, points=3, seed=0):
    """The union of the dense Jacobian's nonzeros at `points` random points (same shapes)."""
    rng = np.random.default_rng(seed)
    seen = None
    for _ in range(points):
        moved = [a + rng.normal(size=np.shape(a)) if isinstance(a, (float, np.ndarray)) and
                 np.asarray(a).dtype.kind == "f" else a for a in args]
        moved = [float(m) if isinstance(a, float) else m for a, m in zip(args, moved)]
        parts = [np.reshape(p, (int(np.size(f(*moved))), -1)) for p in f.jacobian(*moved) if p is not None]
        found = np.hstack(parts) != 0
        seen = found if seen is None else seen | found
    return seen


def assert_covers(f, args, pattern=None):
    pattern = f.sparsity(*args) if pattern is None else pattern
    missed = true_nonzeros(f, args) & ~pattern.toarray()
    assert not missed.any(), f"the pattern misses {np.argwhere(missed)[:5].tolist()}"
    return pattern


@fwdad.forward_grad
def periodic_stencil(u):
    n = u.shape[0]
    out = np.empty(n)
    for i in range(n):
        out[i] = u[(i - 1) % n] - 2.0 * u[i] + u[(i + 1) % n] + np.sin(u[i])
    return out


@fwdad.forward_grad
def slice_stencil(u, c):
    out = np.zeros_like(u)
    out[1:-1] = c * (u[:-2] - 2.0 * u[1:-1] + u[2:])
    return out


@fwdad.forward_grad
def stencil_2d(U):
    out = np.zeros_like(U)
    for i in range(1, U.shape[0] - 1):
        for j in range(1, U.shape[1] - 1):
            out[i, j] = U[i - 1, j] + U[i + 1, j] + U[i, j - 1] + U[i, j + 1] - 4.0 * U[i, j] * U[i, j]
    return out


def neighbour_sum(u, i):
    return u[i - 1] * u[i + 1]


@fwdad.forward_grad
def banded_with_helper(u):
    n = u.shape[0]
    out = np.zeros(n)
    for i in range(1, n - 1):
        out[i] = neighbour_sum(u, i) + math_free(u[i])
    return out


def math_free(v):
    return v * v


def tridiagonal(n, periodic=False):
    expected = np.eye(n, dtype=bool) | np.eye(n, k=1, dtype=bool) | np.eye(n, k=-1, dtype=bool)
    if periodic:
        expected[0, -1] = expected[-1, 0] = True
    return expected


def test_periodic_stencil_is_exact():
    u = np.random.default_rng(1).normal(size=9)
    pattern = periodic_stencil.sparsity(u)
    np.testing.assert_array_equal(pattern.toarray(), tridiagonal(9, periodic=True))
    assert_covers(periodic_stencil, (u,), pattern)


def test_slice_stencil_is_exact_and_the_inactive_scalar_adds_no_column():
    u = np.linspace(0.0, 1.0, 7)
    pattern = slice_stencil.sparsity(u, 2.0)
    expected = np.hstack([tridiagonal(7) & ~np.isin(np.arange(7), (0, 6))[:, None], np.ones((7, 1), bool)])
    expected[[0, 6], :] = False
    np.testing.assert_array_equal(pattern.toarray(), expected)
    assert_covers(slice_stencil, (u, 2.0), pattern)


def test_two_dimensional_stencil_is_exact():
    U = np.random.default_rng(2).normal(size=(5, 6))
    pattern = stencil_2d.sparsity(U).toarray()
    expected = np.zeros((30, 30), bool)
    for i in range(1, 4):
        for j in range(1, 5):
            for di, dj in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)):
                expected[i * 6 + j, (i + di) * 6 + j + dj] = True
    np.testing.assert_array_equal(pattern, expected)


def test_a_helper_call_keeps_the_band():
    u = np.random.default_rng(3).normal(size=8)
    expected = tridiagonal(8)
    expected[[0, 7], :] = False
    np.testing.assert_array_equal(banded_with_helper.sparsity(u).toarray(), expected)


@fwdad.forward_grad
def reduction_and_linalg(A, b):
    x = np.linalg.solve(A, b)
    s = np.sum(b * b)
    return x + s


def test_reductions_and_linalg_are_dense_blocks():
    rng = np.random.default_rng(4)
    A, b = rng.normal(size=(3, 3)) + 3.0 * np.eye(3), rng.normal(size=3)
    pattern = reduction_and_linalg.sparsity(A, b)
    assert pattern.shape == (3, 12) and pattern.toarray().all()
    assert_covers(reduction_and_linalg, (A, b), pattern)


@fwdad.forward_grad
def branches(x, y):
    out = np.empty(3)
    for i in range(3):
        if x[i] > 0.0:
            out[i] = x[i] * 2.0
        else:
            out[i] = y[i] * y[i]
    return out


def test_branches_on_the_inputs_unite_both_sides():
    x, y = np.array([1.0, -1.0, 2.0]), np.ones(3)
    union = np.hstack([np.eye(3, dtype=bool), np.eye(3, dtype=bool)])
    np.testing.assert_array_equal(branches.sparsity(x, y).toarray(), union)
    np.testing.assert_array_equal(branches.sparsity(-x, y).toarray(), union)
    local = branches.sparsity(x, y, local=True)
    assert local.local
    np.testing.assert_array_equal(local.toarray(), np.hstack([np.diag(x > 0), np.diag(x <= 0)]))


@fwdad.forward_grad
def scalar_branches(a, b, c):
    s = a
    if a > b:
        s = b * 2.0
        t = c
    else:
        t = a
    if math.floor(c) > 0.0:
        s = s + 1.0
    return s * t


import math  # noqa: E402  (read by scalar_branches at its first call)


def test_scalar_branches_keep_the_old_value_of_a_name_the_other_side_leaves():
    # s is a (if a <= b) or b; t is c or a: the product depends on a, b and c everywhere
    pattern = scalar_branches.sparsity(1.0, 2.0, 3.0)
    np.testing.assert_array_equal(pattern.toarray(), [[True, True, True]])
    assert scalar_branches.sparsity(1.0, 2.0, 3.0, local=True).toarray().tolist() == [[True, False, False]]


@fwdad.forward_grad
def selected_by_value(x):
    j = int(abs(x[0]) * 3.0) % 4
    return x[j] * 2.0


def test_an_index_computed_from_the_inputs_reads_every_element():
    x = np.array([0.1, 1.0, 2.0, 3.0])
    assert selected_by_value.sparsity(x).toarray().all()
    assert selected_by_value.sparsity(x, local=True).toarray().tolist() == [[True, False, False, False]]


@fwdad.forward_grad
def piecewise(x):
    return np.floor(x) + np.sign(x) * 3.0 + (x > 0.5) * 1.0


def test_piecewise_constant_operations_give_empty_sets():
    assert piecewise.sparsity(np.ones(4)).nnz == 0


@fwdad.forward_grad
def early_return(x):
    if x[0] > 0.0:
        return x * 2.0
    return x * x


def test_a_jump_out_of_a_branch_on_the_inputs_is_refused_globally_but_local_works():
    with pytest.raises(SparsityError, match=r"(?s)test_detection.py:\d+.*`return` inside a branch.*What to do"):
        early_return.sparsity(np.ones(3))
    assert early_return.sparsity(np.ones(3), local=True).toarray().tolist() == np.eye(3, dtype=bool).tolist()


@fwdad.forward_grad
def iterate_to_tolerance(x):
    y = x.copy()
    err = 1.0
    while err > 1e-3:
        y = 0.5 * (y + x / y)
        err = np.max(np.abs(y * y - x))
    return y


def test_an_active_trip_count_warns():
    with pytest.warns(SparsityWarning, match="while loop whose condition depends on the inputs"):
        pattern = iterate_to_tolerance.sparsity(np.array([2.0, 3.0]))
    # err steers the loop only (a piecewise-constant effect): each y[i] depends on x[i] alone
    np.testing.assert_array_equal(pattern.toarray(), np.eye(2, dtype=bool))
    assert not ((iterate_to_tolerance.jacobian(np.array([2.0, 3.0]))[0] != 0) & ~pattern.toarray()).any()


@fwdad.forward_grad(wrt="u")
def with_wrt(t, u, k):
    out = np.empty_like(u)
    for i in range(u.shape[0]):
        out[i] = k * u[i] * t
    return out


def test_wrt_gives_the_columns_of_the_chosen_arguments_only():
    pattern = with_wrt.sparsity(0.5, np.ones(4), 2.0)
    np.testing.assert_array_equal(pattern.toarray(), np.eye(4, dtype=bool))
    assert pattern.per_argument[0] is None and pattern.per_argument[1].shape == (4, 4)


@fwdad.forward_grad
def returns_a_tuple(x):
    return x, x * 2.0


def test_a_tuple_output_is_refused():
    with pytest.raises(fwdad.FwdadError, match="What to do"):
        returns_a_tuple.sparsity(np.ones(2))


def test_no_float_argument_is_refused():
    with pytest.raises(fwdad.FwdadError, match="no float argument"):
        with warnings.catch_warnings():
            periodic_stencil.sparsity(np.arange(3))


@fwdad.forward_grad
def masks_and_fancy_indices(x, y):
    positive = x[x > 0.0]
    z = np.zeros(4)
    z[np.array([0, 2])] = y[:2] * 2.0
    j = int(abs(x[0])) % 2
    z[j:j + 2] = y[2:]
    return z + np.sum(positive)


def test_masks_and_indices_from_the_inputs_cover_every_element_they_may_touch():
    x, y = np.array([0.5, -1.0, 2.0, -3.0]), np.ones(4)
    pattern = masks_and_fancy_indices.sparsity(x, y)
    assert pattern.toarray()[:, :4].all()                      # np.sum(x[x > 0]): every x
    assert pattern.toarray()[:, 6:].all()                      # z[j:j + 2] = y[2:], any j
    assert_covers(masks_and_fancy_indices, (x, y), pattern)
    local = masks_and_fancy_indices.sparsity(x, y, local=True).toarray()     # j = 0 here
    assert local[:, :4].all() and (local[:2, 6:] == np.eye(2, dtype=bool)).all() and not local[2:, 6:].any()
    assert not ((np.hstack(masks_and_fancy_indices.jacobian(x, y)) != 0) & ~local).any()


def pick(u, j):
    return u[j] * 2.0


@fwdad.forward_grad
def index_to_helper(u):
    j = int(abs(u[0])) % 3
    return pick(u, j)


@fwdad.forward_grad
def loop_inside_a_branch(u):
    out = np.zeros_like(u)
    if u[0] > 0.0:
        for i in range(u.shape[0]):
            out[i] = u[i] * u[i]
    return out


def test_an_index_from_the_inputs_passed_to_a_helper_is_refused():
    with pytest.raises(SparsityError, match=r"(?s)passes 'j'.*What to do"):
        index_to_helper.sparsity(np.ones(3))
    assert index_to_helper.sparsity(np.ones(3), local=True).toarray().tolist() == [[False, True, False]]


def test_a_loop_inside_a_branch_keeps_its_exact_indices():
    pattern = loop_inside_a_branch.sparsity(-np.ones(4))
    np.testing.assert_array_equal(pattern.toarray(), np.eye(4, dtype=bool))


@fwdad.forward_grad
def scalar_into_array(a, b):
    s1 = a
    return np.ones(4) + (a + s1) * b


def test_a_scalar_set_broadcast_into_an_array_result():
    # the fuzzer's program: the array result's set came from a scalar's word (was: `.copy()` of it)
    np.testing.assert_array_equal(scalar_into_array.sparsity(0.5, 2.0).toarray(), np.ones((4, 2), bool))


def fill_from(y, x):
    for i in range(y.shape[0]):
        y[i] = x[i]


@fwdad.forward_grad
def helper_writes_in_a_branch(x, z):
    y = z * 1.0
    if x[0] > 0.0:
        fill_from(y, x)
    return y


def test_a_helper_writing_inside_a_branch_on_the_inputs_is_refused():
    # the taken branch's helper overwrites y's sets, but the other branch keeps z's: refused,
    # where it used to give the sets of x alone when x[0] > 0
    with pytest.raises(SparsityError, match=r"(?s)`fill_from\(y, x\)` writes into an argument.*What to do"):
        helper_writes_in_a_branch.sparsity(np.ones(3), np.ones(3))
    local = helper_writes_in_a_branch.sparsity(np.ones(3), np.ones(3), local=True)
    np.testing.assert_array_equal(local.toarray(), np.hstack([np.eye(3, dtype=bool), np.zeros((3, 3), bool)]))


def leapfrog(a, b, h):
    return a + h * b, b - h * a


@fwdad.forward_grad
def tuples_through_a_helper(u, n):
    out = np.empty(2 * n)
    for i in range(n):
        a, b = leapfrog(u[i], u[n + i], 0.1)
        t = (a, b * 2.0)
        out[i] = t[0]
        out[n + i] = t[1] + a
    return out


@fwdad.forward_grad
def tuple_in_a_branch(u):
    out = np.empty(2)
    t = (u[0], u[1])
    if u[2] > 0.0:
        t = (u[1], u[0] * u[3])
    out[0] = t[0]
    out[1] = t[1]
    return out


def test_tuples_carry_the_sets_of_their_items():
    u = np.random.default_rng(5).normal(size=6)
    pattern = tuples_through_a_helper.sparsity(u, 3)
    np.testing.assert_array_equal(pattern.toarray(), np.tile(np.eye(3, dtype=bool), (2, 2)))
    assert_covers(tuples_through_a_helper, (u, 3), pattern)


def test_a_tuple_assigned_in_a_branch_unites_item_by_item():
    expected = [[True, True, False, False], [True, True, False, True]]
    for sign in (1.0, -1.0):
        u = np.array([1.0, 2.0, sign, 3.0])
        np.testing.assert_array_equal(tuple_in_a_branch.sparsity(u).toarray(), expected)
    local = tuple_in_a_branch.sparsity(np.array([1.0, 2.0, -1.0, 3.0]), local=True).toarray()
    np.testing.assert_array_equal(local, [[True, False, False, False], [False, True, False, False]])


@fwdad.forward_grad
def assigned_on_one_side(a, b, c):
    s = a
    if a > b:
        s = b * 2.0
    return s * c


def test_a_name_one_branch_leaves_keeps_its_earlier_set_on_that_side():
    # taken at a > b: s = 2 b there, but s = a on the other side (was: the sets of b and c only)
    for a in (3.0, 1.0):
        assert assigned_on_one_side.sparsity(a, 2.0, 4.0).toarray().tolist() == [[True, True, True]]


@fwdad.forward_grad
def guarded_loop(x):
    y = x * 1.0
    if x > 0.0:
        while y < 10.0:
            y = y * 2.0
    return y


@pytest.mark.filterwarnings("ignore::fwdad.SparsityWarning")
def test_an_endless_loop_in_the_branch_not_taken_stops_with_an_error():
    assert guarded_loop.sparsity(1.0).toarray().tolist() == [[True]]     # taken: the loop ends
    with pytest.raises(fwdad.FwdadError, match="branch not taken at this point, ran 10000000 times"):
        guarded_loop.sparsity(-1.0)                                       # y < 0 doubles forever
    assert guarded_loop.sparsity(-1.0, local=True).toarray().tolist() == [[True]]


@fwdad.forward_grad
def search_inside_a_branch(x):
    total = 0.0
    if x[0] > 0.0:
        for i in range(x.shape[0]):
            if i == 2:
                break
            total = total + x[i]
    return total * 1.0


def test_a_break_of_a_loop_inside_the_branch_is_followed():
    # the break leaves a loop inside the branch, not the branch: both sides are covered
    assert search_inside_a_branch.sparsity(-np.ones(4)).toarray().tolist() == [[True, True, False, False]]


def padded(u, g):
    P = np.full(len(u) + 2, g)
    P[1:-1] = u
    return P[:-2] + P[2:] - 2.0 * u


def test_an_array_filled_with_an_active_scalar_then_written():
    """Found by the outside-user trial: np.full(n, g) with an active g, written afterwards, made
    the pass copy g's word (`d_g[k].copy()`), which Numba refused."""
    f = fwdad.forward_grad(padded)
    u = np.array([1.0, 2.0, 3.0])
    pattern = f.sparsity(u, 0.5)
    expected = np.array([[1, 1, 0, 1], [1, 1, 1, 0], [0, 1, 1, 1]], bool)
    np.testing.assert_array_equal(pattern.toarray(), expected)
    assert_covers(f, (u, 0.5), pattern)


def softplus(x):
    return np.log(1.0 + np.exp(x))


@fwdad.defjvp(softplus)
def softplus_rule(x, dx):
    return softplus(x), dx / (1.0 + np.exp(-x))


def through_a_rule(x):
    out = np.empty(2)
    out[0] = softplus(x[0] * x[1])
    out[1] = x[1]
    return out


def test_a_defjvp_rule_inside_depends_on_all_its_arguments():
    """A defjvp rule ran on the sets as on floats (words divided: out[0]'s set came out empty,
    a missed nonzero); its result now depends on every element of its arguments (an array
    argument is a dense block: tests/second_order/test_hessian_sparsity.py has the Hessian's)."""
    pattern = fwdad.forward_grad(through_a_rule).sparsity(np.array([0.3, 0.5])).toarray()
    np.testing.assert_array_equal(pattern, np.array([[1, 1], [0, 1]], bool))
