"""The 2-D Brusselator, integrated implicitly with a sparse Jacobian found by fwdad.

SciML's standard sparse-AD benchmark (N = 32: 2 species on a 32 x 32 periodic grid, 2048
states, a 5-point Laplacian with alpha = 10, the forcing pulse switched on at t = 1.1):
scipy.integrate.solve_ivp(method="BDF") with

  * jac= fwdad's sparse Jacobian (pattern found from the code, colored, one compressed pass),
  * SciPy's own finite differences with jac_sparsity= (the same pattern, grouped columns),
  * a dense Jacobian (fwdad's f.jacobian, 2048 directions; skipped with --fast),

each against a tight-tolerance reference solution. Run: python examples/brusselator_implicit.py
[--fast] (a small grid and a short time span, as the test suite does).
"""
import argparse
import time

import numpy as np
from scipy.integrate import solve_ivp

import fwdad
from fwdad.bench.sparse import brusselator_2d, initial_state

# The right-hand side is plain loop code over the grid (read it in fwdad/bench/sparse.py, where
# `fwdad bench --only sparse` times it); fwdad differentiates it with respect to the state u.
brusselator = fwdad.forward_grad(brusselator_2d, wrt="u")


def solve(n, t_end, rtol, atol, jacobian=None, sparsity=None):
    """(solution, seconds) of solve_ivp BDF; jacobian: "sparse", "dense" or None (SciPy's FD)."""
    u0 = initial_state(n)
    fun = lambda t, u: brusselator(t, u, n)
    jac = None
    if jacobian == "sparse":
        jac = lambda t, u: brusselator.jacobian(t, u, n, sparse=True)[1]
    elif jacobian == "dense":
        jac = lambda t, u: brusselator.jacobian(t, u, n)[1]
    start = time.perf_counter()
    solution = solve_ivp(fun, (0.0, t_end), u0, method="BDF", rtol=rtol, atol=atol, jac=jac,
                         jac_sparsity=sparsity if jacobian is None else None)
    return solution, time.perf_counter() - start


def warm_up(n):
    """Compile everything once, so that the timings below are of running, not compiling."""
    u0 = initial_state(n)
    brusselator(0.0, u0, n)
    brusselator.jacobian(0.0, u0, n, sparse=True)
    return brusselator.sparsity(0.0, u0, n)


def main(fast=False, dense=None):
    n, t_end = (8, 1.5) if fast else (32, 11.5)
    dense = not fast if dense is None else dense
    pattern = warm_up(n)
    print(f"Brusselator 2-D, N = {n}: {2 * n * n} states, Jacobian {pattern.nnz} nonzeros, "
          f"{pattern.n_colors} colors")
    reference, _ = solve(n, t_end, 1e-10, 1e-10, "sparse")
    rows = [("fwdad sparse jac=", "sparse", None), ("SciPy FD, jac_sparsity=", None, pattern.matrix)]
    if dense:
        rows.append(("fwdad dense jac=", "dense", None))
    results = {}
    for label, jacobian, sparsity in rows:
        solution, seconds = solve(n, t_end, 1e-6, 1e-6, jacobian, sparsity)
        error = np.abs(solution.y[:, -1] - reference.y[:, -1]).max()
        results[label] = (seconds, solution.nfev, solution.njev, error)
        print(f"  {label:<26} {seconds:8.3f} s  nfev {solution.nfev:6d}  njev {solution.njev:4d}  "
              f"max error vs reference {error:.2e}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="a small grid and a short time span")
    main(parser.parse_args().fast)
