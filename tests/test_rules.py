"""The rule table, rule by rule: JVP vs central finite differences along a random direction.

The domain table mirrors fwdad.transform.rules: a rule added there without a domain here fails
`test_every_rule_has_a_domain`.
"""
import ast
import math
import types

import numpy as np
import pytest

import fwdad
from fwdad.transform import rules


def apply1(x):
    return OP(x)  # noqa: F821  (OP is injected per rule)


def apply2(x, y):
    return OP(x, y)  # noqa: F821


def apply3(x, y, w):
    return OP(x, y, w)  # noqa: F821


APPLY = {1: apply1, 2: apply2, 3: apply3}
POSITIVE, UNIT, ABOVE_ONE = (0.2, 3.0), (-0.9, 0.9), (1.1, 3.0)
# function -> one (low, high) per argument; None marks arguments that must stay inactive constants
DOMAINS = {
    math.sin: [(-3, 3)], np.sin: [(-3, 3)], math.cos: [(-3, 3)], np.cos: [(-3, 3)],
    math.tan: [(-1.2, 1.2)], np.tan: [(-1.2, 1.2)],
    math.asin: [UNIT], np.arcsin: [UNIT], math.acos: [UNIT], np.arccos: [UNIT],
    math.atan: [(-3, 3)], np.arctan: [(-3, 3)],
    math.atan2: [(-2, 2), POSITIVE], np.arctan2: [POSITIVE, (-2, 2)],
    math.sinh: [(-2, 2)], np.sinh: [(-2, 2)], math.cosh: [(-2, 2)], np.cosh: [(-2, 2)],
    math.tanh: [(-2, 2)], np.tanh: [(-2, 2)], math.asinh: [(-2, 2)], np.arcsinh: [(-2, 2)],
    math.acosh: [ABOVE_ONE], np.arccosh: [ABOVE_ONE], math.atanh: [UNIT], np.arctanh: [UNIT],
    math.exp: [(-2, 2)], np.exp: [(-2, 2)], np.exp2: [(-2, 2)], math.expm1: [(-2, 2)],
    np.expm1: [(-2, 2)], np.log: [POSITIVE], math.log1p: [(-0.5, 2)], np.log1p: [(-0.5, 2)],
    math.log2: [POSITIVE], np.log2: [POSITIVE], math.log10: [POSITIVE], np.log10: [POSITIVE],
    math.sqrt: [POSITIVE], np.sqrt: [POSITIVE], np.cbrt: [POSITIVE], np.square: [(-2, 2)],
    np.reciprocal: [POSITIVE], np.negative: [(-2, 2)],
    math.pow: [POSITIVE, (-2, 2)], np.power: [POSITIVE, (-2, 2)],
    math.hypot: [(-2, 2), POSITIVE], np.hypot: [(-2, 2), POSITIVE],
    math.erf: [(-2, 2)], math.erfc: [(-2, 2)],
    math.copysign: [POSITIVE, (-2, 2)], np.copysign: [(-2, 2), POSITIVE],
    np.logaddexp: [(-2, 2), (-2, 2)],
    float: [(-2, 2)], np.float64: [(-2, 2)], np.float32: None,
    math.log: [POSITIVE, ABOVE_ONE],
    abs: [(-2, 2)], math.fabs: [(-2, 2)], np.abs: [(-2, 2)], np.absolute: [(-2, 2)], np.fabs: [(-2, 2)],
    max: [(-2, 2), (-2, 2)], min: [(-2, 2), (-2, 2)],
    # piecewise constant: the tangent must be exactly zero
    math.floor: [(-2, 2)], math.ceil: [(-2, 2)], math.trunc: [(-2, 2)], np.floor: [(-2, 2)],
    np.ceil: [(-2, 2)], np.trunc: [(-2, 2)], np.rint: [(-2, 2)], np.round: [(-2, 2)],
    np.sign: [(-2, 2)], round: [(-2, 2)], int: [(-2, 2)],
    # allocation and array-only rules are tested with the array programs
    np.empty: None, np.zeros: None, np.ones: None, np.empty_like: None, np.zeros_like: None,
    np.ones_like: None, np.eye: None, np.identity: None, np.arange: None, np.full: None,
    np.full_like: None, np.linspace: None, sum: None,
}
# array-only rules (reductions, products, linear algebra, selection) live in test_array_rules.py
DOMAINS.update({f: None for f in rules.FUNCTIONS if f not in DOMAINS and (
    not callable(f) or getattr(f, "__module__", "") is None or
    str(getattr(f, "__module__", "")).startswith("numpy") or isinstance(f, __import__("numpy").ufunc))})


def test_every_rule_has_a_domain():
    missing = [getattr(f, "__name__", str(f)) for f in rules.FUNCTIONS if f not in DOMAINS]
    assert not missing, f"add input domains for these rules: {missing}"


SCALAR_CASES = [(f, d) for f, d in DOMAINS.items() if d is not None and f in rules.FUNCTIONS]


def with_op(function, op):
    namespace = dict(function.__globals__, OP=op)
    return types.FunctionType(function.__code__, namespace, function.__name__)


@pytest.mark.parametrize("op, domain", SCALAR_CASES, ids=[getattr(f, "__name__", str(f)) for f, _ in SCALAR_CASES])
def test_scalar_rule(op, domain, rng):
    plain = with_op(APPLY[len(domain)], op)
    f = fwdad.forward_grad(plain)
    x = tuple(float(rng.uniform(lo, hi)) for lo, hi in domain)
    v = tuple(float(rng.normal()) for _ in domain)
    value, tangent = f.jvp(x, v)
    expected = plain(*x)
    assert value == pytest.approx(expected, rel=1e-12, abs=1e-12)
    if rules.function_rule(op, len(domain)) is None:
        assert tangent in (0.0, None)
        return
    h = 1e-6
    plus = plain(*(a + h * b for a, b in zip(x, v)))
    minus = plain(*(a - h * b for a, b in zip(x, v)))
    assert tangent == pytest.approx((plus - minus) / (2 * h), rel=1e-6, abs=1e-8)


OPERATOR_SOURCES = {ast.Add: "x + y", ast.Sub: "x - y", ast.Mult: "x * y", ast.Div: "x / y",
                    ast.Pow: "x ** y", ast.Mod: "x % y", ast.FloorDiv: "x // y", ast.USub: "-x",
                    ast.UAdd: "+x"}


def op_add(x, y): return x + y
def op_sub(x, y): return x - y
def op_mul(x, y): return x * y
def op_div(x, y): return x / y
def op_pow(x, y): return x ** y
def op_mod(x, y): return x % y
def op_floordiv(x, y): return x // y
def op_neg(x, y): return -x
def op_pos(x, y): return +x
def op_matmul(x, y): return x @ y


OPERATOR_FUNCTIONS = {ast.Add: op_add, ast.Sub: op_sub, ast.Mult: op_mul, ast.Div: op_div,
                      ast.Pow: op_pow, ast.Mod: op_mod, ast.FloorDiv: op_floordiv,
                      ast.USub: op_neg, ast.UAdd: op_pos, ast.MatMult: op_matmul}


def test_every_operator_is_tested():
    assert set(rules.OPERATORS) == set(OPERATOR_FUNCTIONS)


@pytest.mark.parametrize("op", [o for o in OPERATOR_FUNCTIONS if o is not ast.MatMult],
                         ids=lambda o: o.__name__)
@pytest.mark.parametrize("active", [(0, 1), (0,), (1,)])
def test_operator_rule(op, active, rng):
    plain = OPERATOR_FUNCTIONS[op]
    f = fwdad.forward_grad(plain)
    x = (float(rng.uniform(0.5, 2.0)), float(rng.uniform(0.5, 2.0)))
    v = tuple(float(rng.normal()) if i in active else None for i in range(2))
    value, tangent = f.jvp(x, v)
    assert value == pytest.approx(plain(*x))
    h = 1e-6
    shift = [b or 0.0 for b in v]
    plus = plain(*(a + h * b for a, b in zip(x, shift)))
    minus = plain(*(a - h * b for a, b in zip(x, shift)))
    assert tangent == pytest.approx((plus - minus) / (2 * h), rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("op", list(rules.IN_PLACE), ids=lambda o: o.__name__)
def test_in_place_rule(op, rng):
    source = {ast.Add: "+=", ast.Sub: "-=", ast.Mult: "*=", ast.Div: "/=", ast.Pow: "**="}[op]
    plain = IN_PLACE_FUNCTIONS[source]
    f = fwdad.forward_grad(plain)
    x = (float(rng.uniform(0.5, 2.0)), float(rng.uniform(0.5, 2.0)))
    v = (float(rng.normal()), float(rng.normal()))
    value, tangent = f.jvp(x, v)
    h = 1e-6
    fd = (plain(x[0] + h * v[0], x[1] + h * v[1]) - plain(x[0] - h * v[0], x[1] - h * v[1])) / (2 * h)
    assert value == pytest.approx(plain(*x)) and tangent == pytest.approx(fd, rel=1e-6)


def ip_add(x, y):
    x += y
    return x


def ip_sub(x, y):
    x -= y
    return x


def ip_mul(x, y):
    x *= y
    return x


def ip_div(x, y):
    x /= y
    return x


def ip_pow(x, y):
    x **= y
    return x


IN_PLACE_FUNCTIONS = {"+=": ip_add, "-=": ip_sub, "*=": ip_mul, "/=": ip_div, "**=": ip_pow}
