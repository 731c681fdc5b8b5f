"""Issue 13, findings 6, 7, 8, 9, 14 and 17: each program once gave a silently wrong tangent or
a crash without the user's line. Now each is right (checked against central differences) or
refused with a FwdadError that names the user's file:line and says what to write instead."""
import inspect

import numpy as np
import pytest

import fwdad
import trust_rule_programs as P
from fwdad.errors import DifferentiationError, FwdadError
from helpers import check_jvp

X = np.array([0.3, -1.2, 2.5, 0.7])
A = np.array([[1.0, -2.0, 0.5], [0.3, 0.8, -1.5], [2.0, 0.1, 0.4]])

CORRECT = [   # (program, arguments): the JVP must match central differences
    (P.through_T_in_helper, (0.7,)), (P.through_T, (0.7,)), (P.through_T_method, (0.7,)),
    (P.through_swapaxes, (0.7,)), (P.through_reshape, (0.7,)), (P.through_ravel, (0.7,)),
    (P.through_stepped_slice, (0.7,)), (P.through_returned_view, (0.7,)),
    (P.through_T_then_add, (0.7, 1.3)),
    (P.tuple_of_active, (0.7,)), (P.array_of_active, (0.7, -1.1)),
    (P.arange_active_start, (0.7,)), (P.arange_active_step, (0.7, 1.3)),
    (P.linspace_active, (0.7, 2.9)), (P.linspace_num_keyword, (0.7, 2.9)),
    (P.builtin_max, (X,)), (P.builtin_min, (X,)), (P.builtin_sum, (X, 0.5)), (P.builtin_len, (X,)),
    (P.max_of_tuple, (0.7, 2.9)), (P.sum_of_list, (0.7, 2.9)),
    (P.norm_1, (X,)), (P.norm_inf, (X,)), (P.norm_ord_keyword, (X,)), (P.norm_p, (X,)),
    (P.matrix_norm_1, (A,)), (P.matrix_norm_2, (A,)), (P.uses_sort_wrapper, (X,)),
    (P.cumprod_roll_diff, (X,)),
]


@pytest.mark.parametrize("program, args", CORRECT, ids=[p.__name__ for p, _ in CORRECT])
def test_tangent_is_right(program, args, rng):
    check_jvp(fwdad.forward_grad(program), args, rng)


def test_view_tangents_are_not_zero():
    """The old code copied the tangent of `V = U.T`, so the write reached U but not dU: tangent 0."""
    _, tangent = fwdad.jvp(P.through_T, (0.7,), (1.0,))
    assert tangent == 2.0
    _, tangent = fwdad.jvp(P.through_T_in_helper, (0.7,), (1.0,))
    assert tangent == 2.0


def test_norms_with_ord_are_not_the_two_norm():
    _, tangent = fwdad.jvp(P.norm_1, (X,), (np.ones(4),))
    assert tangent == pytest.approx(np.sum(np.sign(X)))
    _, tangent = fwdad.jvp(P.norm_inf, (X,), (np.ones(4),))
    assert tangent == pytest.approx(1.0)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, np.inf])
def test_norm_with_a_variable_constant_ord(p, rng):
    dx = rng.normal(size=4)
    _, tangent = fwdad.jvp(P.norm_variable_ord, (X, p), (dx, None))
    h = 1e-6
    expected = (np.linalg.norm(X + h * dx, p) - np.linalg.norm(X - h * dx, p)) / (2 * h)
    assert tangent == pytest.approx(expected, rel=1e-6)


def test_arange_has_the_tangent_of_its_start_and_step():
    _, tangent = fwdad.jvp(P.arange_active_step, (0.7, 1.3), (1.0, 0.0))
    assert tangent == pytest.approx(len(np.arange(0.7, 10.0, 1.3)))


REFUSED = [   # (program, arguments, words the message must contain)
    (P.list_of_active, (0.7,), "list"), (P.list_append, (0.7,), "list"), (P.list_store, (0.7,), "list"),
    (P.dict_of_active, (X,), "through dicts"), (P.dict_item_write, (X,), "through dicts"),
    (P.dict_update, (X[:2],), "through dicts"),
    (P.max_with_axis, (A,), "Numba cannot compile"), (P.mean_method_axis, (A,), "Numba cannot compile"),
    (P.arange_with_dtype, (0.5,), "does not take 4 arguments"),
    (P.norm_variable_ord, (X, 2.0), "treats `p` as a constant"), (P.sin_with_out, (X,), "`out` array"),
    (P.shuffled, (X.copy(),), "may write into"), (P.chosen, (X,), "np.random.choice"),
    (P.min_of_tuple_variable, (0.7, 2.9), "not the tuple `t`"),
]


@pytest.mark.parametrize("program, args, words", REFUSED, ids=[p.__name__ for p, _, _ in REFUSED])
def test_refused_at_the_users_line(program, args, words):
    tangents = tuple(np.ones_like(a) if isinstance(a, np.ndarray) else 1.0 for a in args)
    with pytest.raises(FwdadError) as raised:
        fwdad.jvp(program, args, tangents)
    message = str(raised.value)
    lines, first = inspect.getsourcelines(program)
    assert message.splitlines()[0].startswith(f"{inspect.getsourcefile(program)}:")
    line = int(message.splitlines()[0].rsplit(":", 1)[1])
    assert first < line < first + len(lines)
    assert words in message and "What to do:" in message


def test_list_refusal_says_what_to_write():
    with pytest.raises(DifferentiationError, match=r"np\.array\(\(1\.0, a, 3\.0\)\)"):
        fwdad.jvp(P.list_of_active, (0.7,), (1.0,))


def test_advice_for_a_library_function_can_be_followed():
    """The advice shows a wrapper with a rule; uses_sort_wrapper follows it and is right."""
    with pytest.raises(DifferentiationError) as raised:
        fwdad.jvp(P.uses_sort, (X,), (np.ones(4),))
    message = str(raised.value)
    assert "def my_sort(x):" in message and "@fwdad.defjvp(my_sort)" in message
    _, tangent = fwdad.jvp(P.uses_sort_wrapper, (X,), (np.arange(4.0),))
    assert tangent == 2.0 * 1.0           # the smallest entry is X[1]


@pytest.mark.slow
def test_vector_mode_gives_the_same_gradient():
    """value_and_grad (K directions at once) runs the new rules on slices of the direction axis."""
    args = (X, 0.7, 1.3)
    f = fwdad.forward_grad(P.many_new_rules)
    _, grads = f.value_and_grad(*args)
    assert "_jvp_vector" in f.source
    for i in range(4):
        e = np.zeros(4)
        e[i] = 1.0
        assert grads[0][i] == pytest.approx(f.jvp(args, (e, 0.0, 0.0))[1], rel=1e-12)
    assert grads[1] == pytest.approx(f.jvp(args, (np.zeros(4), 1.0, 0.0))[1], rel=1e-12)
    assert grads[2] == pytest.approx(f.jvp(args, (np.zeros(4), 0.0, 1.0))[1], rel=1e-12)
    check_jvp(f, args, np.random.default_rng(3))
