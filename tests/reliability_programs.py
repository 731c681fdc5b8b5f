"""Programs for tests/test_reliability.py (module level: fwdad reads their source)."""
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
