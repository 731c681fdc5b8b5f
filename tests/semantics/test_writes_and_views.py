"""Exact gradients of functions that write into their arguments or through views.

value_and_grad and jacobian run the function once per chunk of directions (or once per input
without a vector form): every pass must start from the caller's values, and a write through a
view must reach the viewed array's tangent in vector mode too. Found by the fuzzer's grammar
of views and tuples (issue 13); each case gave a silently wrong gradient before.
"""
import numpy as np
import pytest

import fwdad
import writes_programs as programs

A0 = np.arange(16.0).reshape(4, 4) / 10
X0 = np.array([0.5, -1.0, 2.0, 0.3])
CASES = [(programs.transpose_write, A0), (programs.transpose_axes_write, A0),
         (programs.swapaxes_write, A0), (programs.divides_then_calls, X0),
         (programs.scales_argument, X0), (programs.callee_writes_a_swapped_view, A0),
         (programs.fills_a_swapped_view, A0)]
FUNCTIONS = {f: fwdad.forward_grad(f) for f in [c[0] for c in CASES] +
             [programs.scales_argument_vector, programs.calls_a_writing_helper]}


def gradient_by_jvps(f, array, a):
    """The gradient one JVP per input, each on fresh copies: the reference."""
    grad = np.zeros_like(array)
    for i in range(array.size):
        unit = np.zeros_like(array)
        unit.flat[i] = 1.0
        grad.flat[i] = f.jvp((array.copy(), a), (unit, 0.0))[1]
    return grad, f.jvp((array.copy(), a), (np.zeros_like(array), 1.0))[1]


@pytest.mark.parametrize("chunk", [None, 1, 3])
@pytest.mark.parametrize("program, array", CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_value_and_grad_of_a_writing_function(program, array, chunk):
    f = FUNCTIONS[program]
    expected_x, expected_a = gradient_by_jvps(f, array, 0.7)
    mine, after_one_call = array.copy(), array.copy()
    value, (gx, ga) = f.value_and_grad(mine, 0.7, chunk=chunk)
    assert value == pytest.approx(program(after_one_call, 0.7), rel=1e-12)
    np.testing.assert_allclose(gx, expected_x, rtol=1e-10, atol=1e-12)
    assert ga == pytest.approx(expected_a, rel=1e-10)
    np.testing.assert_array_equal(mine, after_one_call)      # as after one call of the function


@pytest.mark.parametrize("chunk", [None, 1, 2])
def test_jacobian_when_a_callee_writes_into_the_argument(chunk):
    f, x = FUNCTIONS[programs.calls_a_writing_helper], X0
    columns = [f.jvp((x.copy(),), (np.eye(x.size)[i],))[1] for i in range(x.size)]
    np.testing.assert_allclose(f.jacobian(x.copy(), chunk=chunk)[0], np.stack(columns, -1), rtol=1e-12)


@pytest.mark.parametrize("chunk", [None, 1, 2])
def test_jacobian_of_a_writing_function(chunk):
    f, x = FUNCTIONS[programs.scales_argument_vector], X0
    jx, ja = f.jacobian(x.copy(), 0.7, chunk=chunk)
    for i in range(x.size):
        unit = np.zeros_like(x)
        unit[i] = 1.0
        np.testing.assert_allclose(jx[:, i], f.jvp((x.copy(), 0.7), (unit, 0.0))[1], rtol=1e-12)
    np.testing.assert_allclose(ja, f.jvp((x.copy(), 0.7), (np.zeros_like(x), 1.0))[1], rtol=1e-12)
