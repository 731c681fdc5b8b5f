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
POSITIVE, UNIT, ABOVE_ONE = rules.POSITIVE, rules.UNIT, rules.ABOVE_ONE
# function -> one (low, high) per argument, from the rule table's rows (domain=); None marks
# rules tested with the array programs (test_array_rules.py)
DOMAINS = {f: row.domain for f, row in rules.ROWS.items() if row.template is not rules.NO_RULE}
# array-only rules (reductions, products, linear algebra, selection) live in test_array_rules.py
DOMAINS.update({f: None for f, d in DOMAINS.items() if d == rules.UNSET and (
    not callable(f) or getattr(f, "__module__", "") is None or
    str(getattr(f, "__module__", "")).startswith("numpy") or isinstance(f, __import__("numpy").ufunc))})


def test_a_function_is_registered_once():
    """A second row for a function raises (np.negative had two rules; the second silently won)."""
    with pytest.raises(ValueError, match="row for 'negative' already"):
        rules.rule("-dx", np.negative)
    assert rules.FUNCTIONS[np.negative] == rules.LINEAR and rules.FUNCTIONS[math.log][2]


def test_the_rows_hold_the_facts_the_passes_read():
    """Allocation (CUDA device code), inactive calls (normalize), views and vector mode's
    copied views come from the same rows as the rules."""
    from fwdad.frontend.normalize import INACTIVE_CALLS
    from fwdad.transform.vector import COPIED_VIEWS
    assert rules.allocates("zeros_like") and rules.allocates("copy") and not rules.allocates("sin")
    assert {len, range, isinstance} <= INACTIVE_CALLS and np.sin not in INACTIVE_CALLS
    assert COPIED_VIEWS == {"squeeze", "swapaxes"}
    assert {np.flip, np.transpose} <= rules.VIEW_FUNCTIONS and np.flip not in rules.FUNCTIONS
    with pytest.raises(ValueError, match="already says view=True"):
        rules.facts(np.transpose, view=False)


def test_every_rule_has_a_domain():
    missing = [getattr(f, "__name__", str(f)) for f in rules.FUNCTIONS if DOMAINS.get(f, rules.UNSET) == rules.UNSET]
    assert not missing, f"add input domains for these rules: {missing}"


SCALAR_CASES = [(f, d) for f, d in DOMAINS.items() if d not in (None, rules.UNSET) and f in rules.FUNCTIONS]


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
