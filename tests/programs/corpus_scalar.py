"""A corpus of plain Python functions covering the compiler core's subset.

Each CASES entry is (function, make_args) where make_args(rng) returns the arguments. The
tests differentiate every float argument and check primal values against CPython and JVPs
against central finite differences.
"""
import math

import numba
import numpy as np

CASES = []


def case(make_args):
    def register(function):
        CASES.append((function, make_args))
        return function
    return register


def floats(*values):
    return lambda rng: tuple(float(v) for v in values)


# ---- arithmetic ---------------------------------------------------------------------------------
@case(floats(1.3, -0.7))
def arithmetic(x, y):
    return x + y - x * y + x / (y + 3.0) - -x


@case(floats(1.7, 0.6))
def power_both_active(a, b):
    return a ** b + a ** 2 + 2.0 ** b + a ** -1.5


@case(floats(7.3, 2.2))
def floordiv_and_mod(x, y):
    return x // y + x % y + (x * y) % 3.0


@case(floats(0.4, 1.9))
def unary_and_constants(x, y):
    z = -x
    z = +z * 3
    return -z / y + 1


# ---- control flow -------------------------------------------------------------------------------
@case(floats(0.3, 1.2))
def if_elif_else(x, y):
    if x > y:
        z = x * x
    elif x < 0.0 or y > 5.0:
        z = math.sin(x)
    else:
        z = x * y
    return z + 1.0


@case(floats(0.9, 0.2))
def ternary(x, y):
    z = x * y if x > y else x + y
    return (z if z > 0 else -z) * 2.0


@case(lambda rng: (0.7, 11))
def for_range_forms(x, n):
    s = 0.0
    for i in range(n):
        s += x * i
    for i in range(2, n, 3):
        s -= x / (i + 1)
    for i in range(n, 0, -2):
        s += math.sin(x * i)
    return s


@case(lambda rng: (0.3, 4, 5))
def nested_loops(x, n, m):
    s = x
    for i in range(n):
        for j in range(m):
            s = s * 0.9 + x * (i - j) * 0.01
    return s


@case(lambda rng: (1.5,))
def while_loop(x):
    y = x
    k = 0
    while y < 100.0 and k < 50:
        y = y * 1.3 + x
        k += 1
    return y


@case(lambda rng: (0.8, 20))
def break_continue(x, n):
    s = 0.0
    for i in range(n):
        if i % 3 == 0:
            continue
        s += x ** 2 * i
        if s > 40.0:
            break
    return s


@case(floats(0.5))
def early_return(x):
    if x < 0.0:
        return -x
    for i in range(10):
        x = x * 1.1
        if x > 0.9:
            return x * 2.0
    return x


@case(floats(1.1, 2.0))
def tuple_return(x, y):
    return x * y, x - y, 3


@case(floats(0.3, 2.5))
def unpacking_and_swap(u, v):
    a, b = u * 2.0, v + 1.0
    for _ in range(3):
        a, b = b, a
    a, b = b * a, a
    return a + 3.0 * b


@case(floats(1.2, 0.7))
def augmented_assignments(x, y):
    z = x
    z += y
    z -= 0.5 * y
    z *= x
    z /= y
    z **= 1.5
    return z


@case(floats(0.6, 1.4))
def overwrites(a, b):
    a = a * a
    a = math.exp(a)
    b = b + a
    b = b * b
    a = a / b
    return a + b


# ---- builtins and math ---------------------------------------------------------------------------
@case(floats(-0.7, 1.3))
def builtins_abs_min_max(x, y):
    return abs(x) + min(x, y) + max(x, y, 0.5) + float(y) + int(y) * x


@case(floats(0.4))
def math_trig(x):
    return (math.sin(x) + math.cos(x) + math.tan(x) + math.asin(x) + math.acos(x)
            + math.atan(x) + math.atan2(x, 0.3) + math.atan2(0.2, x))


@case(floats(0.4))
def math_hyperbolic(x):
    return (math.sinh(x) + math.cosh(x) + math.tanh(x) + math.asinh(x) + math.acosh(1.0 + x)
            + math.atanh(x))


@case(floats(0.8, 2.5))
def math_exp_log(x, base):
    return (math.exp(x) + math.expm1(x) + math.log(x) + math.log(x, base) + math.log1p(x)
            + math.log2(x) + math.log10(x) + math.sqrt(x) + math.pow(x, base) + math.pow(x, 3.0))


@case(floats(0.83, -1.3))
def math_misc(x, y):
    return (math.hypot(x, y) + math.erf(x) + math.erfc(y) + math.fabs(y) + math.floor(x * 3.0)
            + math.ceil(y) + math.trunc(x * 5.0) + math.copysign(x, y) + math.copysign(y, x))


@case(lambda rng: (2.7, 3))
def int_variables_stay_inactive(x, n):
    k = n * 2
    j = int(x) + k
    m = len((1, 2, 3))
    return x * j + k * m


# ---- calls ---------------------------------------------------------------------------------------
def helper_square_plus(a, b=1.0):
    return a * a + b


@numba.njit
def jitted_helper(a, b):
    return math.sin(a) * b


def helper_two_outputs(a, b):
    return a * b, a + b


def helper_loop(x, n):
    for _ in range(n):
        x = helper_square_plus(x * 0.5, 0.1)
    return x


@case(floats(0.7, 1.6))
def calls_plain_and_jitted(x, y):
    return helper_square_plus(x) + helper_square_plus(y, b=x) + jitted_helper(x, y)


@case(floats(0.7, 1.6))
def calls_tuple_and_nested(x, y):
    p, q = helper_two_outputs(x, y)
    return p * q + helper_loop(x, 3)


@case(floats(0.7))
def calls_with_constant_arguments(x):
    return helper_square_plus(2.0, x) + helper_square_plus(x, 3.0) + helper_square_plus(1.5)


# ---- arrays through elements ----------------------------------------------------------------------
def vector(n):
    return lambda rng: (rng.normal(size=n),)


@case(vector(12))
def rosenbrock(x):
    s = 0.0
    for i in range(len(x) - 1):
        s += 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    return s


@case(lambda rng: (rng.random(16), 0.2, 5))
def heat_stencil(u0, alpha, steps):
    u = u0.copy()
    n = u.shape[0]
    for _ in range(steps):
        new = np.empty_like(u)
        new[0] = 0.0
        new[-1] = 0.0
        for i in range(1, n - 1):
            new[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1])
        u = new
    return u


@case(lambda rng: (rng.normal(size=(6, 2)), rng.random(6) + 0.5))
def nbody_energy(pos, mass):
    e = 0.0
    n = pos.shape[0]
    for i in range(n):
        for j in range(i + 1, n):
            dx = pos[i, 0] - pos[j, 0]
            dy = pos[i, 1] - pos[j, 1]
            e -= mass[i] * mass[j] / math.sqrt(dx * dx + dy * dy + 0.01)
    return e


@case(vector(7))
def negative_indices_and_item_updates(x):
    y = np.zeros(len(x))
    for i in range(len(x)):
        y[i] += x[i] * x[-1 - i]
        y[-1] -= 0.1 * x[i]
    return y[0] + y[-1] * 2.0 + y[3]


@case(lambda rng: (rng.normal(size=(3, 4)),))
def matrix_elements(A):
    m, n = A.shape
    B = np.ones((n, m))
    for i in range(m):
        for j in range(n):
            B[j, i] = A[i, j] * A[i, (j + 1) % n]
    t = 0.0
    for j in range(n):
        t += B[j, 0] - B[j, m - 1]
    return t


@case(lambda rng: (rng.normal(size=5), rng.normal(size=5)))
def mutates_input(x, y):
    for i in range(len(x)):
        x[i] = x[i] * y[i]
    return x[0] + x[4]


@case(vector(6))
def aliasing(x):
    y = np.zeros(6)
    z = y
    for i in range(6):
        z[i] = x[i] * 2.0
    return y[1] + y[5]


@case(vector(5))
def array_copy_and_shape(x):
    y = x.copy()
    for i in range(y.shape[0]):
        y[i] = y[i] * y[i]
    s = 0.0
    for i in range(len(y)):
        s += y[i]
    return s + x[0]


@case(vector(8))
def for_over_array_enumerate_zip(x):
    s = 0.0
    for v in x:
        s += v * v
    for i, v in enumerate(x):
        s += i * v
    y = np.ones_like(x)
    for a, b in zip(x, y):
        s += a * b
    return s


def fill_scaled(out, x, scale):
    for i in range(len(out)):
        out[i] = x[i] * scale
    return len(out)


@case(lambda rng: (rng.normal(size=4), 1.7))
def callee_writes_into_buffer(x, scale):
    buffer = np.empty(4)
    n = fill_scaled(buffer, x, scale)
    return buffer[0] * buffer[3] + n


@case(lambda rng: (rng.normal(size=5), rng.normal(size=5)))
def returns_array(x, y):
    out = np.zeros_like(x)
    for i in range(len(x)):
        out[i] = x[i] * y[i] + math.tanh(x[i])
    return out


@case(lambda rng: (rng.normal(size=3), 0.5))
def returns_tuple_with_array(x, s):
    out = np.zeros(3)
    for i in range(3):
        out[i] = x[i] * s
    return out, s * s, 2


@case(lambda rng: (np.float32(0.7), np.arange(4, dtype=np.float32) + np.float32(0.5)))
def float32_code(a, x):
    s = np.float32(0.0)
    for i in range(len(x)):
        s += math.sin(x[i]) * a + x[i] ** 2
    return s * np.float32(0.5)


@case(lambda rng: (rng.normal(size=4), 2.0, True))
def bools_and_assert(x, scale, flag):
    assert len(x) == 4
    s = 0.0
    ok = flag and scale > 1.0
    for i in range(4):
        if ok:
            s += x[i] * scale
        else:
            s -= x[i]
    return s


@case(floats(0.9))
def lorenz_euler(s):
    x = 1.0; y = 1.0; z = 1.0
    r = 28.0; b = 8.0 / 3.0
    for _ in range(200):
        dx = s * (y - x); dy = x * (r - z) - y; dz = x * y - b * z
        x += 0.001 * dx; y += 0.001 * dy; z += 0.001 * dz
    return x + y + z


@case(floats(0.3, 0.8))
def variable_first_defined_in_branch(x, y):
    if x < y:
        t = x * y
    else:
        t = 2.0
    u = 0
    u += t * x
    return u + t
