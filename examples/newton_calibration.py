"""Calibrate the damped driven oscillator by Newton's method on fwdad's exact Hessian.

The model and data are those of oscillator_calibration.py (RK4 in a plain Python loop, three
parameters: damping ratio zeta, natural frequency omega, forcing amplitude A). fwdad gives the
gradient (`value_and_grad`) and the Hessian (`hessian`: forward over forward, fwdad
differentiating its own tangent code), and we run:

* Newton's method with a backtracking line search (a step along -H^-1 g, or along -g where H
  is not positive definite);
* scipy.optimize.minimize(method="trust-exact") fed with the same gradient and Hessian;
* scipy.optimize.minimize(method="BFGS") with the gradient only, for comparison.

    python examples/newton_calibration.py [--quick]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oscillator_calibration import INITIAL_GUESS, TRUE_PARAMS, make_observations, oscillator_loss  # noqa: E402


def problem(quick):
    """(loss(theta), gradient(theta), hessian(theta)) over theta = (zeta, omega, A)."""
    n_obs, substeps, dt = (60, 5, 0.02) if quick else (200, 10, 0.01)
    observed = make_observations(n_obs, substeps, dt)

    def loss(theta):
        return oscillator_loss(*theta, observed, substeps, dt)

    def gradient(theta):
        _, grads = oscillator_loss.value_and_grad(*theta, observed, substeps, dt)
        return np.array(grads[:3])

    def hessian(theta):
        blocks = oscillator_loss.hessian(*theta, observed, substeps, dt)
        return np.array([[blocks[i][j] for j in range(3)] for i in range(3)])
    return loss, gradient, hessian


def newton(loss, gradient, hessian, theta, tolerance=1e-10, max_iterations=50):
    """Newton steps with backtracking (Armijo); -g where H is not positive definite."""
    evaluations = 0
    for iteration in range(1, max_iterations + 1):
        g, H = gradient(theta), hessian(theta)
        if np.linalg.norm(g) < tolerance:
            return theta, iteration - 1, evaluations
        try:
            np.linalg.cholesky(H)
            step = -np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            step = -g
        value, t = loss(theta), 1.0
        while loss(theta + t * step) > value + 1e-4 * t * g @ step and t > 1e-12:
            t *= 0.5
            evaluations += 1
        theta = theta + t * step
        evaluations += 1
    return theta, max_iterations, evaluations


def run(quick=False):
    from scipy.optimize import minimize
    loss, gradient, hessian = problem(quick)
    start = np.array(INITIAL_GUESS)
    loss(start), gradient(start), hessian(start)        # compile once, outside the timings
    rows = []
    began = time.perf_counter()
    theta, iterations, evaluations = newton(loss, gradient, hessian, start)
    rows.append(("Newton (fwdad Hessian)", iterations, evaluations, theta, time.perf_counter() - began))
    for method, hess in (("trust-exact", hessian), ("BFGS", None)):
        began = time.perf_counter()
        result = minimize(loss, start, jac=gradient, hess=hess, method=method, options={"gtol": 1e-9})
        rows.append((f"scipy {method}" + (" (fwdad Hessian)" if hess else " (gradient only)"), result.nit,
                     result.nfev, result.x, time.perf_counter() - began))
    print(f"{'method':38} {'iterations':>10} {'loss evals':>10} {'final loss':>12} "
          f"{'|theta - true|':>15} {'time (s)':>9}")
    for name, iterations, evaluations, theta, seconds in rows:
        print(f"{name:38} {iterations:10d} {evaluations:10d} {loss(theta):12.6g} "
              f"{np.linalg.norm(theta - np.array(TRUE_PARAMS)):15.4g} {seconds:9.3f}")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a shorter trajectory")
    run(parser.parse_args().quick)
