"""Programs for tests/rules/test_trust_rules.py (issue 13): each once gave a silently wrong tangent."""
import math

import numpy as np

import fwdad


# ---- writes through views (finding 7) ---------------------------------------------------------
def write_T(U, a):
    V = U.T
    V[0, 1] = a


def through_T_in_helper(a):
    U = np.zeros((2, 2))
    write_T(U, a)
    return U[1, 0] * 2.0


def through_T(a):
    U = np.zeros((2, 2))
    V = U.T
    V[0, 1] = a
    return U[1, 0] * 2.0


def through_T_method(a):
    U = np.zeros((2, 3))
    V = U.transpose()
    V[2, 1] = a * a
    return U


def through_swapaxes(a):
    U = np.zeros((2, 3))
    V = np.swapaxes(U, 0, 1)
    V[2, 1] = a * a
    return U


def through_reshape(a):
    U = np.zeros((2, 3))
    V = U.reshape(6)
    V[4] = a * 3.0
    return U


def through_ravel(a):
    U = np.zeros((2, 3))
    V = np.ravel(U)
    V[4] = a * 3.0
    return U


def through_stepped_slice(a):
    U = np.zeros(6)
    V = U[::2]
    V[1] = math.sin(a)
    return U


def column_of(U):
    return U[:, 1]


def through_returned_view(a):
    U = np.zeros((3, 3))
    V = column_of(U)
    V[2] = a * a
    return U


def through_T_then_add(a, x):
    U = np.ones((2, 2)) * x
    V = U.T
    V += a
    return U


# ---- lists (finding 8) -------------------------------------------------------------------------
def list_of_active(a):
    x = [1.0, a, 3.0]
    return x[0] * x[1]


def dict_of_active(x):
    d = {0: x}
    d[0] = 2.0 * x
    return d[0][0]


def dict_item_write(x):
    d = {0: 1.0}
    d[0] = 2.0 * x[0]
    return d[0]


def dict_update(x):
    d = {0: np.zeros(2)}
    d.update({1: x})
    return d[1][0]


def list_append(a):
    x = [1.0]
    x.append(a)
    return x[0] * x[1]


def list_store(a):
    x = [1.0, 2.0]
    x[1] = a
    return x[0] * x[1]


def tuple_of_active(a):
    x = (1.0, a, 3.0)
    return x[0] * x[1] + x[2]


def array_of_active(a, b):
    v = np.array([a, b, 1.0])
    w = np.array(((a, 2.0), (b, a)))
    return v[0] * v[1] + np.sum(w * w)


# ---- arange and linspace (finding 9) ------------------------------------------------------------
def arange_active_start(a):
    r = np.arange(a, a + 3.0, 1.0)
    return r[2] * r[1]


def arange_active_step(a, h):
    r = np.arange(a, 10.0, h)
    return np.sum(r)


def linspace_active(a, b):
    r = np.linspace(a, b, 5)
    return r[1] * r[3]


def linspace_num_keyword(a, b):
    r = np.linspace(a, b, num=4)
    return r[1]


# ---- builtins on arrays (finding 14) -------------------------------------------------------------
def builtin_max(x):
    return max(x)


def builtin_min(x):
    return min(x) * 2.0


def builtin_sum(x, s):
    return sum(x) + sum(x, s)


def builtin_len(x):
    return len(x) * x[0]


# ---- norms (finding 6) -----------------------------------------------------------------------------
def norm_1(x):
    return np.linalg.norm(x, 1)


def norm_inf(x):
    return np.linalg.norm(x, np.inf)


def norm_ord_keyword(x):
    return np.linalg.norm(x, ord=-np.inf)


def norm_p(x):
    return np.linalg.norm(x, 3)


def matrix_norm_1(A):
    return np.linalg.norm(A, 1)


def matrix_norm_2(A):
    return np.linalg.norm(A, 2)


def norm_variable_ord(x, p):
    return np.linalg.norm(x, p)


# ---- options a rule would ignore ------------------------------------------------------------------
def max_with_axis(A):
    return np.max(A, 0)


def mean_method_axis(A):
    return A.mean(0)


def arange_with_dtype(a):
    r = np.arange(a, 5.0, 1.0, np.float64)
    return r[1]


def sin_with_out(x):
    y = np.empty_like(x)
    z = np.sin(x, y)
    return y + z


def shuffled(x):
    np.random.shuffle(x)
    return x


def chosen(x):
    return np.random.choice(x)


# ---- library functions without a rule (finding 17) -------------------------------------------------
def uses_sort(x):
    return np.sort(x)[0]


def my_sort(x):
    return np.sort(x)


@fwdad.defjvp(my_sort)
def my_sort_rule(x, dx):
    order = np.argsort(x)
    return x[order], dx[order]


def uses_sort_wrapper(x):
    return my_sort(x)[0] * 2.0


def cumprod_roll_diff(x):
    return np.cumprod(x)[-1] + np.sum(np.roll(x, 1) * x) + np.sum(np.diff(x) ** 2)


def many_new_rules(x, a, b):
    """The new rules together, for vector mode (value_and_grad)."""
    v = np.array((a, b, 1.0))
    r = np.arange(a, a + 3.0, b)
    w = np.linspace(a, b, 3)
    total = np.linalg.norm(x, 1) + np.linalg.norm(x, np.inf) + np.linalg.norm(x, 3) + max(x) + sum(x, a)
    return total + np.sum(np.cumprod(x)) + np.sum(np.roll(x, 1) * x) \
        + np.sum(np.diff(np.concatenate((x, v))) ** 2) + np.sum(r * w)


def max_of_tuple(a, b):
    return max((a, b, 1.0)) + min([a, b])


def sum_of_list(a, b):
    return sum([a, b], 0.5) * a + sum((a, b))


def min_of_tuple_variable(a, b):
    t = (a, b)
    return min(t)
