"""Calibrating many sensors at once with scipy.optimize.least_squares and fwdad's sparse Jacobian.

Each of n sensors decays as a_i exp(-k_i t); we observe them at m times with noise and fit the
2n parameters, with a smoothness penalty tying neighbouring sensors together. The residual
vector (n m + 2 (n - 1) entries) depends on each parameter through a handful of entries, so the
Jacobian is sparse: fwdad finds its pattern from the loop code, colors it (a few colors for any
n) and evaluates it in one compressed forward pass, passed as `jac=` to least_squares (method
"trf", which takes sparse Jacobians). SciPy's finite differences with `jac_sparsity=` (the same
pattern) run beside it. Run: python examples/calibration_least_squares.py [--fast]
"""
import argparse
import math
import time

import numpy as np
from scipy.optimize import least_squares

import fwdad


@fwdad.forward_grad(wrt="theta")
def residuals(theta, times, data, smoothing):
    """Model minus data for every sensor and time, then the smoothness penalties."""
    n, m = data.shape
    r = np.empty(n * m + 2 * (n - 1))
    for i in range(n):
        amplitude, rate = theta[i], theta[n + i]
        for j in range(m):
            r[i * m + j] = amplitude * math.exp(-rate * times[j]) - data[i, j]
    for i in range(n - 1):
        r[n * m + i] = smoothing * (theta[i + 1] - theta[i])
        r[n * m + n - 1 + i] = smoothing * (theta[n + i + 1] - theta[n + i])
    return r


def synthetic(n, m, seed=0):
    """Smoothly varying true parameters, noisy observations, and a flat starting guess."""
    rng = np.random.default_rng(seed)
    position = np.linspace(0.0, 1.0, n)
    truth = np.concatenate([2.0 + np.sin(3.0 * position), 0.5 + 0.3 * np.cos(2.0 * position)])
    times = np.linspace(0.0, 4.0, m)
    data = truth[:n, None] * np.exp(-truth[n:, None] * times) + 0.01 * rng.normal(size=(n, m))
    start = np.concatenate([np.full(n, 1.0), np.full(n, 1.0)])
    return truth, times, data, start


def fit(start, times, data, smoothing, jac=None, sparsity=None):
    fun = lambda theta: residuals(theta, times, data, smoothing)
    began = time.perf_counter()
    result = least_squares(fun, start, jac=jac if jac is not None else "2-point", jac_sparsity=sparsity,
                           method="trf", xtol=1e-12, ftol=1e-12, gtol=1e-12)
    return result, time.perf_counter() - began


def main(fast=False):
    n, m, smoothing = (20, 10, 0.1) if fast else (400, 20, 0.1)
    truth, times, data, start = synthetic(n, m)
    pattern = residuals.sparsity(start, times, data, smoothing)
    residuals.jacobian(start, times, data, smoothing, sparse=True)          # compile once
    print(f"{n} sensors x {m} times: Jacobian {pattern.shape[0]} x {pattern.shape[1]}, "
          f"{pattern.nnz} nonzeros, {pattern.n_colors} colors")
    jac = lambda theta: residuals.jacobian(theta, times, data, smoothing, sparse=True)[0]
    results = {}
    for label, kwargs in (("fwdad sparse jac=", dict(jac=jac)),
                          ("SciPy FD, jac_sparsity=", dict(sparsity=pattern.matrix))):
        result, seconds = fit(start, times, data, smoothing, **kwargs)
        error = np.abs(result.x - truth).max()
        results[label] = (seconds, result.nfev, result.njev, result.cost, error)
        print(f"  {label:<24} {seconds:7.3f} s  nfev {result.nfev:4d}  njev {result.njev:4d}  "
              f"cost {result.cost:.6e}  max |theta - truth| {error:.3f}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="20 sensors instead of 400")
    main(parser.parse_args().fast)
