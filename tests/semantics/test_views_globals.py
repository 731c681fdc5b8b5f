"""Issue 13, last silent wrongs of an outside trial: writes through views made by function calls,
global arrays written after the first compile, scalar globals changed before a new decoration,
and defjvp rules whose tangent has another type than their value."""
import sys
import types

import numpy as np
import pytest

import fwdad
from fwdad.errors import CompilationError, DifferentiationError, ExecutionError, OptionError

from helpers import central_difference


# ---- S1: writes through views returned by NumPy functions --------------------------------------
def through_ascontiguousarray(a):
    X = np.zeros((2, 2)) + 0.0 * a
    S = np.ascontiguousarray(X)
    S[0, 1] = a * a
    return X[0, 1]


def through_expand_dims(a):
    X = np.zeros((2, 2)) + 0.0 * a
    S = np.expand_dims(X, 0)
    S[0, 0, 1] = a * a
    return X[0, 1]


def through_expand_dims_of_inactive(a):
    X = np.zeros(3)
    V = np.expand_dims(X, 0)
    V[0, 1] = a * a
    return X[1]


def through_ascontiguousarray_of_inactive(a):
    X = np.zeros(3)
    V = np.ascontiguousarray(X)
    V[1] = a * a
    return X[1]


def through_swapaxes(a):
    X = np.zeros((2, 2)) + 0.0 * a
    S = np.swapaxes(X, 0, 1)
    S[0, 1] = a * a
    return X[1, 0]


def through_transpose(a):
    X = np.zeros((2, 2)) + 0.0 * a
    S = np.transpose(X)
    S[0, 1] = a * a
    return X[1, 0]


def through_asarray(a):
    X = np.zeros((2, 2)) + 0.0 * a
    S = np.asarray(X)
    S[0, 1] = a * a
    return X[0, 1]


def through_atleast_2d(a):
    X = np.zeros((2, 2)) + 0.0 * a
    S = np.atleast_2d(X)
    S[0, 1] = a * a
    return X[0, 1]


FAST_VIEWS = [through_ascontiguousarray, through_expand_dims, through_expand_dims_of_inactive,
              through_ascontiguousarray_of_inactive]
SLOW_VIEWS = [through_swapaxes, through_transpose, through_asarray, through_atleast_2d]
A = 1.5
EXPECTED = 2 * A                 # d(a * a)/da, written through the view into X


def expected_by_differences(function):
    derivative = central_difference(function, (A,), (1.0,))
    assert derivative == pytest.approx(EXPECTED, rel=1e-6)      # plain NumPy shares memory too
    return derivative


def check_every_mode(function):
    F = fwdad.forward_grad(function)
    expected = expected_by_differences(function)
    assert F.jvp((A,), (1.0,)) == pytest.approx((A * A, expected))
    value, (grad,) = F.value_and_grad(A)
    assert (value, grad) == pytest.approx((A * A, expected))
    assert F.jacobian(A)[0] == pytest.approx(expected)
    _, (estimate,) = F.forward_gradient(A, directions=4, seed=0)
    assert estimate != 0.0                       # each direction sees the write (was: 0.0)


@pytest.mark.parametrize("function", FAST_VIEWS, ids=lambda f: f.__name__)
def test_a_write_through_a_view_function_reaches_the_viewed_array(function):
    check_every_mode(function)


@pytest.mark.slow
@pytest.mark.parametrize("function", SLOW_VIEWS, ids=lambda f: f.__name__)
def test_a_write_through_swapaxes_transpose_asarray_atleast_2d_reaches_the_viewed_array(function):
    check_every_mode(function)


# ---- views returned by the user's own functions ------------------------------------------------
def rows_from(X):
    return X[1:]


def pair_of_views(X):
    r = (X[1:], X[:1])                 # a tuple variable: its items' memory is not followed
    return r


def norm_plus(X, a):
    return np.tanh(X) + np.linalg.norm(X) * a


def through_a_user_function_of_inactive(a):
    X = np.zeros(3)
    V = rows_from(X)
    V[0] = a * a
    return X[1]


def through_a_tuple_from_a_user_function(a):
    X = np.zeros(3)
    V, W = pair_of_views(X)
    V[0] = a * a
    return X[1]


def first_of_a_tuple(X):
    t = (X, 1.0)                       # t[0] is X itself
    B = t[0]
    return B


def unpacked_view(X):
    r = (X[1:], 1.0)
    v, c = r
    return v


def through_a_tuple_item_from_a_user_function(a):
    X = np.zeros(3)
    V = first_of_a_tuple(X)
    V[1] = a * a
    return X[1]


def through_an_unpacked_view_from_a_user_function(a):
    X = np.zeros(4)
    V = unpacked_view(X)
    V[0] = a * a
    return X[1]


def through_a_tuple_item(a):
    X = np.zeros(3)
    t = (X, 1.0)                       # t[0] is X itself
    V = t[0]
    V[1] = a * a
    return X[1]


def as_array_of(X):
    return np.asarray(X)


def through_asarray_from_a_user_function(a):
    X = np.zeros(3) + 0.0 * a
    V = as_array_of(X)                 # vector mode copied the tangent of this view
    V[1] = a * a
    return X[1]


def constant_into_a_user_function(a):
    return np.sum(norm_plus(np.zeros(3), a))


@pytest.mark.parametrize("function", [through_a_user_function_of_inactive, through_a_tuple_from_a_user_function,
                                      through_a_tuple_item_from_a_user_function,
                                      through_an_unpacked_view_from_a_user_function, through_a_tuple_item],
                         ids=lambda f: f.__name__)
def test_a_write_through_a_view_a_user_function_returned_reaches_the_viewed_array(function):
    F = fwdad.forward_grad(function)
    assert F.jvp((A,), (1.0,)) == pytest.approx((A * A, expected_by_differences(function)))


def test_a_view_a_user_function_returned_is_written_through_in_every_mode():
    """value_and_grad and jacobian (vector mode) gave the derivative of the write 0: the
    callee's vector form copied the tangent of np.asarray(X); such a caller now runs the
    single-direction JVPs."""
    check_every_mode(through_asarray_from_a_user_function)


def test_a_constant_array_given_to_a_user_function_carries_no_tangent():
    """Its result shares no memory with the constant, so the constant gets no (zero) tangent,
    and the norm's rule is not evaluated at 0 (a zero tangent there gives nan, by convention)."""
    F = fwdad.forward_grad(constant_into_a_user_function)
    assert F.jvp((A,), (1.0,)) == (0.0, 0.0)


def writes_through_flip_of_inactive(a):
    X = np.zeros(3)
    V = np.flip(X)
    V[0] = a * a
    return X[2]


def writes_into_the_source_of_a_flip(a):
    X = np.zeros(3)
    V = np.flip(X)
    X[0] = a * a
    return V[2]


def rebinds_a_flip(a):
    X = np.arange(3.0)
    V = np.flip(X)
    V = V * a
    return V[0]


@pytest.mark.parametrize("function", [writes_through_flip_of_inactive, writes_into_the_source_of_a_flip],
                         ids=lambda f: f.__name__)
def test_a_write_through_a_view_function_without_a_rule_is_refused_not_lost(function):
    with pytest.raises(DifferentiationError, match=r"(?s)V = np\.flip\(X\).*no derivative rule for np\.flip"):
        fwdad.forward_grad(function).jvp((A,), (1.0,))


def test_a_view_function_without_a_rule_is_fine_when_nothing_is_written_through_it():
    assert fwdad.jvp(rebinds_a_flip, (A,), (1.0,)) == pytest.approx((2.0 * A, 2.0))


def contiguous_copy_written(x, a):
    S = np.ascontiguousarray(x)
    S[0] = a * a
    return x[0] + S[0]


def ravel_written(x, a):
    S = np.ravel(x)
    S[0] = a * a
    return x[0] + S[0]


def ravel_method_source_written(x, a):
    S = x.ravel()
    x[0] = a * a
    return x[0] + S[0]


@pytest.mark.parametrize("function", [contiguous_copy_written, ravel_written, ravel_method_source_written],
                         ids=lambda f: f.__name__)
@pytest.mark.parametrize("strided", [True, False], ids=["strided", "contiguous"])
def test_a_view_only_of_a_contiguous_array_has_a_tangent_copied_like_its_primal(function, strided):
    """Numba copies a strided x here, but the tangent passed for it (np.ones(3)) is contiguous."""
    def laid_out(values):                     # a fresh x, strided or not (the function writes into it)
        x = np.zeros(6)[::2] if strided else np.zeros(3)
        x[:] = values
        return x

    def at(dx, da, h):
        return function(laid_out(np.arange(3.0) + h * dx), A + h * da)

    for dx, da in [(np.ones(3), 0.0), (np.zeros(3), 1.0)]:
        expected = (at(dx, da, 1e-6) - at(dx, da, -1e-6)) / 2e-6
        tangent = fwdad.forward_grad(function).jvp((laid_out(np.arange(3.0)), A), (dx, da))[1]
        assert tangent == pytest.approx(expected, rel=1e-6)


def test_a_strided_tangent_of_a_contiguous_array_written_through_ravel_is_refused_not_lost():
    """The primal's ravel is a view, the tangent's a copy: the write could not reach both."""
    strided_tangent = np.ones((3, 2))[:, 0]
    with pytest.raises(ExecutionError, match=r"(?s)S = np\.ravel\(x\).*x is contiguous but its tangent is not"):
        fwdad.forward_grad(ravel_written).jvp((np.arange(3.0), A), (strided_tangent, 0.0))


def writes_through_np_transpose_of_a_copy(x, a):
    X = x + 0.0
    S = np.transpose(X)
    S[0] = a * a
    return X[0] + X[1]


def writes_through_reshape_method_of_a_copy(x, a):
    X = x + 0.0
    S = X.reshape(2)
    S[0] = a * a
    return X[0] + X[1]


@pytest.mark.parametrize("function", [writes_through_np_transpose_of_a_copy,
                                      writes_through_reshape_method_of_a_copy], ids=lambda f: f.__name__)
def test_a_write_through_a_view_call_leaves_the_callers_tangent_alone(function):
    F = fwdad.forward_grad(function)
    dx = np.ones(2)
    first = F.jvp((np.arange(2.0), A), (dx, 0.0))
    assert first == pytest.approx((A * A + 1.0, 1.0))
    assert np.array_equal(dx, np.ones(2))                    # was: [0, 1], so the next call differed
    assert F.jvp((np.arange(2.0), A), (dx, 0.0)) == pytest.approx(first)


# ---- S3: a global array written after the first call ---------------------------------------------
W_S3 = np.array([1.0, 2.0])


def reads_global_array(x):
    return np.sum(W_S3 * x)


def test_the_derivative_sees_the_global_array_the_primal_froze():
    x, dx = np.ones(2), np.array([1.0, 0.5])
    F = fwdad.forward_grad(reads_global_array)
    assert F(x) == 3.0
    saved = W_S3.copy()
    try:
        W_S3[0] = 10.0
        assert F(x) == 3.0                                      # frozen, as Numba does
        value, tangent = F.jvp((x,), (dx,))
        assert (value, tangent) == pytest.approx((3.0, central_difference(F, (x,), (dx,))))
        assert tangent == pytest.approx(2.0)                    # W as frozen: 1 * 1 + 2 * 0.5
        assert fwdad.forward_grad(reads_global_array).jvp((x,), (dx,)) == pytest.approx((12.0, 11.0))
    finally:
        W_S3[:] = saved


W_PAIR_S3 = (np.array([1.0, 2.0]), 3.0)


def reads_global_tuple_of_arrays(x):
    return np.sum(W_PAIR_S3[0] * x) * W_PAIR_S3[1]


def test_the_derivative_sees_the_arrays_of_a_global_tuple_the_primal_froze():
    x = np.ones(2)
    F = fwdad.forward_grad(reads_global_tuple_of_arrays)
    assert F(x) == 9.0
    W_PAIR_S3[0][0] = 10.0
    try:
        assert F.jvp((x,), (np.ones(2),)) == (9.0, 9.0)
    finally:
        W_PAIR_S3[0][0] = 1.0


CFG_S3 = types.ModuleType("cfg_s3")
CFG_S3.W = np.array([1.0, 2.0])


def reads_module_array(x):
    return np.sum(CFG_S3.W * x)


def test_a_global_array_behind_an_attribute_that_changed_is_refused_not_mixed():
    x = np.ones(2)
    F = fwdad.forward_grad(reads_module_array)
    assert F(x) == 3.0
    CFG_S3.W[0] = 10.0
    try:
        with pytest.raises(CompilationError, match=r"(?s)CFG_S3\.W changed.*What to do: decorate"):
            F.jvp((x,), (np.ones(2),))
        assert fwdad.forward_grad(reads_module_array).jvp((x,), (np.ones(2),)) == (12.0, 12.0)
    finally:
        CFG_S3.W[0] = 1.0


# ---- S4: a scalar global changed before a new decoration ----------------------------------------
SCALE_S4 = 2.0


def reads_global_scale(x):
    return SCALE_S4 * x * x


def calls_a_function_reading_a_global(x):
    return reads_global_scale(x) + x


def test_a_new_decoration_and_fwdad_jvp_read_the_current_globals(monkeypatch):
    old = fwdad.forward_grad(reads_global_scale)
    assert old(1.0) == 2.0
    assert fwdad.jvp(reads_global_scale, (1.0,), (1.0,)) == (2.0, 4.0)
    monkeypatch.setattr(sys.modules[__name__], "SCALE_S4", 3.0)
    assert fwdad.forward_grad(reads_global_scale)(1.0) == 3.0
    assert fwdad.jvp(reads_global_scale, (1.0,), (1.0,)) == (3.0, 6.0)
    assert old.jvp((1.0,), (1.0,)) == (2.0, 4.0)            # an existing one keeps its frozen globals


def test_a_new_decoration_reads_the_current_globals_of_its_callees(monkeypatch):
    assert fwdad.jvp(calls_a_function_reading_a_global, (1.0,), (1.0,)) == (3.0, 5.0)
    monkeypatch.setattr(sys.modules[__name__], "SCALE_S4", 3.0)
    assert fwdad.jvp(calls_a_function_reading_a_global, (1.0,), (1.0,)) == (4.0, 7.0)


# ---- S5: defjvp rules checked ------------------------------------------------------------------
def softplus(x):
    return np.log1p(np.exp(x))


def softplus_summed_tangent(x, dx):
    return softplus(x), np.sum(dx)


def uses_softplus(x):
    return np.sum(softplus(x))


def test_a_rule_whose_tangent_has_another_shape_is_refused_at_the_rule():
    fwdad.defjvp(softplus, softplus_summed_tangent)
    with pytest.raises(DifferentiationError, match=r"(?s)test_views_globals.py:\d+.*softplus_summed_tangent"
                       r".*array\(float64, 1d.*float64.*What to do"):
        fwdad.jvp(uses_softplus, (np.array([0.5, 1.0]),), (np.ones(2),))


def two_arguments(x, dx):
    return x, dx


@pytest.mark.parametrize("func, rule", [(softplus, 3), (lambda x: x, two_arguments),
                                        (softplus, lambda x, dx: (x, dx)), (softplus, softplus)],
                         ids=["rule-not-callable", "lambda-function", "lambda-rule", "wrong-arity"])
def test_defjvp_refuses_what_it_cannot_use(func, rule):
    with pytest.raises(OptionError, match="What to do"):
        fwdad.defjvp(func, rule)
