"""Activity perturbation (fgd(gradient="activity"), fwdad.dense, fwdad.stop_gradient) on tiny models.

The mechanics the issue names: stop_gradient's tangent is exactly zero upstream; the update of a
linear layer is x^T g_z for the g_z drawn by the probe; the estimate is unbiased for the
gradient; K directions spanning the activations give the exact gradient by orthogonal
projection; runs are reproducible from the seed. Estimators are built once per module.
"""
import numpy as np
import pytest

import fwdad
from fwdad import random as fwdrandom
from fwdad import runtime
from fwdad.errors import ExecutionError, FwdadError, OptionError
from fwdad.train.activity import ActivityGradient

B, N_IN, N_HID, N_OUT = 5, 4, 3, 2
RNG = np.random.default_rng(7)
X = RNG.normal(size=(B, N_IN))
Y = RNG.normal(size=(B, N_OUT))
C = RNG.normal(size=(B, N_OUT))
SIZE = N_IN * N_HID + N_HID + N_HID * N_OUT + N_OUT


def two_layers(theta, X, Y):
    """Per-example squared error of a ReLU layer and a linear layer."""
    W1 = theta[0:N_IN * N_HID].reshape((N_IN, N_HID))
    b1 = theta[N_IN * N_HID:N_IN * N_HID + N_HID]
    start = N_IN * N_HID + N_HID
    W2 = theta[start:start + N_HID * N_OUT].reshape((N_HID, N_OUT))
    b2 = theta[start + N_HID * N_OUT:start + N_HID * N_OUT + N_OUT]
    h = fwdad.dense_relu(X, W1, b1)
    z = fwdad.dense(h, W2, b2)
    return np.sum((z - Y) ** 2, axis=1)


def linear_layer(theta, X, C):
    """One layer whose per-example losses are linear in z: d loss_i / d z_i = C_i exactly."""
    W = theta[0:N_IN * N_OUT].reshape((N_IN, N_OUT))
    b = theta[N_IN * N_OUT:N_IN * N_OUT + N_OUT]
    return np.sum(fwdad.dense(X, W, b) * C, axis=1)


def mean_loss(theta, X, Y):
    return np.sum(two_layers(theta, X, Y)) / X.shape[0]


def theta0(size=SIZE, seed=3):
    return np.random.default_rng(seed).normal(size=size)


@pytest.fixture(scope="module")
def two():
    f = fwdad.forward_grad(two_layers)
    return f, ActivityGradient(f, (theta0(), X, Y), 1)


@pytest.fixture(scope="module")
def linear():
    f = fwdad.forward_grad(linear_layer)
    return ActivityGradient(f, (theta0(N_IN * N_OUT + N_OUT), X, C), 1)


def test_stop_gradient_has_zero_tangent_upstream():
    def f(x):
        return x * fwdad.stop_gradient(x) + fwdad.stop_gradient(np.sin(x))
    g = fwdad.forward_grad(f)
    value, tangent = g.jvp((1.5,), (1.0,))
    assert value == pytest.approx(1.5 ** 2 + np.sin(1.5))
    assert tangent == 1.5                       # d/dx [x * c] with c = x held
    _, d1, d2 = g.jvp2((1.5,), (1.0,))
    assert (d1, d2) == (1.5, 0.0)
    assert f(1.5) == value                      # plain Python: the identity


def test_dense_rule_matches_central_differences():
    def f(x, W, b):
        return np.sum(fwdad.dense_relu(x, W, b) ** 2) + np.sum(fwdad.dense(x, W, b, 1))
    args = (X, RNG.normal(size=(N_IN, N_HID)), RNG.normal(size=N_HID))
    tangents = tuple(RNG.normal(size=np.shape(a)) for a in args)
    _, tangent = fwdad.forward_grad(f).jvp(args, tangents)
    h = 1e-6
    plus = f(*(a + h * t for a, t in zip(args, tangents)))
    minus = f(*(a - h * t for a, t in zip(args, tangents)))
    assert tangent == pytest.approx((plus - minus) / (2 * h), rel=1e-6)


def test_dense_keeps_float32():
    def f(x, W, b):
        return fwdad.dense_relu(x, W, b)
    args = (X.astype(np.float32), np.ones((N_IN, N_HID), np.float32), np.ones(N_HID, np.float32))
    value, tangent = fwdad.forward_grad(f).jvp(args, (None, np.ones((N_IN, N_HID), np.float32), None))
    assert value.dtype == tangent.dtype == np.float32


@pytest.mark.slow
def test_update_is_x_transpose_g_z(linear):
    """grad W = X^T g_z / B and grad b = sum(g_z) / B with g_z[i] = (C_i . u_i) u_i, u the
    noise the probe drew at the layer (site 0) from the step's key."""
    theta = theta0(N_IN * N_OUT + N_OUT)
    value, (grad,) = linear(theta, X, C, seed=11, first=4)
    z = X @ theta[:N_IN * N_OUT].reshape(N_IN, N_OUT) + theta[N_IN * N_OUT:]
    key = np.uint64(fwdrandom.stream_key(np.uint64(11), 4)).astype(np.int64)   # as the driver casts it
    u = runtime.site_noise(z, key + 0)
    g_z = np.sum(C * u, axis=1, keepdims=True) * u / B
    assert value == pytest.approx(np.mean(np.sum(z * C, axis=1)))
    np.testing.assert_allclose(grad[:N_IN * N_OUT].reshape(N_IN, N_OUT), X.T @ g_z, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad[N_IN * N_OUT:], g_z.sum(axis=0), rtol=1e-12, atol=1e-14)


def test_noise_is_independent_per_example_and_keeps_dtype():
    z = np.ones((3, 4000), np.float32)
    u = runtime.site_noise(z, np.int64(5))
    assert u.dtype == np.float32
    assert abs(np.corrcoef(u[0], u[1])[0, 1]) < 0.05
    assert np.all(runtime.site_noise_active(-z, np.int64(5)) == 0)
    key = runtime.noise_key(np.int64(5))            # any component regenerates alone, on any target
    assert [u.flat[i] for i in (0, 1, 6, 4001)] == [fwdrandom.sample(fwdrandom.NORMAL_TABLE, key, i, 0)
                                                     for i in (0, 1, 6, 4001)]


@pytest.mark.slow
def test_estimate_is_unbiased(two):
    """The mean of many single-direction estimates is the gradient of the mean loss, within a
    few standard errors per component."""
    f, estimator = two
    theta = theta0()
    _, exact = fwdad.forward_grad(mean_loss).value_and_grad(theta, X, Y)
    draws = np.array([estimator(theta, X, Y, seed=s)[1][0] for s in range(3000)])
    error = draws.mean(axis=0) - exact[0]
    standard_error = draws.std(axis=0) / np.sqrt(len(draws)) + 1e-12
    assert np.all(np.abs(error) < 5 * standard_error)
    assert np.max(np.abs(error / standard_error)) > 0.1        # the test can fail: errors are not all 0


@pytest.mark.slow
def test_orthogonal_projection_with_spanning_directions_is_exact():
    """With K >= the activations per example (here 2 outputs), the orthogonal projection of the
    activation gradient onto the K noise directions is the gradient itself."""
    f = fwdad.forward_grad(linear_layer)
    theta = theta0(N_IN * N_OUT + N_OUT)
    estimator = ActivityGradient(f, (theta, X, C), 1, combine="orthogonal")
    _, (grad,) = estimator(theta, X, C, seed=2, directions=2)
    exact = np.concatenate([(X.T @ C).ravel(), C.sum(axis=0)]) / B
    np.testing.assert_allclose(grad, exact, rtol=1e-6, atol=1e-9)


@pytest.mark.slow
def test_fgd_is_reproducible_from_the_seed():
    def run(seed):
        return fwdad.fgd(two_layers, theta0(), data=(X, Y), batch_size=4, lr=0.01, steps=20, seed=seed,
                         gradient="activity", directions=2)
    first, again, other = run(1), run(1), run(2)
    np.testing.assert_array_equal(first.params, again.params)
    assert not np.array_equal(first.params, other.params)
    assert first.losses[-1] < first.losses[0]


@pytest.mark.slow
def test_refuses_a_model_without_layers():
    def plain(theta, X, Y):
        return np.sum((X @ theta.reshape(N_IN, N_OUT) - Y) ** 2, axis=1)
    with pytest.raises(OptionError, match="no layer"):
        fwdad.fgd(plain, theta0(N_IN * N_OUT), data=(X, Y), lr=0.1, steps=1, gradient="activity")


@pytest.mark.slow
def test_refuses_parameters_outside_layers():
    def extra(theta, X, C):
        W = theta[0:N_IN * N_OUT].reshape((N_IN, N_OUT))
        return np.sum(fwdad.dense(X, W, theta[N_IN * N_OUT:N_IN * N_OUT + N_OUT]) * C, axis=1) * theta[-1]
    with pytest.raises(OptionError, match="1 of the 11 entries"):
        fwdad.fgd(extra, theta0(N_IN * N_OUT + N_OUT + 1), data=(X, C), lr=0.1, steps=1, gradient="activity")


@pytest.mark.slow
def test_refuses_layers_only_in_a_helper():
    def outer(theta, X, Y):
        return two_layers(theta, X, Y)
    with pytest.raises(OptionError, match="helper"):
        fwdad.fgd(outer, theta0(), data=(X, Y), lr=0.1, steps=1, gradient="activity")


@pytest.mark.parametrize("given, match", [
    (dict(gradient="exact", combine="orthogonal"), "combine"),
    (dict(gradient="activity", distribution="rademacher"), "normal"),
    (dict(gradient="activity", combine="median"), "combine"),
])
def test_refuses_bad_options(given, match):
    with pytest.raises(FwdadError, match=match):
        fwdad.fgd(two_layers, theta0(), data=(X, Y), lr=0.1, steps=1, **given)


@pytest.mark.slow
def test_refuses_a_scalar_loss_and_a_bad_loss_column():
    def scalar(theta, X, C):
        W = theta[0:N_IN * N_OUT].reshape((N_IN, N_OUT))
        return np.sum(fwdad.dense(X, W, theta[N_IN * N_OUT:]) * C)
    with pytest.raises(FwdadError, match="per-example losses"):
        fwdad.fgd(scalar, theta0(N_IN * N_OUT + N_OUT), data=(X, C), lr=0.1, steps=1, gradient="activity")

    def wrong_column(theta, X, C):
        W = theta[0:N_IN * N_OUT].reshape((N_IN, N_OUT))
        return np.sum(fwdad.dense(X, W, theta[N_IN * N_OUT:], 3) * C, axis=1)
    with pytest.raises((ExecutionError, ValueError), match="loss="):
        fwdad.fgd(wrong_column, theta0(N_IN * N_OUT + N_OUT), data=(X, C), lr=0.1, steps=1,
                  gradient="activity")


@pytest.mark.slow
def test_refuses_weights_that_are_copies():
    def copied(theta, X, C):
        W = theta[0:N_IN * N_OUT].reshape((N_IN, N_OUT)).copy()
        return np.sum(fwdad.dense(X, W, theta[N_IN * N_OUT:]) * C, axis=1)
    with pytest.raises((ExecutionError, ValueError), match="contiguous view"):
        fwdad.fgd(copied, theta0(N_IN * N_OUT + N_OUT), data=(X, C), lr=0.1, steps=1, gradient="activity")


@pytest.mark.slow
def test_local_losses_estimate_their_own_gradient():
    """The MNIST model's local losses: the mean of many estimates is the hand-derived local
    backpropagation gradient (and that equals fwdad's exact gradient of the same objective)."""
    from fwdad.models import init_local_mlp, mlp_local_losses, mlp_local_value_and_grad, mlp_sizes
    sizes = mlp_sizes(6, 5, 2, 3)
    Xs = RNG.normal(size=(4, 6)).astype(np.float32)
    Ys = RNG.integers(0, 3, 4)
    theta = init_local_mlp(sizes, 0)
    f = fwdad.forward_grad(mlp_local_losses)
    estimator = ActivityGradient(f, (theta, sizes, 2, Xs, Ys), 1)
    _, (estimate,) = estimator(theta, sizes, 2, Xs, Ys, seed=1, directions=40000)
    _, exact = mlp_local_value_and_grad(theta, sizes, 2, Xs, Ys)

    def total(theta, sizes, groups, X, Y):
        return np.sum(mlp_local_losses(theta, sizes, groups, X, Y)) / X.shape[0]
    _, by_fwdad = fwdad.forward_grad(total).value_and_grad(theta, sizes, 2, Xs, Ys)
    assert mlp_local_losses(theta, sizes, 2, Xs, Ys).shape == (4, 2 * 3 + 1)
    np.testing.assert_allclose(by_fwdad[0], exact, rtol=1e-4, atol=1e-6)
    assert np.corrcoef(estimate, exact)[0, 1] > 0.995


def test_mnist_example_losses_are_plain_code():
    """The model runs under CPython and as fwdad's primal, and its mean is the paper's mlp_loss."""
    from fwdad.models import init_mlp, mlp_example_losses, mlp_sizes, mlp_value
    sizes = mlp_sizes(6, 5, 2, 3)
    Xs, Ys = RNG.normal(size=(4, 6)).astype(np.float32), RNG.integers(0, 3, 4)
    theta = init_mlp(sizes, 0)
    plain = mlp_example_losses(theta, sizes, Xs, Ys)
    np.testing.assert_allclose(fwdad.forward_grad(mlp_example_losses)(theta, sizes, Xs, Ys), plain, rtol=1e-5)
    assert plain.mean() == pytest.approx(mlp_value(theta, sizes, Xs, Ys), rel=1e-5)


def quadratic(x, A):
    return 0.5 * x @ (A @ x)


@pytest.mark.slow
def test_weight_perturbation_orthogonal_with_spanning_directions_is_gradient_descent():
    """combine="orthogonal" with gradient="forward": K = n directions project onto everything,
    so the run is gradient descent with the exact gradient (up to the 1e-10 ridge)."""
    A, x0 = np.diag(np.linspace(1.0, 3.0, 6)), np.random.default_rng(1).normal(size=6)
    projected = fwdad.fgd(quadratic, x0, args=(A,), lr=0.1, steps=5, directions=6, combine="orthogonal")
    exact = fwdad.fgd(quadratic, x0, args=(A,), lr=0.1, steps=5, gradient="exact")
    np.testing.assert_allclose(projected.params, exact.params, rtol=1e-7, atol=1e-9)
    fewer = fwdad.fgd(quadratic, x0, args=(A,), lr=0.1, steps=5, directions=2, combine="orthogonal")
    assert not np.allclose(fewer.params, exact.params)
    with pytest.raises(OptionError, match="combine"):
        fwdad.fgd(quadratic, x0, args=(A,), lr=0.1, steps=5, gradient="exact", combine="orthogonal")


@pytest.mark.slow
def test_a_layer_numba_cannot_compile_is_a_compilation_error_naming_the_model():
    def scalar_bias(theta, X, C):
        W = theta[0:N_IN * N_OUT].reshape((N_IN, N_OUT))
        return np.sum(fwdad.dense(X, W, theta[N_IN * N_OUT]) * C, axis=1)
    with pytest.raises(fwdad.CompilationError, match=r"scalar_bias \(.*test_activity.py:\d+; layers at lines \d+\).*b of shape"):
        fwdad.fgd(scalar_bias, theta0(N_IN * N_OUT + 1), data=(X, C), lr=0.1, steps=1, gradient="activity")


def penalized(theta, X, C):
    """A layer plus an L2 penalty on its weights: a use outside the layer (trial finding A)."""
    W = theta[0:N_IN * N_OUT].reshape((N_IN, N_OUT))
    z = fwdad.dense(X, W, theta[N_IN * N_OUT:N_IN * N_OUT + N_OUT])
    return np.sum(z * C, axis=1) + np.sum(W * W)


def shared_with_helper(theta, X, C):
    """The same W in a body layer and in a helper's layer, which is not perturbed (finding F)."""
    W = theta[0:N_IN * N_OUT].reshape((N_IN, N_OUT))
    b = theta[N_IN * N_OUT:N_IN * N_OUT + N_OUT]
    return np.sum(fwdad.dense(X, W, b) * C, axis=1) + np.sum(linear_helper(X, W, b), axis=1)


def linear_helper(X, W, b):
    return fwdad.dense(X, W, b)


def unnamed_column(theta, X, C):
    """(B, 2) losses, but no layer names column 1 (finding E)."""
    z = fwdad.dense(X, theta[0:N_IN * N_OUT].reshape((N_IN, N_OUT)), theta[N_IN * N_OUT:N_IN * N_OUT + N_OUT])
    out = np.zeros((X.shape[0], 2))
    out[:, 0] = np.sum(z * C, axis=1)
    out[:, 1] = np.sum(z * z, axis=1)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("model, match", [(penalized, "other than as"), (shared_with_helper, "other than as"),
                                          (unnamed_column, r"no layer names column\(s\) \[1\]")])
def test_refuses_what_activity_perturbation_would_get_wrong(model, match):
    """Each of these trained silently with a wrong gradient before the checks (session 5 trial)."""
    with pytest.raises(OptionError, match=match):
        fwdad.fgd(model, theta0(N_IN * N_OUT + N_OUT), data=(X, C), lr=0.1, steps=1, gradient="activity")
