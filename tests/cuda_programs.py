"""Programs for the CUDA tests (module level: fwdad reads their source)."""
import numpy as np
from numba import cuda

import fwdad


def lorenz_rk4(s, r, b, x, y, z, n, dt):
    for _ in range(n):
        k1x = s * (y - x); k1y = x * (r - z) - y; k1z = x * y - b * z
        x2 = x + 0.5 * dt * k1x; y2 = y + 0.5 * dt * k1y; z2 = z + 0.5 * dt * k1z
        k2x = s * (y2 - x2); k2y = x2 * (r - z2) - y2; k2z = x2 * y2 - b * z2
        x3 = x + 0.5 * dt * k2x; y3 = y + 0.5 * dt * k2y; z3 = z + 0.5 * dt * k2z
        k3x = s * (y3 - x3); k3y = x3 * (r - z3) - y3; k3z = x3 * y3 - b * z3
        x4 = x + dt * k3x; y4 = y + dt * k3y; z4 = z + dt * k3z
        k4x = s * (y4 - x4); k4y = x4 * (r - z4) - y4; k4z = x4 * y4 - b * z4
        x += dt / 6.0 * (k1x + 2.0 * k2x + 2.0 * k3x + k4x)
        y += dt / 6.0 * (k1y + 2.0 * k2y + 2.0 * k3y + k4y)
        z += dt / 6.0 * (k1z + 2.0 * k2z + 2.0 * k3z + k4z)
    return x + y + z


def quadratic(x, a):
    s = 0.0
    for i in range(x.shape[0]):
        s += (x[i] - a) ** 2 * (i + 1.0)
    return s + a * a


def rosenbrock2(x, y):
    return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2


def scale_into(out, s, c):
    for j in range(out.shape[0]):
        out[j] = s * c * (j == 1)
    return out[1]


def allocates(x):
    y = np.zeros_like(x)
    for i in range(x.shape[0]):
        y[i] = x[i] * 2.0
    return y[0]


def returns_array(x):
    return x * 2.0


def lorenz_kernel_with_user_jvp():
    """A user's own kernel calling fwdad's generated device function: max |error| vs the CPU."""
    f = fwdad.forward_grad(lorenz_rk4)
    jvp = f.cuda_jvp(10.0, 28.0, 2.5, 1.0, 1.0, 1.0, 20, 0.01, active=(0, 1, 2))

    @cuda.jit
    def sweep(rho, out_value, out_tangent):
        i = cuda.grid(1)
        if i < rho.shape[0]:
            value, tangent = jvp(10.0, rho[i], 2.5, 1.0, 1.0, 1.0, 20, 0.01, 0.0, 1.0, 0.0)
            out_value[i] = value
            out_tangent[i] = tangent

    rho = np.linspace(20.0, 30.0, 16)
    value, tangent = np.zeros(16), np.zeros(16)
    sweep[1, 32](rho, value, tangent)
    expected = [f.jvp((10.0, r, 2.5, 1.0, 1.0, 1.0, 20, 0.01), (0.0, 1.0, 0.0, None, None, None, None, None))
                for r in rho]
    return float(max(np.abs(tangent - [e[1] for e in expected]).max(),
                     np.abs(value - [e[0] for e in expected]).max()))


def batch_loss(w, b, X, y):
    """Mean squared error of a linear model on a minibatch (rows of X, targets y)."""
    s = 0.0
    for i in range(X.shape[0]):
        r = b - y[i]
        for j in range(X.shape[1]):
            r += w[j] * X[i, j]
        s += r * r
    return s / X.shape[0]
