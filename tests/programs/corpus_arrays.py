"""A corpus of vectorized NumPy programs: models, stencils, solvers, normalizations.

Each CASES entry is (function, make_args); every float argument is differentiated and checked
against central differences, CPython and (where the program is plain NumPy) jax.jvp.
"""
import math

import numpy as np

CASES = []


def case(make_args):
    def register(function):
        CASES.append((function, make_args))
        return function
    return register


def normal(*shape, scale=1.0, dtype=np.float64):
    return lambda rng: rng.normal(size=shape).astype(dtype) * dtype(scale) if dtype is np.float32 \
        else rng.normal(size=shape) * scale


@case(lambda rng: (rng.normal(size=(6, 4)) * 0.5, rng.normal(size=4) * 0.1, rng.normal(size=(4, 3)) * 0.5,
                   rng.normal(size=(5, 6)), rng.integers(0, 3, 5)))
def mlp_softmax_cross_entropy(W1, b1, W2, X, Y):
    h = np.tanh(X @ W1 + b1)
    z = h @ W2
    z = z - np.max(z)
    logp = z - np.log(np.sum(np.exp(z), axis=1)).reshape((-1, 1))
    total = 0.0
    for i in range(len(Y)):
        total -= logp[i, Y[i]]
    return total / len(Y)


@case(lambda rng: (rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(4, 5)).astype(np.float32)))
def float32_relu_layer(W, X):
    h = np.maximum(X @ W, np.float32(0.0))
    return np.sum(h * h) * np.float32(0.5)


@case(lambda rng: (rng.random(20), 0.2))
def heat_equation_slices(u0, alpha):
    u = u0.copy()
    for _ in range(10):
        lap = u[:-2] - 2.0 * u[1:-1] + u[2:]
        u[1:-1] = u[1:-1] + alpha * lap
    return np.sum(u * u)


@case(lambda rng: (rng.random((6, 7)), 0.1))
def stencil_2d(u, c):
    v = u.copy()
    v[1:-1, 1:-1] = u[1:-1, 1:-1] + c * (u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:] - 4.0 * u[1:-1, 1:-1])
    return np.sum(v ** 2)


@case(lambda rng: (rng.normal(size=3), rng.normal(size=(8, 3)), rng.normal(size=8)))
def least_squares_residual(w, A, y):
    r = A @ w - y
    return np.dot(r, r) / len(y)


@case(lambda rng: (rng.normal(size=(4, 4)) + 4 * np.eye(4), rng.normal(size=4)))
def linear_solve_energy(A, b):
    x = np.linalg.solve(A, b)
    return np.dot(x, b) + np.linalg.det(A) * 0.01 + np.trace(np.linalg.inv(A))


@case(lambda rng: (rng.normal(size=(5, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 4))))
def attention_softmax(Q, K, V):
    scores = Q @ K.T / math.sqrt(Q.shape[1])
    out = np.zeros_like(V)
    for i in range(scores.shape[0]):
        row = scores[i] - np.max(scores[i])
        weights = np.exp(row) / np.sum(np.exp(row))
        out[i] = weights @ V
    return np.sum(out * out)


@case(lambda rng: (rng.normal(size=(4, 6)), rng.random(6) + 0.5, rng.normal(size=6)))
def layer_norm(x, gamma, beta):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        mu = np.mean(x[i])
        var = np.mean((x[i] - mu) ** 2)
        out[i] = (x[i] - mu) / np.sqrt(var + 1e-5) * gamma + beta
    return np.sum(out ** 3)


@case(lambda rng: (rng.normal(size=(6, 3)), rng.random(3) + 0.5))
def batch_norm_columns(x, scale):
    mu = np.sum(x, axis=0) / x.shape[0]
    centered = x - mu
    var = np.sum(centered * centered, axis=0) / x.shape[0]
    return np.sum(np.tanh(centered / np.sqrt(var + 1e-3) * scale))


@case(lambda rng: (rng.normal(size=7),))
def masks_and_integer_indices(x):
    positive = x[x > 0]
    picked = x[np.array([0, 2, 4])]
    return np.sum(positive ** 2) + np.sum(picked) * 3.0 + np.sum(np.where(x > 0.5, x, -x))


@case(lambda rng: (rng.normal(size=8), rng.normal(size=8)))
def strided_slices(x, y):
    even, odd = x[::2], x[1::2]
    return np.sum(even * odd) + np.dot(y[::-1], x) + np.sum(x[1:] - x[:-1])


@case(lambda rng: (rng.normal(size=(3, 4)),))
def reshapes_and_views(A):
    B = A.reshape((4, 3))
    C = A.T @ A
    flat = A.ravel()
    return np.sum(B * B.copy()) + np.trace(C) + np.sum(np.cumsum(flat)) + np.sum(np.transpose(A)[0])


@case(lambda rng: (rng.normal(size=(2, 3)), rng.normal(size=(2, 3))))
def concatenate_and_stack(a, b):
    c = np.concatenate((a, b))
    s = np.stack((a, b))
    h = np.hstack((a[0], b[1]))
    v = np.vstack((a, b))
    return np.sum(c * v) + np.sum(s ** 2) + np.sum(h)


@case(lambda rng: (rng.normal(size=5), rng.normal(size=5)))
def outer_and_norm(x, y):
    M = np.outer(x, y)
    return np.linalg.norm(M) + np.linalg.norm(x) * np.sum(np.abs(y))


@case(lambda rng: (rng.random(6) + 0.5, rng.random(6) + 0.5))
def elementwise_zoo(x, y):
    return np.sum(np.exp2(x) + np.log2(x) + np.log10(y) + np.expm1(x) + np.log1p(y) + np.cbrt(x)
                  + np.square(y) + np.reciprocal(x) + np.hypot(x, y) + np.arctan2(x, y)
                  + np.logaddexp(x, y) + np.power(x, y) + np.sinh(x) * np.cosh(y))


@case(lambda rng: (rng.normal(size=6), 0.3))
def clip_and_extremes(x, t):
    c = np.clip(x, -0.5, 0.5)
    return np.sum(c) + np.max(x) * t - np.min(x) + np.sum(np.fmax(x, t)) + np.sum(np.minimum(x, t))


@case(lambda rng: (rng.normal(size=4) * 0.3 + 1.0,))
def products(x):
    return np.prod(x) + np.prod(x[1:] * 2.0)


@case(lambda rng: (rng.normal(size=(5, 2)), 0.1, 3))
def particle_step(pos, dt, steps):
    vel = np.zeros_like(pos)
    for _ in range(steps):
        center = np.sum(pos, axis=0) / pos.shape[0]
        force = center - pos
        vel += dt * force
        pos = pos + dt * vel
    return np.sum(pos[:, 0] ** 2) + np.sum(pos[:, 1])


@case(lambda rng: (rng.normal(size=4), rng.normal(size=(4, 4)) * 0.3))
def recurrent_unroll(h0, W):
    h = h0
    total = 0.0
    for t in range(5):
        h = np.tanh(W @ h + 0.1 * t)
        total += np.sum(h)
    return total


@case(lambda rng: (rng.normal(size=6), 1.5))
def full_linspace_allocation(x, a):
    base = np.full(6, a)
    ramp = np.linspace(0.0, a, 6)
    eye = np.eye(6)
    return np.sum(x * base + ramp) + np.sum(eye @ x) + np.sum(np.arange(6) * x)


@case(lambda rng: (rng.normal(size=5),))
def in_place_array_updates(x):
    y = x.copy()
    y *= 2.0
    y += x * x
    y -= 0.5
    y /= 3.0
    y[1:3] += 1.0
    return np.sum(y ** 2)


@case(lambda rng: (rng.normal(size=(3, 3)), rng.normal(size=3)))
def matrix_methods(A, v):
    return A.dot(v).sum() + A.sum(axis=0)[1] + A.mean() * A.max() - A.min() + A.T.dot(v)[0]


@case(lambda rng: (rng.random(10) + 0.1,))
def log_likelihood(p):
    q = p / np.sum(p)
    return -np.sum(q * np.log(q))


@case(lambda rng: (rng.normal(size=(4, 3)), rng.normal(size=3)))
def broadcast_rows_columns(A, b):
    rows = A + b
    cols = A * A[:, 0:1]
    return np.sum(rows * cols) + np.sum(A / (1.0 + b * b))


@case(lambda rng: (rng.normal(size=8), 0.7))
def piecewise_and_sign(x, a):
    return np.sum(np.abs(x) * a + np.sign(x) * x + np.floor(x) + np.where(x < 0, a * x, x * x))


@case(lambda rng: (rng.normal(size=6),))
def random_constants_inside(x):
    noise = np.random.normal(0.0, 1.0, 6)
    return np.sum(x * x) + 0.0 * np.sum(noise)
