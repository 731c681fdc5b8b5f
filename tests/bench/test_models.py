"""The paper's models: restricted-style loss, hand-derived backprop, and their agreement."""
import numba
import numpy as np
import pytest

from fwdad.models import (accuracy, init_mlp, mlp_logits, mlp_loss, mlp_sizes, mlp_value,
                          mlp_value_and_grad, num_params)

SHAPES = {"logistic": [8, 3], "mlp": [8, 16, 16, 3], "deep": [8, 16, 16, 16, 16, 3]}


def problem(sizes, seed=0, batch=5, dtype=np.float32):
    sizes = np.array(sizes, dtype=np.int64)
    rng = np.random.default_rng(seed + 100)
    theta = init_mlp(sizes, seed)
    theta += rng.normal(0, 0.1, theta.size).astype(np.float32)  # nonzero biases too
    X = rng.random((batch, sizes[0]), dtype=np.float32)
    Y = rng.integers(0, sizes[-1], batch)
    return theta.astype(dtype), sizes, X.astype(dtype), Y


def reference_loss(theta, sizes, X, Y):
    """Plain NumPy forward pass in float64, written independently of mlp_loss."""
    h, offset = X.astype(np.float64), 0
    for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = theta[offset:offset + n_in * n_out].reshape(n_in, n_out)
        b = theta[offset + n_in * n_out:offset + n_in * n_out + n_out]
        offset += n_in * n_out + n_out
        h = h @ W + b
        if layer < len(sizes) - 2:
            h = np.maximum(h, 0)
    log_z = np.log(np.sum(np.exp(h - h.max(axis=1, keepdims=True)), axis=1)) + h.max(axis=1)
    return np.mean(log_z - h[np.arange(len(Y)), Y])


def test_sizes_and_parameter_count():
    assert mlp_sizes(784, 1024, 2, 10).tolist() == [784, 1024, 1024, 10]
    assert mlp_sizes(784, 1024, 0, 10).tolist() == [784, 10]
    assert mlp_sizes(784, 1024, 2, 10).dtype == np.int64
    assert num_params([784, 10]) == 7850
    assert num_params([784, 1024, 1024, 10]) == 784 * 1024 + 1024 + 1024 * 1024 + 1024 + 10250


def test_init_is_deterministic_he_uniform_with_zero_biases():
    sizes = np.array([8, 16, 3])
    theta = init_mlp(sizes, 7)
    assert theta.dtype == np.float32 and theta.size == num_params(sizes)
    np.testing.assert_array_equal(theta, init_mlp(sizes, 7))
    assert not np.array_equal(theta, init_mlp(sizes, 8))
    W1, b1 = theta[:128], theta[128:144]
    assert np.all(b1 == 0) and np.all(theta[-3:] == 0)
    assert np.abs(W1).max() <= np.sqrt(6 / 8) and np.abs(W1).max() > 0.5 * np.sqrt(6 / 8)


@pytest.mark.parametrize("shape", SHAPES)
def test_loss_matches_reference_cpython_and_numba(shape):
    theta, sizes, X, Y = problem(SHAPES[shape])
    expected = reference_loss(theta.astype(np.float64), sizes, X, Y)
    python_value = mlp_loss(theta, sizes, X, Y)
    assert isinstance(python_value, np.float32)
    plain_njit = numba.njit(mlp_loss)
    for value in (python_value, plain_njit(theta, sizes, X, Y), mlp_value(theta, sizes, X, Y),
                  mlp_value_and_grad(theta, sizes, X, Y)[0]):
        assert value == pytest.approx(expected, rel=1e-5)
    assert plain_njit.nopython_signatures[0].return_type == numba.float32  # no float64 leak


def test_loss_is_stable_for_huge_logits():
    theta, sizes, X, Y = problem(SHAPES["mlp"])
    theta *= 30  # logits in the thousands: exp overflows without the row-max shift
    expected = reference_loss(theta.astype(np.float64), sizes, X, Y)
    assert np.isfinite(expected) and expected > 100
    for value in (mlp_loss(theta, sizes, X, Y), mlp_value(theta, sizes, X, Y),
                  mlp_value_and_grad(theta, sizes, X, Y)[0]):
        assert value == pytest.approx(expected, rel=1e-4)
    assert np.all(np.isfinite(mlp_value_and_grad(theta, sizes, X, Y)[1]))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_backprop_matches_central_differences_in_float64(shape, seed):
    theta, sizes, X, Y = problem(SHAPES[shape], seed, dtype=np.float64)
    loss, grad = mlp_value_and_grad(theta, sizes, X, Y)
    assert grad.dtype == np.float64 and grad.shape == theta.shape
    rng = np.random.default_rng(seed)
    for _ in range(3):
        v = rng.standard_normal(theta.size)
        eps = 1e-6
        fd = (reference_loss(theta + eps * v, sizes, X, Y)
              - reference_loss(theta - eps * v, sizes, X, Y)) / (2 * eps)
        assert grad @ v == pytest.approx(fd, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("shape", SHAPES)
def test_backprop_per_coordinate_against_float64_differences_of_mlp_loss(shape):
    """Every coordinate, so a wrong offset or a transposed block cannot hide in a projection."""
    theta, sizes, X, Y = problem(SHAPES[shape], 3, dtype=np.float64)
    _, grad = mlp_value_and_grad(theta, sizes, X, Y)
    eps, fd = 1e-6, np.empty_like(theta)
    for k in range(theta.size):
        step = np.zeros_like(theta)
        step[k] = eps
        up, down = mlp_loss(theta + step, sizes, X, Y), mlp_loss(theta - step, sizes, X, Y)
        fd[k] = (up - down) / (2 * eps)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("shape", SHAPES)
def test_float32_backprop_is_accurate(shape):
    theta, sizes, X, Y = problem(SHAPES[shape], 5)
    loss32, grad32 = mlp_value_and_grad(theta, sizes, X, Y)
    loss64, grad64 = mlp_value_and_grad(theta.astype(np.float64), sizes, X.astype(np.float64), Y)
    assert grad32.dtype == np.float32 and isinstance(loss32, float)
    assert loss32 == pytest.approx(loss64, rel=1e-6)
    np.testing.assert_allclose(grad32, grad64, rtol=1e-4, atol=1e-6 * np.abs(grad64).max())


def test_gradient_descent_lowers_the_loss():
    theta, sizes, X, Y = problem(SHAPES["mlp"], batch=20)
    losses = []
    for _ in range(30):
        loss, grad = mlp_value_and_grad(theta, sizes, X, Y)
        losses.append(loss)
        theta = theta - np.float32(0.1) * grad
    assert theta.dtype == np.float32
    assert losses[-1] < 0.7 * losses[0]
    assert all(b <= a + 1e-6 for a, b in zip(losses, losses[1:]))


def test_logits_and_accuracy():
    theta, sizes, X, Y = problem(SHAPES["mlp"], batch=40)
    z = mlp_logits(theta, sizes, X)
    assert z.shape == (40, 3) and z.dtype == np.float32
    picked = z[np.arange(40), Y] - np.log(np.sum(np.exp(z), axis=1))
    assert -np.mean(picked) == pytest.approx(reference_loss(theta.astype(np.float64), sizes, X, Y),
                                             rel=1e-5)
    assert accuracy(theta, sizes, X, Y) == pytest.approx(np.mean(np.argmax(z, axis=1) == Y))
    assert accuracy(theta, sizes, X, np.argmax(z, axis=1)) == 1.0

