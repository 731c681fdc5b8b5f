"""Functions fwdad must reject with a clear error; `# <-` marks the line the error must name."""
import math

import numpy as np


def uses_try(x):
    try:  # <- try
        y = x * 2.0
    except ValueError:
        y = 0.0
    return y


def uses_with(x):
    with open("f") as f:  # <- with
        pass
    return x


def uses_comprehension(x):
    return sum([v * 2.0 for v in x])  # <- comprehension


def uses_generator(x):
    yield x  # <- generator


def uses_lambda(x):
    f = lambda v: v * 2.0  # <- lambda
    return f(x)


def uses_nested_def(x):
    def inner(v):  # <- nested
        return v
    return inner(x)


def uses_global(x):
    global COUNTER  # <- global
    return x


class Thing:
    pass


def uses_class(x):
    class Local:  # <- class
        pass
    return x


def recursive(x, n):
    if n == 0:
        return x
    return recursive(x * 0.5, n - 1)


def opaque_call(x):
    return math.gamma(x) * 2.0  # <- opaque


def numba_cannot(x):
    s = "text"
    return x * s  # <- numba


def bool_or_of_floats(x, y):
    z = x or y  # <- boolop
    return z * 2.0


def swap_kinds(x):
    y = x * 2.0
    y = np.ones(3)
    return y


async def asynchronous(x):
    return x
