"""Failures found by the differential fuzzer (tests/fuzz/test_fuzz.py), minimized, one test each.

Each test runs every fuzz oracle (CPython, central differences, JAX where it applies) on the
minimized program. The causes found so far are fixed (the comment above each test names
the component); a newly found failure goes here as xfail(strict=True, reason=...) until fixed.
"""
import numpy as np
import pytest

from test_fuzz import FuzzFailure, check_source

LEN_ARGUMENT = '''
import numpy as np


def g(x, n):
    return x[0] * n


def f(x):
    return g(x, len(x))
'''

SHAPE_ARGUMENT = '''
import numpy as np


def g(x, n):
    return x[0] * n


def f(x):
    return g(x, x.shape[0])
'''


# was: fwdad/compiler.py Unit.atom_type could not type an argument kept whole (len(x))
@pytest.mark.parametrize("source", [LEN_ARGUMENT, SHAPE_ARGUMENT], ids=["len", "shape"])
def test_len_as_argument_of_a_user_function(source):
    check_source(source, "f", ["array"], points=1)


LOG_BASE_IN_IF = '''
import math


def f(a):
    if a < math.log(a * a + 1.0, 2.0):
        return a
    return 2.0 * a
'''

LOG_BASE_IN_TERNARY = '''
import math


def f(a):
    return a if a < math.log(a * a + 1.0, 2.0) else 2.0 * a
'''

LOG_BASE_IN_WHILE = '''
import math


def f(a):
    k = 0
    while k < 3 and a < math.log(a * a + 4.0, 2.0):
        k += 1
        a = a * 1.5
    return a
'''


# was: fwdad/frontend/normalize.py kept tests whole without rewriting math.log(x, base)
@pytest.mark.parametrize("source", [LOG_BASE_IN_IF, LOG_BASE_IN_TERNARY, LOG_BASE_IN_WHILE],
                         ids=["if", "ternary", "while"])
def test_log_with_base_in_if_test(source):
    check_source(source, "f", ["float"], points=1)


SQUARE_IN_PLACE = '''
def f(a):
    a *= a
    return a + a
'''

POWER_IN_PLACE = '''
def f(a):
    a **= a
    return a
'''

ARRAY_SQUARE_IN_PLACE = '''
import numpy as np


def f(x):
    w = x.copy()
    w *= w
    return np.sum(w)
'''


# was: fwdad/transform/tangent.py in-place rules read d_a after updating it when y is a itself;
# now the update that reads d_y is computed first
@pytest.mark.parametrize("source, args", [(SQUARE_IN_PLACE, [0.7]), (POWER_IN_PLACE, [0.7]),
                                          (ARRAY_SQUARE_IN_PLACE, [np.array([0.5, -1.0, 2.0, 0.3])])],
                         ids=["mult", "pow", "array"])
def test_in_place_update_by_itself(source, args):
    check_source(source, "f", ["array" if isinstance(args[0], np.ndarray) else "float"], args=args)


DOT_METHOD_ACTIVE_ARGUMENT = '''
import numpy as np


def f(x):
    w = np.arange(4.0)
    return w.dot(x)
'''

DOT_METHOD_INACTIVE = '''
import numpy as np


def f(a):
    w = np.ones(4)
    a = w.dot(w)
    return a
'''


# was: fwdad/transform/rules.py Instantiate kept the call `dx.dot(y)` of a zero receiver: `0.0(y)`
@pytest.mark.parametrize("source, kinds", [(DOT_METHOD_ACTIVE_ARGUMENT, ["array"]), (DOT_METHOD_INACTIVE, ["float"])],
                         ids=["active-argument", "both-inactive"])
def test_dot_method_of_an_inactive_array(source, kinds):
    check_source(source, "f", kinds, points=1)


ARRAY_ALIAS_IN_PLACE = '''
import numpy as np


def f(x):
    w = x.copy()
    v = w
    w *= v
    return np.sum(w)
'''


# was: fwdad/transform/tangent.py copied d_y only when y was the target's own name, not an alias
def test_in_place_update_by_an_alias():
    check_source(ARRAY_ALIAS_IN_PLACE, "f", ["array"], args=[np.array([0.5, -1.0, 2.0, 3.0])])


INACTIVE_IN_PLACE_ADD = '''
import numpy as np


def f(x):
    s = 0.0
    if x[0] > 0.0:
        s += np.sum(x)
    else:
        c = 0.5
        s += c
    return x + s
'''


# was: fwdad/transform/vector.py wrapped an empty list of tangent updates (`s += c`, c inactive)
# in a loop over directions: the vector-mode source had a `for` without a body
def test_in_place_add_of_an_inactive_value_in_vector_mode():
    check_source(INACTIVE_IN_PLACE_ADD, "f", ["array"], args=[np.array([0.3, -0.2, 0.5, 0.1])])
    check_source(INACTIVE_IN_PLACE_ADD, "f", ["array"], args=[np.array([-0.3, -0.2, 0.5, 0.1])])


INACTIVE_CALL_RESULT = '''
import numpy as np


def g(x):
    return np.sum(x) * 2.0


def f(a, b):
    b = g(np.ones(4))
    return a + b
'''


# was: fwdad/transform/tangent.py user_call kept the old tangent of b when a call that receives
# no tangent (g(np.ones(4))) overwrote b: the JVP still carried d_b
def test_call_without_tangents_resets_the_tangent_of_its_target():
    check_source(INACTIVE_CALL_RESULT, "f", ["float", "float"], args=[1.1, 0.6])


VIEW_WRITE_IN_A_CALLEE_RETURNING_A_TUPLE = '''
import numpy as np


def g(x):
    w = x * 2.0
    x[::-1][-2] += 2.0
    return 0.0, np.outer(w, w)


def f(x):
    s, M = g(x)
    return M + np.sum(x)
'''


# gradients (exact drivers): found by the "user" flavor, seed 135, on 7fee7ee: f.jacobian was
# wrong in the columns after the first (by 16 and 24 at x = [0.5, -1, 2, 0.3]): each pass after
# the first saw the earlier passes' write into x made inside the callee (a tuple-returning
# callee has no vector form, so the Jacobian runs one scalar pass per column). The drivers now
# restore every argument the function or a callee writes (Unit.written_parameters).
def test_vector_mode_write_in_a_callee_returning_a_tuple():
    check_source(VIEW_WRITE_IN_A_CALLEE_RETURNING_A_TUPLE, "f", ["array"], args=[np.array([0.5, -1.0, 2.0, 0.3])])


READ_ONLY_CRASH_IN_NUMBA = '''
import numba
import numpy as np


@numba.njit
def g(a, A, x):
    A.T[-4] = x
    np.swapaxes(A, 0, 1)[2] *= a
    return a + np.sum(A)


def f(x, A):
    return x + g(x[1], A, x)
'''


# harness (found by the 2,000-program run, seed 13): Numba raises AttributeError, not its
# "readonly" error, for `np.swapaxes(A, 0, 1)[i] *= a` of a read-only A, so the harness thought the program
# wrote into no argument and took f.jvp's (correct) write into A's tangent for a bug.
def test_a_write_numba_cannot_report_as_read_only_still_counts_as_a_write():
    check_source(READ_ONLY_CRASH_IN_NUMBA, "f", ["array", "matrix"],
                 args=[np.array([0.5, -1.0, 2.0, 0.3]), np.arange(16.0).reshape(4, 4) / 10])


RESHAPE_WRITES_OF_THE_ARGUMENT = '''
import numpy as np


def f0(x, n, a):
    np.reshape(x, (2, 2))[0] = x[:2]
    w1 = x[::-1]
    np.reshape(x, (2, 2))[1] = w1[:2]
    return np.outer(w1, x) + (a + np.sum(x) + np.sum(w1))
'''


# found by the long run, seed 15, on 53cae69-27eb3cb: f.jacobian (vector mode) times the direction
# differed from f.jvp: the per-direction store `d_x[1, :, k] = d_w1[..., k]` reads a reversed view
# of the array it writes, and Numba's overlap check misses it for the (int, slice, int) pattern.
def test_vector_mode_reshape_writes_into_the_argument():
    check_source(RESHAPE_WRITES_OF_THE_ARGUMENT, "f0", ["array", "int", "float"],
                 args=[np.array([0.9057519277776351, -1.1374957216790782, 1.0688494357297569,
                                 1.416973248033555]), 5, 1.2799344883152854])


VIEW_READ_AFTER_WRITE = '''
import numpy as np


def f1(a, A, x):
    x[1:3] = x[:2] * a
    return np.sum(A) + a * np.sum(x)
'''


# found by the long run of session 4, seed 16 (chunk 1600002), on 2f419f4: vector mode's fusion
# moved the primal write `x[1:3] = t2` ahead of the tangent loop that reads `t1 = x[:2]`, a view
# of x under another name, so f.jacobian read the written values (f.jvp was right).
def test_vector_mode_reads_a_view_before_the_write_through_it():
    check_source(VIEW_READ_AFTER_WRITE, "f1", ["float", "matrix", "array"],
                 args=[-0.3315522945229974, np.arange(16.0).reshape(4, 4) * 0.1,
                       np.array([0.23205280726309185, 1.6130956791580449, -1.9149396067482285,
                                 -1.4998500564521464])])


NORM_OF_A_CONSTANT_IN_A_CALLEE = '''
import numpy as np


def g(A, a):
    return np.tanh(A) + np.linalg.norm(A) * a


def f(x):
    return np.sum(g(np.ones(4) * 0.0, x[0]))
'''


# was: fwdad/frontend/activity.py made a callee's array result an alias of every array argument
# (found by the stencil run of seed 18, issue 14; fixed in e796cbf): the constant `np.ones(4) * 0.0`
# got a zero tangent, and the norm's rule at 0 (<A, dA> / 0, nan by docs/conventions.md) made
# the JVP nan; written inline, or with a callee that returns a float, it was 0.0, as jax.jvp's
def test_norm_of_a_constant_argument_in_a_callee_returning_an_array():
    check_source(NORM_OF_A_CONSTANT_IN_A_CALLEE, "f", ["array"], points=1)
