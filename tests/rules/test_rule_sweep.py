"""Rule coverage sweep: every row of the rule table, called with the argument forms Numba accepts.

Each form is a Python expression (for the in-place rules, statements) over the arguments `x` (a
vector), `u` (a matrix), `m` (a well-conditioned matrix), `s` and `t` (scalars), all active and
inside every op's domain, and expects one of these outcomes:

* OK: fwdad's JVP equals central differences of the plain Python function, and `jax.jvp` of the
  same expression run with `jax.numpy` wherever JAX evaluates it;
* LOOSE: as OK, with a coarse central difference (a float32 cast: a fine one sees its rounding);
* ZERO: the tangent is exactly zero (the draws of `np.random.*` are constants);
* REFUSED: fwdad raises a FwdadError whose message starts at this file's line of the expression.

The forms that work are compiled together, a few dozen per function, so the sweep runs in the
default profile. `test_every_rule_is_swept` fails when a row is added to the table
(fwdad/transform/rules.py) without a form here.
"""
import ast
import importlib.util
import math

import numpy as np
import pytest

import fwdad
from fwdad.errors import FwdadError
from fwdad.transform import rules
from helpers import central_difference

try:
    import jax
    import jax.numpy as jnp
    import jax.scipy.special as jsp
    jax.config.update("jax_enable_x64", True)
except ImportError:          # the JAX oracle is optional
    jax = None

OK, LOOSE, ZERO, REFUSED = "ok", "loose", "zero", "refused"
PARAMETERS = "x, u, m, s, t"

UNARY = {   # ufunc or math function -> an argument expression in its domain, `{}` the operand
    "sin": "{}", "cos": "{}", "tan": "{}", "arcsin": "{}", "arccos": "{}", "arctan": "{}",
    "sinh": "{}", "cosh": "{}", "tanh": "{}", "arcsinh": "{}", "arccosh": "{} + 1.0",
    "arctanh": "{}", "exp": "{}", "exp2": "{}", "expm1": "{}", "log": "{}", "log1p": "{}",
    "log2": "{}", "log10": "{}", "sqrt": "{}", "cbrt": "{}", "square": "{}", "reciprocal": "{}",
    "negative": "{}", "floor": "{}", "ceil": "{}", "trunc": "{}", "rint": "{}", "sign": "{}",
    "abs": "{} - 0.5", "absolute": "{} - 0.5", "fabs": "{} - 0.5",
}
BINARY = ("arctan2", "power", "hypot", "copysign", "logaddexp", "maximum", "minimum", "fmax", "fmin")
MATH_NAMES = {"arcsin": "asin", "arccos": "acos", "arctan": "atan", "arcsinh": "asinh",
              "arccosh": "acosh", "arctanh": "atanh", "arctan2": "atan2", "power": "pow"}
MATH_UNARY = ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh",
              "acosh", "atanh", "exp", "expm1", "log1p", "log2", "log10", "sqrt", "erf", "erfc",
              "floor", "ceil", "trunc", "fabs")


def ufunc_forms(name):
    """A ufunc on a scalar, a vector and a matrix (binary: with broadcasting), and with out."""
    if name in UNARY:
        arg = UNARY[name]
        return [(f"np.{name}({arg.format(v)})", OK) for v in ("s", "x", "u")] + \
               [(f"np.{name}({arg.format('x')}, np.empty(4))", REFUSED)]
    return [(f"np.{name}(s, t)", OK), (f"np.{name}(x, t)", OK), (f"np.{name}(u, x[:3])", OK),
            (f"np.{name}(x, x[::-1])", OK), (f"np.{name}(x, s, np.empty(4))", REFUSED)]


def math_forms(name):
    arg = {"acosh": "{} + 1.0", "fabs": "{} - 0.5"}.get(name, "{}")
    scale = " * 1.0" if name in ("floor", "ceil", "trunc") else ""     # these return ints
    return [(f"math.{name}({arg.format('s')}){scale}", OK)]


FORMS = {}
for _name in list(UNARY) + list(BINARY):
    FORMS[getattr(np, _name)] = ufunc_forms(_name)
for _name in MATH_UNARY:
    FORMS[getattr(math, _name)] = math_forms(_name)
FORMS.update({
    math.atan2: [("math.atan2(s, t)", OK)], math.pow: [("math.pow(s, t)", OK)],
    math.hypot: [("math.hypot(s, t)", OK)], math.copysign: [("math.copysign(s, t - 0.5)", OK)],
    math.exp: [("math.exp(s)", OK)],
    math.log: [("math.log(s)", OK), ("math.log(s, t + 1.0)", OK)],
    np.log: ufunc_forms("log"),
    float: [("float(s)", OK)], int: [("int(s * 10.0) * 1.0", OK)], round: [("round(s * 10.0) * 1.0", OK)],
    np.float64: [("np.float64(s)", OK)], np.float32: [("np.float64(np.float32(s))", LOOSE)],
    np.round: [("np.round(x)", OK), ("np.round(x, 1)", OK), ("np.round(s)", OK)],
    abs: [("abs(s - 0.5)", OK)],
    max: [("max(s, t)", OK), ("max(s, t, 0.4)", OK), ("max(x)", OK), ("max((s, t, 0.4))", OK)],
    min: [("min(s, t)", OK), ("min(s, t, 0.4)", OK), ("min(x)", OK), ("min([s, t])", OK)],
    sum: [("sum(x)", OK), ("sum(x, s)", OK), ("sum((s, t))", OK), ("sum([x, x], s)", OK)],
    np.where: [("np.where(x > 0.5, x, s)", OK), ("np.where(u > 0.5, 2.0, u)", OK)],
    np.clip: [("np.clip(x, 0.3, 0.7)", OK), ("np.clip(x, s - 0.2, t + 0.3)", OK),
              ("np.clip(u, 0.3, 0.7)", OK), ("np.clip(x, 0.3, 0.7, np.empty(4))", REFUSED)],
    # allocation: a zero tangent unless filled with an active value
    # np.empty's memory is uninitialized (NaN * 0.0 is NaN): read its shape, never its values
    np.empty: [("np.empty(3).size * s", OK)], np.zeros: [("np.zeros(3)", OK), ("np.zeros((2, 3))", OK)],
    np.ones: [("np.ones(3)", OK)], np.empty_like: [("np.empty_like(x).size * x", OK)],
    np.zeros_like: [("np.zeros_like(x)", OK)], np.ones_like: [("np.ones_like(u)", OK)],
    np.eye: [("np.eye(3)", OK)], np.identity: [("np.identity(3)", OK)],
    np.full: [("np.full(3, s)", OK), ("np.full((2, 2), s)", OK), ("np.full(3, s, np.float64)", OK)],
    np.full_like: [("np.full_like(x, s)", OK), ("np.full_like(u, s)", OK), ("np.full_like(x * s, t)", OK)],
    np.linspace: [("np.linspace(s, t + 1.0, 5)", OK), ("np.linspace(s, t)", OK),
                  ("np.linspace(s, t, num=4)", OK), ("np.linspace(0.0, t, 3)", OK)],
    np.arange: [("np.arange(s, s + 3.0, 1.0)", OK), ("np.arange(s, 4.0)", OK), ("np.arange(s, 4.0, 1.0, np.float64)", REFUSED),
                ("np.arange(0.0, 3.0, t)", OK), ("np.arange(s, 5.0, t)", OK), ("np.arange(s * 4.0) * 1.0", OK)],
    # reductions
    np.sum: [("np.sum(x)", OK), ("np.sum(u, 0)", OK), ("np.sum(u, axis=1)", OK)],
    np.cumsum: [("np.cumsum(x)", OK), ("np.cumsum(u, axis=0)", OK)],
    np.mean: [("np.mean(x)", OK), ("np.mean(u)", OK), ("np.mean(u, 0)", REFUSED)],
    np.max: [("np.max(x)", OK), ("np.max(u)", OK), ("np.max(u, 0)", REFUSED), ("np.max(u, axis=1)", REFUSED)],
    np.min: [("np.min(x)", OK), ("np.min(u, axis=0)", REFUSED)],
    np.amax: [("np.amax(u)", OK)], np.amin: [("np.amin(x)", OK)],
    np.prod: [("np.prod(x)", OK), ("np.prod(u)", OK), ("np.prod(u, 0)", REFUSED)],
    np.cumprod: [("np.cumprod(x)", OK), ("np.cumprod(u)", OK)],
    np.trace: [("np.trace(u)", OK)],
    np.linalg.norm: [("np.linalg.norm(x)", OK), ("np.linalg.norm(u)", OK), ("np.linalg.norm(x, None)", OK),
                     ("np.linalg.norm(x, s)", REFUSED), ("np.linalg.norm(x, 1, 0)", REFUSED)] +
                    [(f"np.linalg.norm(x - 0.5, {o})", OK) for o in ("1", "2", "3", "0.5", "np.inf", "-np.inf", "0")] +
                    [(f"np.linalg.norm(x, ord={o})", OK) for o in ("1", "np.inf")] +
                    [(f"np.linalg.norm(u - 0.5, {o})", OK) for o in ("1", "-1", "2", "-2", "np.inf", "-np.inf")] +
                    [("np.linalg.norm(u, ord=None)", OK)],
    # products and linear algebra
    np.dot: [("np.dot(x, x)", OK), ("np.dot(u, x[:3])", OK), ("np.dot(u, m)", OK)],
    np.matmul: [("np.matmul(u, m)", REFUSED)],         # Numba 0.68 has no np.matmul: its error, at the line
    np.outer: [("np.outer(x, x[:3])", OK)],
    np.linalg.solve: [("np.linalg.solve(m, x[:3])", OK), ("np.linalg.solve(m, u)", OK)],
    np.linalg.inv: [("np.linalg.inv(m)", OK)], np.linalg.det: [("np.linalg.det(m)", OK)],
    # shape and copies: linear
    np.transpose: [("np.transpose(u)", OK), ("np.transpose(u, (1, 0))", OK)],
    np.reshape: [("np.reshape(x, (2, 2))", OK)], np.ravel: [("np.ravel(u)", OK)],
    np.squeeze: [("np.squeeze(np.reshape(x, (1, 4)))", REFUSED)],    # Numba 0.68 has no np.squeeze
    np.copy: [("np.copy(x)", OK)], np.ascontiguousarray: [("np.ascontiguousarray(u.T)", OK)],
    np.asarray: [("np.asarray(x)", OK)], np.atleast_1d: [("np.atleast_1d(x)", OK)],
    np.atleast_2d: [("np.atleast_2d(x)", OK)], np.expand_dims: [("np.expand_dims(x, 0)", OK)],
    np.diag: [("np.diag(u)", OK), ("np.diag(x)", OK), ("np.diag(u, 1)", OK)],
    np.swapaxes: [("np.swapaxes(u, 0, 1)", OK)],
    np.negative: ufunc_forms("negative"),
    np.roll: [("np.roll(x, 1)", OK), ("np.roll(u, -2)", OK)],
    np.diff: [("np.diff(x)", OK), ("np.diff(x, 2)", OK), ("np.diff(u)", OK)],
    np.array: [("np.array([s, t, 1.0])", OK), ("np.array((s, t))", OK), ("np.array([[s, t], [t, 1.0]])", OK),
               ("np.array(x)", REFUSED)],        # Numba 0.68: no np.array of an array
    np.concatenate: [("np.concatenate((x, x[:2]))", OK), ("np.concatenate((u, m), axis=1)", OK),
                     ("np.concatenate((u, m), 0)", OK)],
    np.stack: [("np.stack((x, x))", OK), ("np.stack((u, m), axis=1)", OK)],
    np.vstack: [("np.vstack((u, m))", OK)], np.hstack: [("np.hstack((x, x[:2]))", OK)],
    # np.random inside the function: the draws are constants; choice/permutation return x's entries
    np.random.random: [("np.random.random(3)", ZERO)], np.random.rand: [("np.random.rand(3)", ZERO)],
    np.random.randn: [("np.random.randn(3)", ZERO)],
    np.random.normal: [("np.random.normal(s, t)", ZERO)], np.random.uniform: [("np.random.uniform(s, s + t)", ZERO)],
    np.random.standard_normal: [("np.random.standard_normal(3)", ZERO)],
    np.random.randint: [("np.random.randint(0, 3) * 1.0", ZERO)],
    np.random.exponential: [("np.random.exponential(s)", ZERO)], np.random.gamma: [("np.random.gamma(s)", ZERO)],
    np.random.beta: [("np.random.beta(s, t)", ZERO)], np.random.binomial: [("np.random.binomial(5, s) * 1.0", ZERO)],
    np.random.poisson: [("np.random.poisson(s) * 1.0", ZERO)],
    np.random.choice: [("np.random.choice(x)", REFUSED)], np.random.permutation: [("np.random.permutation(x)", REFUSED)],
    np.random.shuffle: [("np.random.shuffle(x)", REFUSED)],
    # methods
    ".copy": [("x.copy()", OK)], ".T": [("u.T", OK)], ".sum": [("u.sum()", OK), ("u.sum(axis=0)", OK), ("u.sum(1)", OK)],
    ".reshape": [("x.reshape((2, 2))", OK), ("x.reshape(2, 2)", OK)], ".ravel": [("u.ravel()", OK)],
    ".flatten": [("u.flatten()", OK)], ".transpose": [("u.transpose()", OK)],
    ".astype": [("x.astype(np.float64)", OK)], ".cumsum": [("x.cumsum()", OK)],
    ".squeeze": [("x.reshape((1, 4)).squeeze()", REFUSED)],      # Numba 0.68 lacks .squeeze(): its error
    ".mean": [("u.mean()", OK), ("u.mean(0)", REFUSED)],
    ".max": [("u.max()", OK), ("u.max(axis=0)", REFUSED)], ".min": [("x.min()", OK), ("u.min(1)", REFUSED)],
    ".prod": [("x.prod()", OK), ("u.prod(0)", REFUSED)], ".dot": [("x.dot(x)", OK), ("u.dot(x[:3])", OK)],
    # operators
    ast.Add: [("x + s", OK), ("u + x[:3]", OK)], ast.Sub: [("s - x", OK)], ast.Mult: [("x[:3] * u[0]", OK)],
    ast.Div: [("s / x", OK), ("x / t", OK)], ast.Pow: [("x ** t", OK), ("s ** 2", OK), ("x ** x", OK)],
    ast.Mod: [("x % 0.3", OK), ("s % t", OK)], ast.MatMult: [("u @ m", OK), ("u @ x[:3]", OK)],
    ast.FloorDiv: [("(x // 0.3) * 1.0", OK)], ast.USub: [("-x", OK)], ast.UAdd: [("+s", OK)],
    # in-place updates (rules.IN_PLACE): `{r}` is the result's name, statements split by "; "
    (ast.Add, "in place"): [("{r} = x * 1.0; {r} += s", OK), ("{r} = s * 1.0; {r} += t", OK)],
    (ast.Sub, "in place"): [("{r} = u * 1.0; {r} -= x[:3]", OK)],
    (ast.Mult, "in place"): [("{r} = x * 1.0; {r} *= x", OK), ("{r} = s * 1.0; {r} *= t", OK)],
    (ast.Div, "in place"): [("{r} = x * 1.0; {r} /= s", OK), ("{r} = s * 1.0; {r} /= t", OK)],
    (ast.Pow, "in place"): [("{r} = x * 1.0; {r} **= t", OK), ("{r} = s * 1.0; {r} **= t", OK)],
    # fwdad's layers (activity perturbation; the noise itself: tests/training/test_activity.py)
    fwdad.layers.stop_gradient: [("fwdad.stop_gradient(x)", ZERO), ("fwdad.stop_gradient(s * t)", ZERO)],
    fwdad.layers.dense: [("fwdad.dense(u, m, x[:3])", OK), ("fwdad.dense(x[:3], m, s)", OK),
                         ("fwdad.dense(u, m, x[:3], 1)", OK), ("fwdad.dense(u, m, x[:3], loss=2, groups=3)", OK)],
    fwdad.layers.dense_relu: [("fwdad.dense_relu(u - 0.5, m, x[:3] - 0.5)", OK),
                              ("fwdad.dense_relu(u, m, x[:3], groups=2)", OK)],
    fwdad.layers.inject: [("fwdad.layers.inject(u, 0.0, 3)", OK)],           # an inactive eps: no noise
    fwdad.layers.inject_active: [("fwdad.layers.inject_active(x - 0.5, 0.0, 3)", OK)],
})


def table_entries():
    return set(rules.FUNCTIONS) | set(rules.METHODS) | set(rules.OPERATORS) | \
        {(op, "in place") for op in rules.IN_PLACE}


def statements(expression, result):
    """The body lines computing `result` by the form `expression`."""
    if "{r}" in expression:
        return expression.format(r=result).split("; ")
    return [f"{result} = {expression}"]


def test_every_rule_is_swept():
    missing = [getattr(e, "__name__", e) for e in table_entries() if e not in FORMS]
    assert not missing, f"add sweep forms (tests/rules/test_rule_sweep.py) for these rules: {missing}"
    assert all(FORMS[e] for e in table_entries())


CASES = [(entry, expression, expect) for entry, forms in FORMS.items() for expression, expect in forms]
BATCH = 40


def write_module(directory, name, functions):
    """A real file (fwdad reads the source) with one function per (name, body lines)."""
    lines = ["import math", "import numpy as np", "import fwdad", ""]
    where = {}
    for function, body in functions:
        lines.append(f"def {function}({PARAMETERS}):")
        for statement in body:
            where.setdefault(function, len(lines) + 1)
            lines.append(f"    {statement}")
        lines.append("")
    path = directory / f"{name}.py"
    path.write_text("\n".join(lines) + "\n")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, str(path), where


def batch_module(directory, name, cases):
    """A module whose function `batch` computes every case's expression, returned as a tuple."""
    body = [line for i, (_, expression, _) in enumerate(cases) for line in statements(expression, f"r{i}")]
    body.append("return (" + ", ".join(f"r{i}" for i in range(len(cases))) + ",)")
    return write_module(directory, name, [("batch", body)])[0]


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    args = (rng.uniform(0.2, 0.8, 4), rng.uniform(0.2, 0.8, (3, 3)),
            rng.normal(size=(3, 3)) * 0.3 + 2.0 * np.eye(3), float(rng.uniform(0.2, 0.8)),
            float(rng.uniform(0.2, 0.8)))
    tangents = tuple(rng.normal(size=np.shape(a)) if np.ndim(a) else float(rng.normal()) for a in args)
    return args, tangents


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("rule_sweep")


OK_CASES = [c for c in CASES if c[2] in (OK, LOOSE)]
BATCHES = [OK_CASES[i:i + BATCH] for i in range(0, len(OK_CASES), BATCH)]


def python_function(expression):
    """The expression alone as a plain Python function of the sweep's arguments."""
    return lambda *values: eval(expression, {"np": np, "math": math, "fwdad": fwdad},
                                dict(zip(("x", "u", "m", "s", "t"), values)))


def jax_namespace():
    """The expression's names bound to JAX: np -> jax.numpy, math.* -> their jax.numpy forms."""
    class JaxMath:
        def __getattr__(self, name):
            if name in ("erf", "erfc"):
                return getattr(jsp, name)
            if name == "log":
                return lambda v, base=None: jnp.log(v) if base is None else jnp.log(v) / jnp.log(base)
            return getattr(jnp, {"asin": "arcsin", "acos": "arccos", "atan": "arctan", "asinh": "arcsinh",
                                 "acosh": "arccosh", "atanh": "arctanh", "atan2": "arctan2", "pow": "power",
                                 "fabs": "abs"}.get(name, name))
    class JaxLayers:            # fwdad's layers, as JAX writes them (its own stop_gradient)
        stop_gradient = staticmethod(jax.lax.stop_gradient)
        dense = staticmethod(lambda x, W, b, loss=0, groups=1: x @ W + b)
        dense_relu = staticmethod(lambda x, W, b, loss=0, groups=1: jnp.maximum(x @ W + b, 0.0))
        inject = inject_active = staticmethod(lambda z, eps, key: z)
    JaxLayers.layers = JaxLayers
    return {"np": jnp, "math": JaxMath(), "float": lambda v: v, "fwdad": JaxLayers}


def jax_tangent(expression, args, tangents):
    """jax.jvp of the expression, or None where JAX cannot evaluate it (builtins, np.random, ...)."""
    if jax is None or expression.startswith("np.arange"):    # jnp.arange gives traced bounds a zero tangent
        return None
    namespace = jax_namespace()

    def function(*values):
        scope = dict(zip(("x", "u", "m", "s", "t"), values))
        exec("\n".join(statements(expression, "r")), namespace, scope)     # jax arrays: `r += s` rebinds r
        return scope["r"]
    try:
        _, tangent = jax.jvp(function, tuple(jnp.asarray(a) for a in args), tuple(jnp.asarray(t) for t in tangents))
    except Exception:           # noqa: BLE001 (not every expression exists in jax.numpy)
        return None
    tangent = np.asarray(tangent)
    return tangent if tangent.dtype.kind == "f" else None


# the default profile runs these forms (the rules issue 13 found wrong); the slow profile runs all
FAST = {"np.linalg.norm(x, ord=1)", "np.linalg.norm(u - 0.5, -np.inf)", "max(x)", "sum(x, s)",
        "np.arange(s, 5.0, t)", "np.array([[s, t], [t, 1.0]])"}
FAST_CASES = [c for c in OK_CASES if c[1] in FAST]


def test_fast_forms_exist():
    assert len(FAST_CASES) == len(FAST)


@pytest.mark.parametrize("batch", [pytest.param(-1, id="fast")] +
                         [pytest.param(b, marks=pytest.mark.slow) for b in range(len(BATCHES))])
def test_sweep_batch(batch, sweep_dir):
    cases = FAST_CASES if batch < 0 else BATCHES[batch]
    module = batch_module(sweep_dir, f"sweep_batch_{batch + 1}", cases)
    args, tangents = inputs(batch + 1)
    value, tangent = fwdad.jvp(module.batch, args, tangents)
    expected = module.batch(*args)
    differences = central_difference(module.batch, args, tangents)
    jax_checked = 0
    for i, (entry, expression, expect) in enumerate(cases):
        np.testing.assert_allclose(value[i], expected[i], rtol=1e-10, atol=1e-12, err_msg=expression)
        if expect == OK:
            np.testing.assert_allclose(tangent[i], differences[i], rtol=1e-5, atol=1e-7, err_msg=expression)
        else:                           # a step far above float32 rounding
            coarse = central_difference(python_function(expression), args, tangents, h=1e-2)
            np.testing.assert_allclose(tangent[i], coarse, rtol=1e-4, atol=1e-6, err_msg=expression)
        theirs = jax_tangent(expression, args, tangents)
        if theirs is not None:
            rtol = 1e-8 if expect == OK else 1e-6          # JAX rounds the float32 cast's tangent too
            np.testing.assert_allclose(tangent[i], theirs, rtol=rtol, atol=1e-10, err_msg=f"jax: {expression}")
            jax_checked += 1
    assert jax is None or jax_checked >= len(cases) // 2


ZERO_CASES = [c for c in CASES if c[2] == ZERO]


@pytest.mark.slow
def test_sweep_constant_draws(sweep_dir):
    body = [f"r{i} = {expression}" for i, (_, expression, _) in enumerate(ZERO_CASES)]
    body.append("return (" + ", ".join(f"r{i}" for i in range(len(ZERO_CASES))) + ",)")
    module, _, _ = write_module(sweep_dir, "sweep_draws", [("draws", body)])
    args, tangents = inputs()
    _, tangent = fwdad.jvp(module.draws, args, tangents)
    for (_, expression, _), item in zip(ZERO_CASES, tangent):
        assert np.all(np.asarray(item) == 0.0), expression


REFUSED_CASES = [c for c in CASES if c[2] == REFUSED]


@pytest.fixture(scope="module")
def refused_module(sweep_dir):
    functions = [(f"refused_{i}", [f"r = {expression}" if "shuffle" not in expression else expression,
                                   "return x" if "shuffle" in expression else "return r"])
                 for i, (_, expression, _) in enumerate(REFUSED_CASES)]
    return write_module(sweep_dir, "sweep_refused", functions)


def refused_marks(expression):
    """The 30-odd `out` forms of the ufuncs are alike: the default profile runs three of them."""
    if ", np.empty(4))" in expression and not expression.startswith(("np.sin(", "np.maximum(", "np.floor(")):
        return (pytest.mark.slow,)
    return ()


@pytest.mark.parametrize("index", [pytest.param(i, id=e, marks=refused_marks(e))
                                   for i, (_, e, _) in enumerate(REFUSED_CASES)])
def test_sweep_refused(index, refused_module):
    module, path, where = refused_module
    name = f"refused_{index}"
    args, tangents = inputs()
    with pytest.raises(FwdadError) as raised:
        fwdad.jvp(getattr(module, name), args, tangents)
    first_line = str(raised.value).splitlines()[0]
    assert first_line.endswith(f"{path}:{where[name]}"), str(raised.value)
    assert "What to do:" in str(raised.value)
