"""The sparse-Jacobian examples run (their fast variants) and agree with SciPy's own FD runs."""
import importlib.util
import os

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "examples")


def example(name):
    spec = importlib.util.spec_from_file_location(f"fwdad_example_{name}", os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_brusselator_implicit_fast():
    results = example("brusselator_implicit").main(fast=True)
    seconds, nfev, njev, error = results["fwdad sparse jac="]
    fd_error = results["SciPy FD, jac_sparsity="][3]
    assert njev >= 1 and error < 1e-4 and error <= 10 * fd_error + 1e-8


def test_calibration_least_squares_fast():
    results = example("calibration_least_squares").main(fast=True)
    seconds, nfev, njev, cost, error = results["fwdad sparse jac="]
    assert error < 0.05
    assert cost == pytest.approx(results["SciPy FD, jac_sparsity="][3], rel=1e-6)
