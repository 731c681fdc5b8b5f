"""Array rules, one by one: JVP vs central differences (float64 and float32) and vs jax.jvp.

Each NumPy rule runs on arrays from its own input domain, with broadcasting between an array,
a row and a scalar for the binary ones.
"""
import types

import numpy as np
import pytest

import fwdad
from fwdad.transform import rules
from helpers import central_difference
from test_rules import DOMAINS, POSITIVE, UNIT

try:
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
except ImportError:          # the JAX oracle is optional
    jax = None


def a1(x):
    return OP(x)  # noqa: F821


def a2(x, y):
    return OP(x, y)  # noqa: F821


def a3(x, y, w):
    return OP(x, y, w)  # noqa: F821


def axis0(x):
    return OP(x, axis=0)  # noqa: F821


def axis1(x):
    return OP(x, axis=1)  # noqa: F821


def matmul_operator(x, y):
    return x @ y


def sequence(x, y):
    return OP((x, y))  # noqa: F821


def sequence_axis(x, y):
    return OP((x, y), axis=1)  # noqa: F821


def with_op(function, op):
    return types.FunctionType(function.__code__, dict(function.__globals__, OP=op), function.__name__)


def arr(shape, lo=-2.0, hi=2.0):
    return ("array", shape, (lo, hi))


def sc(lo=-2.0, hi=2.0):
    return ("scalar", (lo, hi))


# function -> list of (program, argument specs)
CASES = {}
for function, domain in DOMAINS.items():
    if isinstance(function, np.ufunc) and domain and function in rules.FUNCTIONS:
        if len(domain) == 1:
            CASES[function] = [(a1, [arr((3, 4), *domain[0])])]
        else:
            CASES[function] = [(a2, [arr((3, 4), *domain[0]), arr((3, 4), *domain[1])]),
                               (a2, [arr((3, 4), *domain[0]), arr((4,), *domain[1])]),
                               (a2, [sc(*domain[0]), arr((2, 3), *domain[1])])]
CASES.update({
    np.maximum: [(a2, [arr((3, 4)), arr((3, 4))]), (a2, [arr((3, 4)), sc()])],
    np.minimum: [(a2, [arr((3, 4)), arr((4,))])],
    np.fmax: [(a2, [arr((3, 4)), arr((3, 4))])],
    np.fmin: [(a2, [arr((3, 4)), arr((3, 4))])],
    np.clip: [(a3, [arr((3, 4)), sc(-1.0, -0.5), sc(0.5, 1.0)])],
    np.sum: [(a1, [arr((3, 4))]), (axis0, [arr((3, 4))]), (axis1, [arr((3, 4))])],
    np.mean: [(a1, [arr((3, 4))])],
    np.max: [(a1, [arr((3, 4))])], np.min: [(a1, [arr((5,))])],
    np.amax: [(a1, [arr((3, 4))])], np.amin: [(a1, [arr((3, 4))])],
    np.prod: [(a1, [arr((2, 3), 0.5, 1.5)])],
    np.cumsum: [(a1, [arr((5,))]), (axis0, [arr((3, 4))])],
    np.trace: [(a1, [arr((4, 4))])],
    np.dot: [(a2, [arr((4,)), arr((4,))]), (a2, [arr((3, 4)), arr((4,))]), (a2, [arr((3, 4)), arr((4, 2))])],
    np.matmul: [(matmul_operator, [arr((3, 4)), arr((4, 2))]), (matmul_operator, [arr((4,)), arr((4, 2))])],
    np.outer: [(a2, [arr((3,)), arr((4,))])],
    np.linalg.norm: [(a1, [arr((5,))]), (a1, [arr((3, 4))])],
    np.transpose: [(a1, [arr((3, 4))])],
    np.ravel: [(a1, [arr((3, 4))])],
    np.concatenate: [(sequence, [arr((2, 3)), arr((1, 3))]), (sequence_axis, [arr((2, 3)), arr((2, 1))])],
    np.stack: [(sequence, [arr((2, 3)), arr((2, 3))])],
    np.vstack: [(sequence, [arr((2, 3)), arr((1, 3))])],
    np.hstack: [(sequence, [arr((4,)), arr((2,))])],
    np.linalg.solve: [(a2, [("wellposed", (3, 3)), arr((3,))]), (a2, [("wellposed", (3, 3)), arr((3, 2))])],
    np.linalg.inv: [(a1, [("wellposed", (3, 3))])],
    np.linalg.det: [(a1, [("wellposed", (3, 3))])],
    np.full_like: [(a2, [arr((3,)), sc()])],
    np.linspace: [(a3, [sc(), sc(), ("const", 5)])],
    np.cumprod: [(a1, [arr((5,), -1.5, 1.5)]), (a1, [arr((2, 3), -1.5, 1.5)])],
    np.diff: [(a1, [arr((5,))]), (a1, [arr((3, 4))])],
})
# a few rules need a static argument in a given position; they are tested in the corpus
STATIC = {np.full, np.reshape, np.where, np.squeeze, np.expand_dims, np.swapaxes, np.atleast_1d,
          np.atleast_2d, np.asarray, np.ascontiguousarray, np.copy, np.diag, np.roll, np.arange, np.array}


def test_every_array_rule_is_tested():
    array_rules = {f for f in rules.FUNCTIONS
                   if getattr(f, "__module__", "") and str(getattr(f, "__module__", "")).startswith("numpy")
                   or isinstance(f, np.ufunc)}
    untested = [getattr(f, "__name__", f) for f in array_rules
                if f not in CASES and f not in STATIC and rules.FUNCTIONS[f] is not None
                and not isinstance(rules.FUNCTIONS[f], rules.Refused)
                and f not in (np.float64, np.float32)]
    assert not untested, f"add array test cases for: {untested}"


def make(spec, rng, dtype):
    kind = spec[0]
    if kind == "array":
        _, shape, (lo, hi) = spec
        return rng.uniform(lo, hi, size=shape).astype(dtype)
    if kind == "scalar":
        value = rng.uniform(*spec[1])
        return dtype(value) if dtype is np.float32 else float(value)
    if kind == "wellposed":
        n = spec[1][0]
        return (rng.normal(size=spec[1]) + 3 * np.eye(n)).astype(dtype)
    return spec[1]


FLOAT32_IN_FAST_PROFILE = {np.sin, np.exp, np.log, np.sqrt, np.tanh, np.power, np.maximum, np.sum,
                           np.matmul, np.dot, np.max, np.linalg.solve, np.concatenate, np.clip}
PARAMS = []
for f, programs in CASES.items():
    for program, specs in programs:
        name = f"{getattr(f, '__name__', f)}-{program.__name__}-{len(PARAMS)}"
        PARAMS.append(pytest.param(f, program, specs, np.float64, id=name + "-f64"))
        marks = () if f in FLOAT32_IN_FAST_PROFILE else (pytest.mark.slow,)
        PARAMS.append(pytest.param(f, program, specs, np.float32, id=name + "-f32", marks=marks))


@pytest.mark.parametrize("op, program, specs, dtype", PARAMS)
def test_array_rule(op, program, specs, dtype, rng):
    plain = with_op(program, op)
    f = fwdad.forward_grad(plain)
    args = [make(s, rng, dtype) for s in specs]
    tangents = [None if s[0] == "const" else
                (rng.normal(size=np.shape(a)).astype(dtype) if isinstance(a, np.ndarray)
                 else type(a)(rng.normal())) for s, a in zip(specs, args)]
    value, tangent = f.jvp(tuple(args), tuple(tangents))
    expected = plain(*args)
    tol = dict(rtol=2e-3, atol=2e-3) if dtype is np.float32 else dict(rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(value, expected, **tol)
    if isinstance(expected, np.ndarray):
        assert np.asarray(tangent).dtype == np.asarray(value).dtype, "the tangent dtype differs"
        assert np.shape(tangent) == expected.shape
    fd = central_difference(plain, args, tangents)
    tol = dict(rtol=2e-3, atol=2e-3) if dtype is np.float32 else dict(rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(tangent, fd, **tol)
    if jax is not None and dtype is np.float64:
        jax_op = jax_equivalent(op)
        if jax_op is not None:
            jax_plain = with_op(program, jax_op)
            primals = [jnp.asarray(a) if s[0] != "const" else a for s, a in zip(specs, args)]
            active = [i for i, t in enumerate(tangents) if t is not None]

            def closed(*xs):
                full = list(primals)
                for i, x in zip(active, xs):
                    full[i] = x
                return jax_plain(*full)
            _, jax_tangent = jax.jvp(closed, tuple(primals[i] for i in active),
                                     tuple(jnp.asarray(tangents[i]) for i in active))
            np.testing.assert_allclose(tangent, np.asarray(jax_tangent), rtol=1e-8, atol=1e-10)


def jax_equivalent(op):
    if jax is None:
        return None
    name = getattr(op, "__name__", "")
    if op in (np.linalg.solve, np.linalg.inv, np.linalg.det, np.linalg.norm):
        return getattr(jnp.linalg, name)
    return getattr(jnp, name, None)


# ---- methods -----------------------------------------------------------------------------------
def method_sum(x):
    return x.sum() + x.sum(axis=0)[1]


def method_mean_max_min(x):
    return x.mean() * x.max() - x.min()


def method_dot_T(x, y):
    return x.dot(y).T


def method_reshape_ravel_copy(x):
    y = x.reshape((4, 3)).copy()
    return y.ravel() * 2.0 + x.reshape(12)


def method_astype(x):
    return x.astype(np.float64) * 2.0


def method_prod_cumsum(x):
    return x.prod() + x.cumsum()


@pytest.mark.parametrize("program, shapes", [
    (method_sum, [(3, 4)]), (method_mean_max_min, [(3, 4)]), (method_dot_T, [(3, 4), (4, 2)]),
    (method_reshape_ravel_copy, [(3, 4)]), (method_astype, [(3, 4)]), (method_prod_cumsum, [(5,)]),
])
def test_array_methods(program, shapes, rng):
    f = fwdad.forward_grad(program)
    args = [rng.uniform(0.5, 1.5, size=s) for s in shapes]
    tangents = [rng.normal(size=s) for s in shapes]
    value, tangent = f.jvp(tuple(args), tuple(tangents))
    np.testing.assert_allclose(value, program(*args), rtol=1e-6)
    np.testing.assert_allclose(tangent, central_difference(program, args, tangents), rtol=1e-5, atol=1e-6)


# ---- conventions at kinks (JAX's) ----------------------------------------------------------------
def relu(x):
    return np.maximum(x, 0.0)


def absolute(x):
    return np.abs(x)


def largest(x):
    return np.max(x)


def power(x, y):
    return x ** y


def clipped(x):
    return np.clip(x, -1.0, 1.0)


def test_kink_conventions():
    x = np.array([-1.0, 0.0, 2.0])
    assert list(fwdad.jvp(relu, (x,), (np.ones(3),))[1]) == [0.0, 0.5, 1.0]
    assert list(fwdad.jvp(absolute, (x,), (np.ones(3),))[1]) == [-1.0, 1.0, 1.0]
    ties = np.array([1.0, 3.0, 3.0])
    assert fwdad.jvp(largest, (ties,), (np.array([5.0, 2.0, 4.0]),))[1] == 3.0
    bounds = np.array([-1.0, 0.0, 1.0])
    clip_tangent = list(fwdad.jvp(clipped, (bounds,), (np.ones(3),))[1])
    assert fwdad.jvp(power, (0.0, 2.0), (0.0, 1.0))[1] == 0.0        # d(x**y)/dy at x = 0
    if jax is not None:
        assert list(jax.jvp(lambda v: jnp.maximum(v, 0.0), (x,), (np.ones(3),))[1]) == [0.0, 0.5, 1.0]
        assert clip_tangent == list(jax.jvp(lambda v: jnp.clip(v, -1.0, 1.0), (bounds,), (np.ones(3),))[1])
        assert float(jax.jvp(lambda a, b: a ** b, (0.0, 2.0), (0.0, 1.0))[1]) == 0.0
        assert float(jax.jvp(jnp.max, (ties,), (np.array([5.0, 2.0, 4.0]),))[1]) == 3.0
