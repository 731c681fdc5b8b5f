"""Semantics the compiler core guarantees: mutation, aliasing, dtypes, defjvp, functional API."""
import math

import numpy as np
import pytest

import fwdad
from helpers import central_difference


def scale_in_place(x, s):
    for i in range(len(x)):
        x[i] = x[i] * s
    return x[0]


def test_input_mutated_in_place_mutates_its_tangent():
    f = fwdad.forward_grad(scale_in_place)
    x, dx = np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.0, 1.0])
    value, tangent = f.jvp((x, 2.0), (dx, 1.0))
    np.testing.assert_allclose(x, [2.0, 4.0, 6.0])            # the function mutates x
    np.testing.assert_allclose(dx, [0.5 * 2 + 1.0, 0 + 2.0, 1.0 * 2 + 3.0])   # d(x*s) = dx*s + x*ds
    assert value == 2.0 and tangent == dx[0]


def read_only(x, y):
    s = 0.0
    for i in range(len(x)):
        s += x[i] * y[i]
    return s


def test_inputs_and_tangents_are_not_modified():
    f = fwdad.forward_grad(read_only)
    x, y, dx, dy = (np.arange(4.0) + k for k in range(4))
    copies = [a.copy() for a in (x, y, dx, dy)]
    f.jvp((x, y), (dx, dy))
    for before, after in zip(copies, (x, y, dx, dy)):
        np.testing.assert_array_equal(before, after)


def write_through_alias(x, out):
    view = out
    for i in range(len(x)):
        view[i] = x[i] * x[i]
    return out


def test_inactive_output_buffer_gets_a_tangent_through_an_alias():
    f = fwdad.forward_grad(write_through_alias)
    x, dx = np.array([1.0, 2.0]), np.array([1.0, 1.0])
    value, tangent = f.jvp((x, np.zeros(2)), (dx, None))
    np.testing.assert_allclose(tangent, 2 * x * dx)


def float32_elementwise(x, a):
    y = np.empty_like(x)
    for i in range(len(x)):
        y[i] = math.tanh(x[i] * a) + x[i] ** 2
    return y


def test_float32_stays_float32():
    f = fwdad.forward_grad(float32_elementwise)
    x = np.linspace(-1, 1, 5).astype(np.float32)
    value, tangent = f.jvp((x, np.float32(0.5)), (np.ones(5, np.float32), np.float32(1.0)))
    assert value.dtype == np.float32 and tangent.dtype == np.float32
    fd = central_difference(float32_elementwise, (x, 0.5), (np.ones(5), 1.0))
    np.testing.assert_allclose(tangent, fd, rtol=1e-5, atol=1e-6)


def my_softplus(x):
    return math.log1p(math.exp(x))


def my_softplus_rule(x, dx):
    return my_softplus(x), dx / (1.0 + math.exp(-x))


fwdad.defjvp(my_softplus, my_softplus_rule)


def uses_softplus(x, y):
    return my_softplus(x * y) + my_softplus(2.0)


def test_defjvp_rule_is_used():
    f = fwdad.forward_grad(uses_softplus)
    value, tangent = f.jvp((0.3, 1.5), (1.0, 0.0))
    assert "my_softplus_rule" in f.source
    assert value == pytest.approx(uses_softplus(0.3, 1.5))
    assert tangent == pytest.approx(1.5 / (1.0 + math.exp(-0.45)))


def exact_sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


@fwdad.defjvp(exact_sigmoid)
def exact_sigmoid_rule(x, dx):
    s = exact_sigmoid(x)
    return s, 123.0 * dx          # deliberately not the true derivative: the rule wins


def uses_sigmoid(x):
    return exact_sigmoid(x)


def test_defjvp_as_decorator_takes_precedence_over_source():
    assert fwdad.jvp(uses_sigmoid, (0.2,), (2.0,))[1] == pytest.approx(246.0)


def test_functional_jvp_and_inactive_arguments():
    value, tangent = fwdad.jvp(read_only, (np.ones(3), np.full(3, 2.0)), (None, np.ones(3)))
    assert value == 6.0 and tangent == 3.0
    value, tangent = fwdad.jvp(read_only, (np.ones(3), np.full(3, 2.0)), (None, None))
    assert value == 6.0 and tangent == 0.0


def two_outputs(x, n):
    return x * 2.0, n + 1, x * x


def test_output_tangents_have_the_structure_of_the_output():
    value, tangent = fwdad.jvp(two_outputs, (3.0, 4), (1.0, None))
    assert value == (6.0, 5, 9.0)
    assert tangent == (2.0, None, 6.0)


def test_keyword_and_default_arguments_in_the_primal():
    f = fwdad.forward_grad(two_outputs)
    assert f(n=1, x=2.0) == (4.0, 2, 4.0)


def test_nan_and_inf_propagate():
    value, tangent = fwdad.jvp(read_only, (np.array([np.nan, 1.0]), np.ones(2)), (None, np.ones(2)))
    assert math.isnan(value) and math.isnan(tangent)
    value, tangent = fwdad.jvp(my_softplus, (1000.0,), (1.0,))
    assert value == math.inf


def sqrt_at_zero(x):
    return math.sqrt(x)


def test_division_by_zero_gives_inf_as_in_numpy():
    value, tangent = fwdad.jvp(sqrt_at_zero, (0.0,), (1.0,))
    assert value == 0.0 and tangent == math.inf


# ---- regressions found while writing the docs ------------------------------------------------------
def scaled_sin(x, y):
    return math.sin(x) * y


@fwdad.defjvp(scaled_sin)
def scaled_sin_rule(x, y, dx, dy):
    return math.sin(x) * y, math.cos(x) * y * dx + math.sin(x) * dy


def calls_rule_with_a_literal(x):
    return scaled_sin(x, 2.0)


def test_defjvp_rule_called_with_a_float_literal():
    assert fwdad.jvp(calls_rule_with_a_literal, (0.5,), (1.0,))[1] == pytest.approx(2 * math.cos(0.5))


def test_defjvp_rule_is_used_by_jvp_of_the_function_itself():
    value, tangent = fwdad.jvp(exact_sigmoid, (0.2,), (2.0,))
    assert tangent == pytest.approx(246.0) and value == pytest.approx(exact_sigmoid(0.2))


def gamma_of(x):
    return math.gamma(x)


@fwdad.defjvp(gamma_of)
def gamma_rule(x, dx):
    g = math.gamma(x)
    return g, dx * g * (math.log(x) - 0.5772156649015329 + x / (x * x + 1.0) * 0.0)   # digamma(1) here


def uses_gamma(x):
    return gamma_of(x) * 2.0


def test_defjvp_for_a_function_without_source():
    assert fwdad.jvp(uses_gamma, (1.0,), (1.0,))[0] == pytest.approx(2.0)


def fill_from_active(x):
    y = np.empty(3)
    y.fill(x)
    return y.sum()


def test_fill_with_an_active_value():
    assert fwdad.jvp(fill_from_active, (0.3,), (1.0,))[1] == pytest.approx(3.0)
    assert fwdad.forward_grad(fill_from_active).value_and_grad(0.3)[1][0] == pytest.approx(3.0)


def two_outputs_array(x, s):
    return x * s, np.sum(x)


def test_jacobian_of_a_tuple_output_is_a_clear_error():
    with pytest.raises(fwdad.FwdadError, match="one float scalar or float array"):
        fwdad.forward_grad(two_outputs_array).jacobian(np.ones(3), 2.0)


def affine(x, a):
    return x * a + 1.0


def test_batch_jvp_single_in_axes_applies_to_arrays():
    f = fwdad.forward_grad(affine)
    values, tangents = f.batch_jvp((np.arange(3.0), 2.0), (np.ones(3), 0.5), in_axes=0)
    np.testing.assert_allclose(values, np.arange(3.0) * 2 + 1)
    np.testing.assert_allclose(tangents, 2.0 + 0.5 * np.arange(3.0))
    with pytest.raises(fwdad.FwdadError, match="is a scalar"):
        f.batch_jvp((np.arange(3.0), 2.0), (np.ones(3), 0.5), in_axes=(0, 0))


def rosen2(x, y):
    return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2


def test_fgd_single_direction_bit_identical_on_cpu_and_parallel():
    runs = [fwdad.fgd(fwdad.forward_grad(rosen2, target=t), (-1.0, 0.0), lr=5e-4, steps=500, seed=3,
                      progress=False) for t in ("cpu", "parallel")]
    np.testing.assert_array_equal(runs[0].losses, runs[1].losses)
    assert runs[0].params == runs[1].params


def gamma_builtin_rule(x, dx):
    g = math.gamma(x)
    return g, dx * g * (-0.5772156649015329)        # digamma(1): exact at x = 1


def uses_builtin_gamma(x):
    return math.gamma(x) * 2.0


def test_defjvp_directly_on_a_builtin():
    fwdad.defjvp(math.gamma, gamma_builtin_rule)
    try:
        value, tangent = fwdad.jvp(uses_builtin_gamma, (1.0,), (1.0,))
    finally:
        from fwdad.compiler import USER_RULES
        USER_RULES.pop(math.gamma, None)
    assert value == pytest.approx(2.0) and tangent == pytest.approx(-2 * 0.5772156649015329)


def shift_then_scale_in_place(x):
    v = x + 1.0                 # the tangent of v is d_x's values: it must be a copy of d_x,
    v *= 3.0                    # or this update would change d_x (and the caller's tangent)
    u = v[1:]
    u[0] = 5.0                  # a write through a view of v
    return np.sum(v + x)


def shifted(x):
    return x + 1.0              # a new array whose tangent folds to d_x


def scale_a_returned_array_in_place(x):
    v = shifted(x)
    v *= 3.0                    # the caller writes the callee's result
    return np.sum(v + x)


@pytest.mark.parametrize("function", [shift_then_scale_in_place, scale_a_returned_array_in_place])
def test_a_new_array_with_the_tangent_of_another_is_written_in_place_safely(function):
    f = fwdad.forward_grad(function)
    x, dx = np.ones(3), np.array([1.0, 2.0, 3.0])
    value, tangent = f.jvp((x,), (dx,))
    assert value == function(x.copy())
    np.testing.assert_allclose(tangent, central_difference(function, (x,), (dx,)), rtol=1e-7)
    np.testing.assert_array_equal(dx, [1.0, 2.0, 3.0])          # the caller's tangent is untouched


def rescale_twice(x, W):
    x = x * 2.0                 # vector mode: the new tangent reads the old one
    W = W + W
    return np.sum(x * 1.5) + np.sum(W * x[0])


def test_vector_mode_reassignment_that_reads_its_own_tangent():
    x, W = np.array([0.5, -1.0, 2.0]), np.arange(6.0).reshape(2, 3)
    _, (gx, gW) = fwdad.forward_grad(rescale_twice).value_and_grad(x, W)
    np.testing.assert_allclose(gx, [3.0 + 4.0 * W.sum(), 3.0, 3.0])   # 3 sum(x) + 4 x0 sum(W)
    np.testing.assert_allclose(gW, np.full((2, 3), 4.0 * x[0]))
