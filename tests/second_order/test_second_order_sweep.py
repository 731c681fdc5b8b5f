"""Second derivatives of every row of the rule table: fwdad differentiates each rule's tangent
template again, so every template must itself be differentiable.

The forms are those of tests/test_rule_sweep.py (the first-order sweep), batched into a few
functions. `f.jvp2`'s second derivative is checked against central differences of `f.jvp`
along the same direction and, where JAX evaluates the form, against jax.jvp of jax.jvp. A form
whose tangent template fwdad cannot differentiate again must be refused with a clear error
(SECOND_ORDER_REFUSED), never give a number.
"""
import numpy as np
import pytest

import fwdad
from fwdad.errors import FwdadError
from test_rule_sweep import (LOOSE, OK_CASES, batch_module, inputs, jax, jax_namespace, statements,
                             write_module)

if jax is not None:
    import jax.numpy as jnp

# rules whose tangent code holds a helper fwdad cannot differentiate a second time
SECOND_ORDER_REFUSED = {   # a matrix norm with an ord: its tangent helper holds np.linalg.svd (for ord 2)
    f"np.linalg.norm(u - 0.5, {o})": "matrix_norm_jvp" for o in ("1", "-1", "2", "-2", "np.inf", "-np.inf")}
KINKS = ("floor", "ceil", "trunc", "rint", "round", "sign", "% ", "//", "int(", "copysign")
BATCH = 30
CASES = [c for c in OK_CASES if c[1] not in SECOND_ORDER_REFUSED]
BATCHES = [CASES[i:i + BATCH] for i in range(0, len(CASES), BATCH)]
FAST = {"np.tanh(x)", "x ** t", "np.linalg.norm(x, ord=1)", "np.linalg.solve(m, x[:3])", "np.prod(x)",
        "max(x)", "np.linalg.det(m)", "np.clip(x, s - 0.2, t + 0.3)", "np.cumprod(x)",
        "np.linalg.norm(x - 0.5, 3)", "s / x", "np.linalg.inv(m)"}
FAST_CASES = [c for c in CASES if c[1] in FAST]


def test_fast_forms_exist():
    assert len(FAST_CASES) == len(FAST)


def second_by_differences(function, args, tangents, h=1e-4):
    """d/dt of f.jvp at args + t v: central differences of the first derivative."""
    plus = [a + h * t for a, t in zip(args, tangents)]
    minus = [a - h * t for a, t in zip(args, tangents)]
    _, up = function.jvp(tuple(plus), tangents)
    _, down = function.jvp(tuple(minus), tangents)
    return [(np.asarray(u) - np.asarray(d)) / (2 * h) for u, d in zip(up, down)]


def jax_second(expression, args, tangents):
    """d^2/dt^2 of the expression at args + t v by JAX, or None where JAX cannot evaluate it."""
    if jax is None or expression.startswith("np.arange"):
        return None
    namespace = jax_namespace()

    def function(*values):
        scope = dict(zip(("x", "u", "m", "s", "t"), values))
        exec("\n".join(statements(expression, "r")), namespace, scope)
        return scope["r"]
    primals = tuple(jnp.asarray(a) for a in args)
    directions = tuple(jnp.asarray(t) for t in tangents)
    try:
        _, second = jax.jvp(lambda *p: jax.jvp(function, p, directions)[1], primals, directions)
    except Exception:           # noqa: BLE001 (not every expression exists in jax.numpy)
        return None
    second = np.asarray(second)
    return second if second.dtype.kind == "f" else None


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("second_order_sweep")


@pytest.mark.parametrize("batch", [pytest.param(-1, id="fast")] +
                         [pytest.param(b, marks=pytest.mark.slow) for b in range(len(BATCHES))])
def test_second_order_sweep(batch, sweep_dir):
    cases = FAST_CASES if batch < 0 else BATCHES[batch]
    module = batch_module(sweep_dir, f"second_batch_{batch + 1}", cases)
    args, tangents = inputs(batch + 7)
    f = fwdad.forward_grad(module.batch)
    value, first, second = f.jvp2(args, tangents)
    _, expected_first = f.jvp(args, tangents)
    differences = second_by_differences(f, args, tangents)
    jax_checked = 0
    for i, (_, expression, expect) in enumerate(cases):
        np.testing.assert_allclose(first[i], expected_first[i], rtol=1e-12, atol=1e-14, err_msg=expression)
        if expect == LOOSE:
            continue                     # a float32 cast: its second difference is rounding
        if any(k in expression for k in KINKS):
            atol = 1e-4                  # piecewise constant: zero away from the steps
        else:
            atol = 1e-5
        np.testing.assert_allclose(second[i], differences[i], rtol=1e-4, atol=atol, err_msg=expression)
        theirs = jax_second(expression, args, tangents)
        if theirs is not None:
            np.testing.assert_allclose(second[i], theirs, rtol=1e-8, atol=1e-9, err_msg=f"jax: {expression}")
            jax_checked += 1
    assert jax is None or jax_checked >= len(cases) // 3


@pytest.mark.parametrize("expression", sorted(SECOND_ORDER_REFUSED))
def test_second_order_refused(expression, sweep_dir):
    name = f"refused_{sorted(SECOND_ORDER_REFUSED).index(expression)}"
    module, _, _ = write_module(sweep_dir, name, [("f", [f"r = {expression}", "return r"])])
    f = fwdad.forward_grad(module.f)
    args, tangents = inputs(3)
    with pytest.raises(FwdadError) as raised:
        f.jvp2(args, tangents)
    assert "a second time" in str(raised.value) and "What to do:" in str(raised.value)
