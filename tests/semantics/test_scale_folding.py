"""Constant scalings folded across tangent statements (transform/scale.py).

The folded code must give the tangents of the unfolded code (bit for bit where the numbers are
powers of two times the scale, as for `100 * t ** 2`) and of central differences; a definition
is not moved past a statement that rebinds what it reads, nor out of its block.
"""
import ast
import types

import numpy as np
import pytest

import fwdad
import fwdad.compiler
from fwdad.transform.scale import fold_scalings
from helpers import check_jvp


def rosenbrock(x):
    total = 0.0
    for i in range(len(x) - 1):
        total += 100.0 * (x[i + 1] - x[i] * x[i]) ** 2 + (1.0 - x[i]) ** 2
    return total


def rebinds_between(x, a):
    t = x ** 2                  # d_t = d_x * 2 * x ...
    x = x + a                   # ... reads x, which this rebinds
    return 100.0 * t + x


def defined_in_a_branch(x, c):
    if c > 0:
        t = x ** 3
    else:
        t = x ** 2
    return -0.5 * t


def test_rosenbrock_folds_its_constants_bit_for_bit(rng, monkeypatch):
    folded = fwdad.forward_grad(rosenbrock)
    x, v = rng.normal(size=50), rng.normal(size=50)
    source = folded.source_for(x)
    assert "200.0 * (d_t4 * t4)" in source and "2.0 * (d_t2 * t2)" in source
    assert "100.0 * d_t5" not in source
    value, tangent = folded.jvp((x,), (v,))
    monkeypatch.setattr(fwdad.compiler, "fold_scalings", lambda function, foldable: function)
    plain = fwdad.forward_grad(types.FunctionType(rosenbrock.__code__, globals(), "rosenbrock_plain"))
    assert "100.0 * d_t5" in plain.source_for(x)
    assert plain.jvp((x,), (v,)) == (value, tangent)
    check_jvp(folded, [x], rng)


@pytest.mark.parametrize("function, args", [(rebinds_between, [1.3, 0.4]),
                                            (defined_in_a_branch, [1.3, 1.0]),
                                            (defined_in_a_branch, [1.3, -1.0])])
def test_no_fold_past_a_rebinding_or_out_of_a_branch(function, args, rng):
    check_jvp(fwdad.forward_grad(function), args, rng)


@pytest.mark.parametrize("between", ["d_x[0] = 5.0", "g(d_x)", "y = h(d_x)", "x = 1.0", "d_x = d_x * 2.0"])
def test_a_definition_does_not_move_past_a_write_or_a_call(between):
    source = f"def f(x, d_x):\n    d_a = 2.0 * d_x[0] * x\n    {between}\n    d_b = 3.0 * d_a\n    return d_b\n"
    tree = ast.parse(source).body[0]
    assert ast.unparse(fold_scalings(tree, lambda name: name.startswith("d_"))) == ast.unparse(ast.parse(source).body[0])
    moved = source.replace(between, "y = x * 4.0")           # a plain assignment of another name
    assert "d_b = 6.0 * (d_x[0] * x)" in ast.unparse(fold_scalings(ast.parse(moved).body[0], lambda n: n.startswith("d_")))


def square(x):
    return x * x


def test_float32_code_keeps_its_own_numbers():
    x = np.array([1.0, 2.0, 3.0], np.float32)
    f = fwdad.forward_grad(square)
    value, tangent = f.jvp((x,), (np.ones(3, np.float32),))
    assert tangent.dtype == np.float32 and list(tangent) == [2.0, 4.0, 6.0]
    assert "2.0 * (" not in f.source_for(x)
    assert "2.0 * (d_x * x)" in f.source_for(x.astype(np.float64))
