"""Programs for tests/fuzz/test_reliability.py (module level: fwdad reads their source)."""
import math

import numpy as np


def weighted_sum(x, w):
    s = 0.0
    for i in range(x.shape[0]):
        s += w[i] * math.sin(x[i])
    return s


def scale_0d(x, a):
    return x * a + np.sin(x)


def slow_square_sum(x):
    s = 0.0
    for i in range(len(x)):
        for j in range(20):
            s += x[i] * x[i] * 0.05
    return s


def halve_in_place(x):
    x *= 0.5
    return np.sum(x)


def writes_inside_a_condition(a, x):
    if halve_in_place(x) > 0.0:        # the plain primal runs here: x's tangent would go stale
        a = a * 2.0
    return a + np.sum(x)


def writes_on_its_own_line(a, x):
    r = halve_in_place(x)
    if r > 0.0:
        a = a * 2.0
    return a + np.sum(x)
