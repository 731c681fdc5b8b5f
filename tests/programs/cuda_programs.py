"""Programs for the CUDA tests (module level: fwdad reads their source). The benchmark problems
(Lorenz RK4, ...) are those of fwdad.bench.problems, which benchmarks/gpu_check.py runs too."""
import numpy as np
from numba import cuda

import fwdad
from fwdad.bench.problems import batch_loss, lorenz_rk4, quadratic, rosenbrock2  # noqa: F401


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
