"""Forward gradients, vector mode and FGD: statistics with fixed seeds, oracles, references."""
import math

import numpy as np
import pytest

import fwdad
from fwdad.random import direction
from helpers import central_difference


def quadratic_form(x, a, w):
    s = 0.0
    for i in range(len(x)):
        s += w[i] * (x[i] - a) ** 2 + math.sin(x[i] * a)
    return s + a * a


def exact_gradient(x, a, w):
    gx = 2 * w * (x - a) + np.cos(x * a) * a
    ga = np.sum(-2 * w * (x - a) + np.cos(x * a) * x) + 2 * a
    return gx, ga


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(7)
    return fwdad.forward_grad(quadratic_form), rng.normal(size=5), 0.7, rng.random(5) + 0.5


def test_value_and_grad_matches_hand_derived_and_fd(problem):
    f, x, a, w = problem
    value, (gx, ga, gw) = f.value_and_grad(x, a, w)
    hx, ha = exact_gradient(x, a, w)
    assert value == pytest.approx(quadratic_form(x, a, w))
    np.testing.assert_allclose(gx, hx, rtol=1e-12)
    assert ga == pytest.approx(ha, rel=1e-12)
    fd = central_difference(quadratic_form, (x, a, w), (np.zeros(5), 0.0, np.eye(5)[2]))
    assert gw[2] == pytest.approx(fd, rel=1e-6)


@pytest.mark.parametrize("chunk", [1, 3, 16])
def test_value_and_grad_any_chunk(problem, chunk):
    f, x, a, w = problem
    _, grads = f.value_and_grad(x, a, w, chunk=chunk)
    np.testing.assert_allclose(grads[0], exact_gradient(x, a, w)[0], rtol=1e-12)


@pytest.mark.parametrize("distribution", ["normal", "rademacher"])
def test_forward_gradient_is_unbiased(problem, distribution):
    f, x, a, w = problem
    exact = np.concatenate([exact_gradient(x, a, w)[0], [exact_gradient(x, a, w)[1]]])
    samples = np.array([np.concatenate([g[0], [g[1]]]) for g in
                        (f.forward_gradient(x, a, w, seed=s, distribution=distribution)[1][:2]
                         for s in range(4000))])
    mean = samples.mean(axis=0)
    stderr = samples.std(axis=0) / math.sqrt(len(samples))
    assert np.all(np.abs(mean - exact) < 4 * stderr), (mean, exact, stderr)


def test_more_directions_lower_the_error(problem):
    f, x, a, w = problem
    exact = exact_gradient(x, a, w)[0]
    errors = {}
    for K in (1, 16):
        estimates = np.array([f.forward_gradient(x, a, w, seed=s, directions=K)[1][0] for s in range(300)])
        errors[K] = np.mean(np.sum((estimates - exact) ** 2, axis=1))
    assert errors[16] < 0.15 * errors[1]


def test_forward_gradient_equals_its_definition(problem):
    _, x, a, w = problem
    f = fwdad.forward_grad(quadratic_form, wrt=("x", "a"))
    value, grads = f.forward_gradient(x, a, w, seed=11, directions=3)
    assert grads[2] is None
    expected_x, expected_a = np.zeros(5), 0.0
    for k in range(3):
        v = direction(11, k, (6,))
        _, t = f.jvp((x, a, w), (v[:5], v[5], None))
        expected_x += t * v[:5]
        expected_a += t * v[5]
    np.testing.assert_allclose(grads[0], expected_x / 3, rtol=1e-13)
    assert grads[1] == pytest.approx(expected_a / 3, rel=1e-13)
    assert value == pytest.approx(quadratic_form(x, a, w))


def test_same_seed_same_result_on_every_target(problem):
    f, x, a, w = problem
    parallel = fwdad.forward_grad(quadratic_form, target="parallel")
    for K in (1, 5):
        first = f.forward_gradient(x, a, w, seed=3, directions=K)
        again = f.forward_gradient(x, a, w, seed=3, directions=K)
        other = parallel.forward_gradient(x, a, w, seed=3, directions=K)
        for one, two in [(first, again), (first, other)]:
            assert one[0] == two[0]
            np.testing.assert_array_equal(one[1][0], two[1][0])        # bit-identical
            assert one[1][1] == two[1][1]
    different = f.forward_gradient(x, a, w, seed=4)
    assert not np.array_equal(different[1][0], first[1][0])


def test_directions_are_reproducible_and_standard():
    v = direction(123, 4, (200_000,))
    np.testing.assert_array_equal(v, direction(123, 4, (200_000,)))
    np.testing.assert_array_equal(v[1000:1010], direction(123, 4, (10,), offset=1000))
    assert abs(v.mean()) < 4 / math.sqrt(v.size) and abs(v.var() - 1) < 0.02
    assert abs(np.mean(v ** 4) - 3) < 0.1                                   # Gaussian kurtosis
    assert np.corrcoef(v, direction(123, 5, (200_000,)))[0, 1] < 0.02
    r = direction(1, 0, (10_000,), distribution="rademacher")
    assert set(np.unique(r)) == {-1.0, 1.0}


def vector_valued(x, s):
    out = np.empty(len(x))
    for i in range(len(x)):
        out[i] = s * x[i] ** 2 + x[(i + 1) % len(x)]
    return out


def test_jacobian_matches_finite_differences():
    f = fwdad.forward_grad(vector_valued)
    x, s = np.array([0.5, -1.0, 2.0]), 1.5
    jx, js = f.jacobian(x, s)
    assert jx.shape == (3, 3) and js.shape == (3,)
    for j in range(3):
        e = np.eye(3)[j]
        np.testing.assert_allclose(jx[:, j], central_difference(vector_valued, (x, s), (e, 0.0)), rtol=1e-6)
    np.testing.assert_allclose(js, central_difference(vector_valued, (x, s), (np.zeros(3), 1.0)), rtol=1e-6)


def test_forward_gradient_needs_a_scalar_output():
    f = fwdad.forward_grad(vector_valued)
    with pytest.raises(fwdad.FwdadError, match="returns a float scalar"):
        f.forward_gradient(np.ones(3), 1.0)


def in_place_argument(x):
    x[0] = x[0] * 2.0
    return x[0] + x[1]


def test_forward_gradient_refuses_functions_that_write_their_arguments():
    with pytest.raises(fwdad.FwdadError, match="writes into its argument 'x'"):
        fwdad.forward_grad(in_place_argument).forward_gradient(np.ones(2))


# ---- forward gradient descent ---------------------------------------------------------------------
def beale(x, y):
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y * y) ** 2 + (2.625 - x + x * y ** 3) ** 2


def rosenbrock(x, y):
    return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2


def test_fgd_beale_reaches_the_minimum():
    result = fwdad.fgd(beale, (1.0, 1.0), lr=0.01, steps=1000, seed=0, progress=False)
    assert result.params == pytest.approx((3.0, 0.5), abs=0.05)
    assert result.losses.shape == (1000,) and result.losses[-1] < 1e-3 < result.losses[0]


def test_fgd_rosenbrock_reaches_the_minimum():
    result = fwdad.fgd(rosenbrock, (-1.0, 0.0), lr=5e-4, steps=25000, seed=0, progress=False)
    assert result.params == pytest.approx((1.0, 1.0), abs=0.02)
    exact = fwdad.fgd(rosenbrock, (-1.0, 0.0), lr=5e-4, steps=25000, gradient="exact", progress=False)
    assert exact.params == pytest.approx((1.0, 1.0), abs=0.02)


def reference_loop(gradient_at, theta, steps, lr, optimizer, decay=0.0, mu=0.9, b1=0.9, b2=0.999, eps=1e-8):
    """Plain NumPy optimizers, step by step."""
    theta, m, s, path = np.array(theta, float), np.zeros(len(theta)), np.zeros(len(theta)), []
    for t in range(steps):
        g = gradient_at(theta, t)
        rate = lr * math.exp(-decay * t)
        if optimizer == "sgd":
            theta = theta - rate * g
        elif optimizer == "momentum":
            m = mu * m + g
            theta = theta - rate * m
        else:
            m = b1 * m + (1 - b1) * g
            s = b2 * s + (1 - b2) * g * g
            theta = theta - rate * (m / (1 - b1 ** (t + 1))) / (np.sqrt(s / (1 - b2 ** (t + 1))) + eps)
        path.append(theta.copy())
    return path


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("gradient", ["exact", "forward"])
def test_optimizers_match_a_numpy_reference(optimizer, gradient):
    f = fwdad.forward_grad(beale)

    def gradient_at(theta, t):
        if gradient == "exact":
            return np.array(f.value_and_grad(*theta)[1])
        v = direction(5, t, (2,))
        return f.jvp(tuple(theta), tuple(v))[1] * v

    path = reference_loop(gradient_at, (1.0, 1.0), 5, 0.01, optimizer, decay=0.1)
    for steps in range(1, 6):
        result = fwdad.fgd(beale, (1.0, 1.0), lr=0.01, steps=steps, seed=5, optimizer=optimizer,
                           decay=0.1, gradient=gradient, progress=False)
        np.testing.assert_allclose(result.params, path[steps - 1], rtol=1e-12)


def least_squares(w, b, X, Y):
    r = X @ w + b - Y
    return np.sum(r * r) / len(Y)


def test_fgd_minibatches_inside_the_compiled_loop():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 4))
    w_true = np.array([1.0, -2.0, 0.5, 3.0])
    Y = X @ w_true + 0.25
    result = fwdad.fgd(least_squares, (np.zeros(4), 0.0), data=(X, Y), batch_size=32, lr=0.02,
                       steps=3000, seed=1, optimizer="momentum", momentum=0.5, progress=False)
    np.testing.assert_allclose(result.params[0], w_true, atol=1e-3)
    assert result.params[1] == pytest.approx(0.25, abs=1e-3)
    again = fwdad.fgd(least_squares, (np.zeros(4), 0.0), data=(X, Y), batch_size=32, lr=0.02,
                      steps=300, seed=1, optimizer="momentum", momentum=0.5, progress=False)
    np.testing.assert_array_equal(again.losses, result.losses[:300])        # reproducible from the seed


def test_fgd_does_not_modify_the_callers_parameters_and_calls_back():
    start = np.array([1.0, 1.0])
    seen = []
    result = fwdad.fgd(lambda_free_beale, start, lr=0.01, steps=100, every=25, progress=False,
                       callback=lambda step, params, losses: seen.append((step, len(losses))))
    np.testing.assert_array_equal(start, [1.0, 1.0])
    assert seen == [(25, 25), (50, 50), (75, 75), (100, 100)]
    assert isinstance(result.params, np.ndarray) and result.times[-1] == pytest.approx(result.seconds, rel=0.5)


def lambda_free_beale(p):
    return beale(p[0], p[1])


def test_fgd_with_gradient_clipping_and_many_directions():
    result = fwdad.fgd(rosenbrock, (-1.0, 0.0), lr=1e-3, steps=3000, directions=4, clip=10.0, progress=False)
    assert result.losses[-1] < result.losses[0]
    with pytest.raises(fwdad.FwdadError, match="clip must be a finite number > 0"):
        fwdad.fgd(rosenbrock, (-1.0, 0.0), lr=1e-3, steps=10, clip=-1.0, progress=False)
