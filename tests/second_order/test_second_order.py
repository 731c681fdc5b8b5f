"""Second derivatives (forward over forward): f.jvp2, f.hvp, f.hessian, and fwdad functions
nested in each other through tangent_njit, checked against central differences and JAX.

Includes the known failures of other tools: ForwardDiff.jl's perturbation confusion (its
issues #83 and #313), google/tangent's Hessian-vector product through a helper call (its
issue #84), and nested forward mode through a function with a custom rule (zeros in PyTorch).
"""
import math
import types

import numpy as np
import pytest

import corpus_arrays
import corpus_scalar
import fwdad
from fwdad.errors import FwdadError, OptionError, TangentMismatchError
from helpers import is_float, random_tangent

try:
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
except ImportError:
    jax = None


# ---- programs -------------------------------------------------------------------------------------
def rosenbrock(x):
    s = 0.0
    for i in range(x.shape[0] - 1):
        s += 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    return s


def energy(x, k):
    """A helper call inside (google/tangent #84 broke on exactly this)."""
    return k * spring(x) + np.sum(np.sin(x) * x)


def spring(x):
    return np.sum((x[1:] - x[:-1]) ** 2) + x[0] ** 4


def plus(x, y):
    return x + y


def times(x, y):
    return x * y


def cube(x):
    return x * x * x


plus_f = fwdad.forward_grad(plus)
plus_tangent = plus_f.tangent_njit
times_tangent = fwdad.forward_grad(times).tangent_njit
cube_tangent = fwdad.forward_grad(cube).tangent_njit


def confusion_83(x):
    """d/dx [x * d/dy (x + y)] at y = 1: the inner derivative is 1 at every x; the answer is 1."""
    _, dy = plus_tangent(x, 1.0, None, 1.0)
    return x * dy


def confusion_same_variable(x):
    """d/dx [x * d/dx (x * y)|_{y=x}]: inner derivative y = x, so x * x, derivative 2x."""
    _, inner = times_tangent(x, x, 1.0, None)
    return x * inner


def derivative_of_cube(x):
    """The derivative computed by fwdad inside differentiated code: 3x^2; its derivative 6x."""
    _, d = cube_tangent(x, 1.0)
    return d


def squashed(x):
    return my_softplus(x) * x


def my_softplus(x):
    return math.log(1.0 + math.exp(x))


@fwdad.defjvp(my_softplus)
def my_softplus_rule(x, dx):
    return my_softplus(x), dx / (1.0 + math.exp(-x))


def vector_output(x):
    return np.sin(x) * x


def weighted(x, w, n):
    return np.sum(w * x ** 3) * n


def scalar_pair(a, b):
    return a ** 3 * b + math.sin(a * b)


def float32_loss(x):
    return np.sum(np.tanh(x) * x)


ROSEN = fwdad.forward_grad(rosenbrock)
ENERGY = fwdad.forward_grad(energy)
WEIGHTED_X = fwdad.forward_grad(weighted, wrt="x")


def jax_rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def jax_energy(x, k):
    return k * (jnp.sum((x[1:] - x[:-1]) ** 2) + x[0] ** 4) + jnp.sum(jnp.sin(x) * x)


def gradient_by_differences(f, args, i, h=1e-5):
    """The gradient's Jacobian row by row: central differences of value_and_grad."""
    x = np.asarray(args[i], float)
    columns = []
    for j in range(x.size):
        step = np.zeros(x.size)
        step[j] = h
        up = list(args)
        down = list(args)
        up[i] = (x.ravel() + step).reshape(x.shape)
        down[i] = (x.ravel() - step).reshape(x.shape)
        columns.append((f.value_and_grad(*up)[1][i] - f.value_and_grad(*down)[1][i]).ravel() / (2 * h))
    return np.array(columns).T


# ---- jvp2, hvp, hessian ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def point():
    rng = np.random.default_rng(4)
    return rng.uniform(-1.0, 1.5, 6), rng.normal(size=6)


def test_jvp2_rosenbrock_matches_jax(point):
    x, v = point
    value, first, second = ROSEN.jvp2((x,), (v,))
    assert value == pytest.approx(rosenbrock(x), rel=1e-14)
    assert first == pytest.approx(ROSEN.jvp((x,), (v,))[1], rel=1e-14)
    if jax is not None:
        expected = jax.jvp(lambda p: jax.jvp(jax_rosenbrock, (p,), (v,))[1], (x,), (v,))[1]
        assert second == pytest.approx(float(expected), rel=1e-12)


def test_hessian_and_hvp_rosenbrock(point):
    x, v = point
    H = ROSEN.hessian(x)[0][0]
    assert H.shape == (6, 6)
    np.testing.assert_allclose(H, H.T, rtol=1e-13, atol=1e-11)
    np.testing.assert_allclose(H, gradient_by_differences(ROSEN, (x,), 0), rtol=1e-6, atol=1e-5)
    if jax is not None:
        np.testing.assert_allclose(H, jax.hessian(jax_rosenbrock)(x), rtol=1e-12, atol=1e-10)
    (product,) = ROSEN.hvp((x,), (v,))
    np.testing.assert_allclose(product, H @ v, rtol=1e-12, atol=1e-10)


def test_hessian_through_a_helper_call(point):
    """google/tangent #84: Hessian-vector products broke once the function called another."""
    x, v = point
    blocks = ENERGY.hessian(x, 0.7)
    Hxx, Hxk, Hkk = blocks[0][0], blocks[0][1], blocks[1][1]
    assert Hxx.shape == (6, 6) and Hxk.shape == (6,) and isinstance(Hkk, float) and Hkk == 0.0
    np.testing.assert_allclose(blocks[1][0], Hxk)
    if jax is not None:
        H = jax.hessian(jax_energy, argnums=(0, 1))(x, 0.7)
        np.testing.assert_allclose(Hxx, H[0][0], rtol=1e-12, atol=1e-10)
        np.testing.assert_allclose(Hxk, H[0][1], rtol=1e-12, atol=1e-10)
    px, pk = ENERGY.hvp((x, 0.7), (v, 0.5))
    np.testing.assert_allclose(px, Hxx @ v + Hxk * 0.5, rtol=1e-12, atol=1e-10)
    assert pk == pytest.approx(Hxk @ v, rel=1e-12)


def test_wrt_is_honoured(point):
    x, v = point
    w = np.linspace(0.5, 1.5, 6)
    blocks = WEIGHTED_X.hessian(x, w, 3)
    assert blocks[1] is None and blocks[2] is None and blocks[0][1] is None
    np.testing.assert_allclose(blocks[0][0], np.diag(18.0 * w * x), rtol=1e-13)
    (product, none_w, none_n) = WEIGHTED_X.hvp((x, w, 3), (v, None, None))
    np.testing.assert_allclose(product, 18.0 * w * x * v, rtol=1e-13)
    assert none_w is None and none_n is None


def test_float32():
    f = fwdad.forward_grad(float32_loss)
    x = np.linspace(-1, 1, 5).astype(np.float32)
    H = f.hessian(x)[0][0]
    expected = np.diag(2 * (1 - np.tanh(x.astype(float)) ** 2) * (1 - x * np.tanh(x.astype(float))))
    np.testing.assert_allclose(H, expected, rtol=1e-5, atol=1e-6)
    value, first, second = f.jvp2((x,), (np.ones(5, np.float32),))
    assert type(second) is type(first) and second == pytest.approx(float(np.sum(expected)), rel=1e-5)


# ---- nesting in user code: no perturbation confusion -----------------------------------------------
def test_perturbation_confusion_83():
    f = fwdad.forward_grad(confusion_83)
    for x in (0.0, 1.0, 2.5):
        assert f(x) == x
        assert f.jvp((x,), (1.0,))[1] == 1.0            # 2.0 with confused perturbations


def test_perturbation_confusion_same_variable():
    f = fwdad.forward_grad(confusion_same_variable)
    assert f(1.5) == pytest.approx(2.25)
    assert f.jvp((1.5,), (1.0,))[1] == pytest.approx(3.0)


def test_nested_derivative_is_the_second_derivative():
    f = fwdad.forward_grad(derivative_of_cube)
    assert f(2.0) == pytest.approx(12.0)
    assert f.jvp((2.0,), (1.0,))[1] == pytest.approx(12.0)
    _, first, second = f.jvp2((2.0,), (1.0,))                 # third order: d^3/dx^3 x^3 = 6
    assert first == pytest.approx(12.0) and second == pytest.approx(6.0)


def test_custom_rule_is_differentiated_again():
    """Nested forward mode through a function with a user rule: PyTorch returned zeros here.
    fwdad reads the rule's source, so the second derivative comes from the rule's own code."""
    f = fwdad.forward_grad(squashed)
    x = 0.3
    s = 1.0 / (1.0 + math.exp(-x))
    expected = 2 * s + x * s * (1 - s)          # (softplus(x) x)'' = 2 sigmoid + x sigmoid'
    _, _, second = f.jvp2((x,), (1.0,))
    assert second == pytest.approx(expected, rel=1e-12)
    assert f.hessian(x)[0][0] == pytest.approx(expected, rel=1e-12)


# ---- the corpora -----------------------------------------------------------------------------------
SKIP = {"mutates_input": "writes its argument: central differences of the JVP see the writes",
        "float32_code": "float32: checked by test_float32", "float32_relu_layer": "float32"}
REFUSED = {"matrix_methods": "u.max(): fine; the matrix 2-norm's helper uses np.linalg.svd"}


def second_by_differences(f, args, tangents, h=1e-4):
    plus_args = [a + h * t if t is not None else a for a, t in zip(args, tangents)]
    minus_args = [a - h * t if t is not None else a for a, t in zip(args, tangents)]
    up = f.jvp(tuple(plus_args), tuple(tangents))[1]
    down = f.jvp(tuple(minus_args), tuple(tangents))[1]
    if isinstance(up, tuple):
        return tuple(None if u is None else (np.asarray(u) - np.asarray(d)) / (2 * h) for u, d in zip(up, down))
    return (np.asarray(up) - np.asarray(down)) / (2 * h)


CORPUS = [pytest.param(function, make_args, id=function.__name__,
                       marks=(pytest.mark.slow,) if function.__name__ not in ("rosenbrock", "heat_equation_slices",
                                                                             "helper_loop", "mlp_softmax_cross_entropy")
                       else ())
          for function, make_args in corpus_scalar.CASES + corpus_arrays.CASES
          if function.__name__ not in SKIP]


@pytest.mark.parametrize("function, make_args", CORPUS)
def test_corpus_jvp2(function, make_args):
    rng = np.random.default_rng(11)
    args = make_args(rng)
    tangents = [random_tangent(a, rng) if is_float(a) else None for a in args]
    f = fwdad.forward_grad(function)
    copies = lambda: tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)
    if function.__name__ in REFUSED:
        try:
            f.jvp2(copies(), tuple(tangents))
        except FwdadError as error:
            assert "a second time" in str(error) and "What to do:" in str(error)
            return
    value, first, second = f.jvp2(copies(), tuple(tangents))
    expected = second_by_differences(f, copies(), tangents)
    leaves = zip(second, expected) if isinstance(second, tuple) else [(second, expected)]
    for got, want in leaves:
        if got is not None:
            np.testing.assert_allclose(np.asarray(got, float), want, rtol=2e-4, atol=2e-5)


# ---- bad input -----------------------------------------------------------------------------------
def test_hessian_of_a_vector_output_is_refused():
    f = fwdad.forward_grad(vector_output)
    with pytest.raises(FwdadError, match="returns a float scalar"):
        f.hessian(np.ones(3))
    _, _, second = f.jvp2((np.ones(3),), (np.ones(3),))       # jvp2 takes vector outputs
    np.testing.assert_allclose(second, 2 * np.cos(1.0) - np.sin(1.0) * np.ones(3), rtol=1e-13)


def test_options_are_checked(point):
    x, v = point
    with pytest.raises(OptionError, match="sparse"):
        ROSEN.hessian(x, sparse="yes")
    with pytest.raises(TangentMismatchError, match="shape"):
        ROSEN.hvp((x,), (v[:3],))
    with pytest.raises(TangentMismatchError, match="differentiated"):
        WEIGHTED_X.hvp((x, x, 3), (v, v, None))
    with pytest.raises(TangentMismatchError):
        ROSEN.jvp2((x,), (v, v))


def test_function_with_a_rule_is_refused():
    f = fwdad.forward_grad(my_softplus)
    with pytest.raises(FwdadError, match="defjvp rule"):
        f.hessian(0.3)


def test_inputs_are_not_modified(point):
    x, v = point
    x0, v0 = x.copy(), v.copy()
    ROSEN.jvp2((x,), (v,))
    ROSEN.hvp((x,), (v,))
    ROSEN.hessian(x)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(v, v0)


def shadowing(k, n, np_, gradient, seed_k):
    """Parameters named like the generated wrappers' locals (k, n, gradient, seed_k)."""
    return k ** 3 * n + gradient * seed_k ** 2 + np_


def test_parameter_names_never_clash_with_generated_names():
    f = fwdad.forward_grad(shadowing)
    args = (1.5, 2.0, 0.5, 3.0, 0.7)
    H = f.hessian(*args)
    expected = np.zeros((5, 5))
    expected[0, 0], expected[0, 1] = 6 * 1.5 * 2.0, 3 * 1.5 ** 2
    expected[1, 0] = expected[0, 1]
    expected[3, 4] = expected[4, 3] = 2 * 0.7
    expected[4, 4] = 2 * 3.0
    np.testing.assert_allclose(np.array([[H[i][j] for j in range(5)] for i in range(5)]), expected, rtol=1e-13)
    product = f.hvp(args, (1.0, 0.0, 0.0, 0.0, 1.0))
    np.testing.assert_allclose(product, expected @ [1.0, 0, 0, 0, 1.0], rtol=1e-13)


def test_newton_calibration_example():
    """examples/newton_calibration.py --quick: Newton on fwdad's Hessian reaches scipy's minimum."""
    import os
    import sys
    examples = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            "examples")
    sys.path.insert(0, examples)
    try:
        import newton_calibration
    finally:
        sys.path.remove(examples)
    rows = newton_calibration.run(quick=True)
    newton_theta, trust_theta = rows[0][3], rows[1][3]
    np.testing.assert_allclose(newton_theta, trust_theta, rtol=1e-6)
    assert rows[0][1] <= 10                   # Newton: quadratic convergence, a handful of steps


JAX_SCALAR = ["mlp_softmax_cross_entropy", "least_squares_residual", "linear_solve_energy",
              "batch_norm_columns", "log_likelihood", "products", "recurrent_unroll", "outer_and_norm"]


@pytest.mark.skipif(jax is None, reason="the JAX oracle")
@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n == "least_squares_residual" else (pytest.mark.slow,))
                                  for n in JAX_SCALAR])
def test_corpus_hessian_matches_jax(name):
    """Every scalar-valued, JAX-compatible program of the array corpus: f.hessian == jax.hessian."""
    function, make_args = next(c for c in corpus_arrays.CASES if c[0].__name__ == name)
    args = make_args(np.random.default_rng(5))
    active = [i for i, a in enumerate(args) if is_float(a)]
    f = fwdad.forward_grad(function)
    if np.ndim(f(*args)) != 0:
        pytest.skip("not scalar-valued")
    blocks = f.hessian(*args)
    jax_function = types.FunctionType(function.__code__, dict(function.__globals__, np=jnp))

    def closed(*xs):
        full = list(args)
        for i, x in zip(active, xs):
            full[i] = x
        return jax_function(*full)
    expected = jax.hessian(closed, argnums=tuple(range(len(active))))(*(jnp.asarray(args[i]) for i in active))
    for a, i in enumerate(active):
        for b, j in enumerate(active):
            np.testing.assert_allclose(blocks[i][j], np.asarray(expected[a][b]), rtol=1e-8, atol=1e-9,
                                       err_msg=f"{name} H[{i}][{j}]")


def test_sparse_hessian(point):
    """sparsity=P: a CSR matrix equal to the dense Hessian; a given pattern that misses an entry is
    refused, never folded in; sparse=True finds the pattern (tests/second_order/test_hessian_sparsity.py)."""
    from scipy import sparse
    x = np.linspace(-1.0, 1.0, 12)
    dense = ROSEN.hessian(x)[0][0]
    np.testing.assert_allclose(ROSEN.hessian(x, sparse=True).toarray(), dense, rtol=1e-13, atol=1e-10)
    band = sparse.diags([np.ones(11), np.ones(12), np.ones(11)], [-1, 0, 1]).tocsr().astype(bool)
    given = ROSEN.hessian(x, sparsity=band)
    assert sparse.issparse(given) and given.shape == (12, 12)
    np.testing.assert_allclose(given.toarray(), dense, rtol=1e-13, atol=1e-10)
    diagonal = sparse.identity(12, format="csr").astype(bool)
    with pytest.raises(FwdadError):
        ROSEN.hessian(x, sparsity=diagonal)


# ---- found by the outside-user trial ---------------------------------------------------------------
def quad(a, x, b):
    return a * a * b + np.sum(x * x) * a + b ** 3


def writer(x, s):
    x[0] = x[0] * 2.0
    return np.sum(x * x) * s + x[0] * x[1] ** 2


def norm_one(A):
    return np.linalg.norm(A, 1)


def pair(x, y):
    return x * y, y


def test_hvp_with_wrt_skipping_an_earlier_argument():
    """hvp's entries landed on the wrong arguments (NaN, or a crash) when wrt skipped one."""
    a, x, b = 0.5, np.array([1.0, 2.0]), 2.0
    v = np.array([1.0, -1.0])
    (none_a, px, none_b) = fwdad.forward_grad(quad, wrt="x").hvp((a, x, b), (None, v, None))
    assert none_a is None and none_b is None
    np.testing.assert_allclose(px, 2 * a * v, rtol=1e-14)
    (none_a, px, pb) = fwdad.forward_grad(quad, wrt=(2, "x")).hvp((a, x, b), (None, v, 0.5))
    np.testing.assert_allclose(px, 2 * a * v, rtol=1e-14)
    assert none_a is None and pb == pytest.approx(6 * b * 0.5, rel=1e-14)


def test_hessian_of_a_function_writing_its_argument():
    """Each row is computed at the caller's point; afterwards the argument holds what one call leaves."""
    x0 = np.array([1.0, 2.0, 0.5])
    x = x0.copy()
    H = fwdad.forward_grad(writer, wrt="x").hessian(x, 1.5)[0][0]
    once = x0.copy()
    writer(once, 1.5)
    np.testing.assert_array_equal(x, once)
    # f(x) = s (4 x0^2 + x1^2 + x2^2) + 2 x0 x1^2 in terms of the caller's x
    expected = np.array([[8 * 1.5, 4 * x0[1], 0.0], [4 * x0[1], 2 * 1.5 + 4 * x0[0], 0.0], [0.0, 0.0, 2 * 1.5]])
    np.testing.assert_allclose(H, expected, rtol=1e-13)


def test_errors_not_of_second_order_are_not_dressed_as_such():
    big_endian = np.ones(3, ">f8")
    with pytest.raises(OptionError) as raised:
        ROSEN.hessian(big_endian)
    assert "second time" not in str(raised.value)


def test_refusal_in_fwdad_code_names_the_function_and_what_to_do():
    f = fwdad.forward_grad(norm_one)
    with pytest.raises(FwdadError) as raised:
        f.hessian(np.array([[1.0, -2.0], [0.5, 3.0]]))
    text = str(raised.value)
    assert text.startswith("norm_one: fwdad cannot differentiate its own tangent code")
    assert "svd" in text and "docs/second-order.md" in text and "wrap it in a module-level" not in text


def test_jvp2_without_tangents_is_shaped_as_jvp():
    f = fwdad.forward_grad(pair)
    value, first, second = f.jvp2((2.0, 3.0), (None, None))
    assert value == (6.0, 3.0) and first == f.jvp((2.0, 3.0), (None, None))[1] and second == first


def test_large_dense_hessian_warns(monkeypatch):
    from fwdad import second_order
    from fwdad.errors import FwdadWarning
    monkeypatch.setattr(second_order, "LARGE_HESSIAN", 3)
    with pytest.warns(FwdadWarning, match="directional passes"):
        ROSEN.hessian(np.linspace(-1.0, 1.0, 5))


def gradient(x, k):
    """A function named like the Hessian wrapper's local, with a parameter named like its loop index."""
    x[0] = x[0] * 1.0
    return np.sum(x ** 3) * k


def test_function_named_like_a_wrapper_local():
    f = fwdad.forward_grad(gradient, wrt="x")
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(f.hessian(x, 2.0)[0][0], np.diag(12.0 * x), rtol=1e-14)
