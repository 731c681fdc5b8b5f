"""Oracles shared by the tests: random tangents, central differences, tree comparison."""
import copy
import os

import numpy as np

TESTS = os.path.dirname(os.path.abspath(__file__))       # tests/: conftest, helpers, golden/
PROGRAMS = os.path.join(TESTS, "programs")               # the sample programs the tests import
ROOT = os.path.dirname(TESTS)                            # the repository


def is_float(value):
    if isinstance(value, np.ndarray):
        return value.dtype.kind == "f"
    return isinstance(value, (float, np.floating))


def random_tangent(value, rng):
    if isinstance(value, np.ndarray):
        return rng.normal(size=value.shape).astype(value.dtype)
    return type(value)(rng.normal()) if isinstance(value, np.floating) else float(rng.normal())


def as_float64(value):
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value.astype(np.float64)
    if isinstance(value, np.floating):
        return float(value)
    return copy.deepcopy(value)


def shifted(args, tangents, h):
    return [as_float64(a) if t is None else as_float64(a) + h * as_float64(t) for a, t in zip(args, tangents)]


def central_difference(function, args, tangents, h=1e-6):
    """(f(x + h v) - f(x - h v)) / 2h, evaluated in float64, leaf by leaf."""
    plus = function(*shifted(args, tangents, h))
    minus = function(*shifted(args, tangents, -h))
    return tree_map(lambda p, m: (np.asarray(p, np.float64) - m) / (2 * h) if is_float_leaf(p) else None,
                    plus, minus)


def is_float_leaf(value):
    return is_float(value) or (isinstance(value, np.ndarray) and value.dtype.kind == "f")


def tree_map(fn, a, b):
    if isinstance(a, tuple):
        return tuple(tree_map(fn, x, y) for x, y in zip(a, b))
    return fn(a, b)


def assert_tree_close(actual, expected, rtol, atol, what=""):
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected), f"{what}: structure differs"
        for i, (x, y) in enumerate(zip(actual, expected)):
            assert_tree_close(x, y, rtol, atol, f"{what}[{i}]")
        return
    if expected is None:
        return
    np.testing.assert_allclose(np.asarray(actual, np.float64), np.asarray(expected, np.float64),
                               rtol=rtol, atol=atol, err_msg=what)


def check_jvp(ff, args, rng, rtol=1e-5, atol=1e-7, h=1e-6):
    """Primal vs CPython and JVP vs central differences, with every float argument active.

    Copies are passed everywhere, so functions that mutate their inputs are checked too.
    """
    tangents = [random_tangent(a, rng) if is_float(a) else None for a in args]
    value, tangent = ff.jvp(copy.deepcopy(args), copy.deepcopy(tangents))
    expected_value = ff.py_func(*copy.deepcopy(args))
    float32 = any(isinstance(a, (np.float32, np.ndarray)) and getattr(a, "dtype", None) == np.float32
                  for a in args)
    tol = dict(rtol=1e-4, atol=1e-5) if float32 else dict(rtol=1e-12, atol=1e-12)
    assert_tree_close(value, expected_value, what="primal vs CPython", **tol)
    assert_tree_close(ff(*copy.deepcopy(args)), expected_value, what="compiled primal vs CPython", **tol)
    expected_tangent = central_difference(ff.py_func, args, tangents, h)
    if float32:
        rtol, atol = max(rtol, 1e-3), max(atol, 1e-4)
    assert_tree_close(tangent, expected_tangent, rtol, atol, "tangent vs central difference")
    return value, tangent
