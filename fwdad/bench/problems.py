"""The benchmark problems as plain Python: loops over floats and arrays, nothing clever.

These are the functions fwdad differentiates, CPython runs as a value oracle and the peers
in :mod:`fwdad.bench.peers` re-implement by hand. Keep them in the subset fwdad and Numba
both accept (scalar loops, ``range``, float arithmetic) so one source serves all three.
The one copy of each: the benchmarks (fwdad.bench, benchmarks/gpu_check.py) and the tests
(tests/programs/cuda_programs.py) import them from here.
"""
import numpy as np

LORENZ_DT = 0.001                      # lorenz_euler's step size, fixed as in the issue
LORENZ_PARAMS = (10.0, 28.0, 8.0 / 3.0)  # classic (sigma, rho, beta)


def rosenbrock(x):
    """Extended Rosenbrock function of a 1-D array, written as an explicit element loop."""
    total = 0.0
    for i in range(len(x) - 1):
        total += 100.0 * (x[i + 1] - x[i] * x[i]) ** 2 + (1.0 - x[i]) ** 2
    return total


def lorenz_euler(s, r, b, n):
    """x + y + z after n explicit Euler steps (dt = 0.001) of Lorenz from (1, 1, 1)."""
    x = 1.0
    y = 1.0
    z = 1.0
    dt = 0.001
    for i in range(n):
        x_rate = s * (y - x)
        y_rate = x * (r - z) - y
        z_rate = x * y - b * z
        x = x + dt * x_rate
        y = y + dt * y_rate
        z = z + dt * z_rate
    return x + y + z


def lorenz_rk4(s, r, b, x0, y0, z0, n, dt):
    """x + y + z after n classic Runge-Kutta-4 steps of Lorenz from (x0, y0, z0)."""
    x = x0
    y = y0
    z = z0
    h = 0.5 * dt
    for i in range(n):
        k1x = s * (y - x)
        k1y = x * (r - z) - y
        k1z = x * y - b * z
        x2 = x + h * k1x
        y2 = y + h * k1y
        z2 = z + h * k1z
        k2x = s * (y2 - x2)
        k2y = x2 * (r - z2) - y2
        k2z = x2 * y2 - b * z2
        x3 = x + h * k2x
        y3 = y + h * k2y
        z3 = z + h * k2z
        k3x = s * (y3 - x3)
        k3y = x3 * (r - z3) - y3
        k3z = x3 * y3 - b * z3
        x4 = x + dt * k3x
        y4 = y + dt * k3y
        z4 = z + dt * k3z
        k4x = s * (y4 - x4)
        k4y = x4 * (r - z4) - y4
        k4z = x4 * y4 - b * z4
        x = x + dt / 6.0 * (k1x + 2.0 * k2x + 2.0 * k3x + k4x)
        y = y + dt / 6.0 * (k1y + 2.0 * k2y + 2.0 * k3y + k4y)
        z = z + dt / 6.0 * (k1z + 2.0 * k2z + 2.0 * k3z + k4z)
    return x + y + z


def beale(x, y):
    """Beale's function; minimum 0 at (3, 0.5)."""
    return ((1.5 - x + x * y) ** 2 + (2.25 - x + x * y * y) ** 2
            + (2.625 - x + x * y * y * y) ** 2)


def rosenbrock2(x, y):
    """Two-dimensional Rosenbrock with a = 1, b = 100; minimum 0 at (1, 1)."""
    return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2


def quadratic(x, a):
    """A weighted sum of squares of an array around a scalar: forward gradients of both."""
    s = 0.0
    for i in range(x.shape[0]):
        s += (x[i] - a) ** 2 * (i + 1.0)
    return s + a * a


def batch_loss(w, b, X, y):
    """Mean squared error of a linear model on a minibatch (rows of X, targets y)."""
    s = 0.0
    for i in range(X.shape[0]):
        r = b - y[i]
        for j in range(X.shape[1]):
            r += w[j] * X[i, j]
        s += r * r
    return s / X.shape[0]


def allocates(x):
    """Makes a scratch array: device code cannot, so target="cuda" refuses it at that line."""
    y = np.zeros_like(x)
    for i in range(x.shape[0]):
        y[i] = x[i] * 2.0
    return y[0]


def central_difference(f, args, tangents, eps=1e-6):
    """(f(args + eps t) - f(args - eps t)) / 2 eps; tangents None mark inactive args."""
    plus = [a if t is None else a + eps * t for a, t in zip(args, tangents)]
    minus = [a if t is None else a - eps * t for a, t in zip(args, tangents)]
    return (f(*plus) - f(*minus)) / (2.0 * eps)


__all__ = ["rosenbrock", "lorenz_euler", "lorenz_rk4", "beale", "rosenbrock2", "quadratic", "batch_loss",
           "allocates", "central_difference", "LORENZ_DT", "LORENZ_PARAMS"]
