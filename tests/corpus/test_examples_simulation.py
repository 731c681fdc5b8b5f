"""The simulation examples on their quick settings: calibrations recover the true parameters,
fwdad's gradients and Jacobians equal central finite differences, the Lorenz plot is a PNG.

Each example compiles its model on first use (a few seconds each); the module-scoped fixtures
run each `main(quick=True)` once.
"""
import os
import sys

import numpy as np
import pytest

from helpers import ROOT

EXAMPLES = os.path.join(ROOT, "examples")
sys.path.insert(0, EXAMPLES)

import lorenz_sensitivity  # noqa: E402
import oscillator_calibration  # noqa: E402
import sir_calibration  # noqa: E402

FITS = ("exact", "forward", "finite differences")


@pytest.fixture(scope="module")
def sir():
    return sir_calibration.main(quick=True)


@pytest.fixture(scope="module")
def oscillator():
    return oscillator_calibration.main(quick=True)


@pytest.fixture(scope="module")
def lorenz(tmp_path_factory):
    out = tmp_path_factory.mktemp("lorenz") / "sensitivity.png"
    return lorenz_sensitivity.main(quick=True, out=str(out))


def assert_recovered(results, tolerance, noise):
    """Every fit lands within `tolerance` (relative) of the true parameters, at the noise level."""
    for name in FITS:
        fit = results["fits"][name]
        assert max(fit["rel_error"]) < tolerance, (name, fit["params"], results["true_params"])
        assert fit["steps_to_target"] is not None, f"{name} never got within the target loss"
        assert fit["loss"] < 1.5 * noise ** 2 < 0.5 * fit["initial_loss"]


def assert_exact_matches_finite_differences(results):
    """Same optimizer, gradients equal to ~1e-10: the exact and finite-difference fits coincide."""
    exact, fd = results["fits"]["exact"], results["fits"]["finite differences"]
    np.testing.assert_allclose(exact["params"], fd["params"], rtol=1e-6)
    assert exact["steps_to_target"] == fd["steps_to_target"]


# ---- SIR ----------------------------------------------------------------------------------------
def test_sir_gradient_equals_finite_differences(sir):
    assert sir["gradient_rel_error"] < 1e-5
    np.testing.assert_allclose(sir["gradient_fwdad"], sir["gradient_fd"], rtol=1e-5)
    assert sir["gradient_fwdad"][0] < 0 < sir["gradient_fwdad"][1]   # beta too small, gamma too large


def test_sir_recovers_beta_and_gamma_within_2_percent(sir):
    assert_recovered(sir, 0.02, sir_calibration.NOISE)
    assert_exact_matches_finite_differences(sir)


def test_sir_loss_matches_plain_python():
    observed = sir_calibration.make_observations(30, 4)
    args = (0.4, 0.15, observed, sir_calibration.I0, 4)
    assert sir_calibration.sir_loss(*args) == pytest.approx(sir_calibration.sir_loss.py_func(*args), rel=1e-12)


# ---- oscillator ---------------------------------------------------------------------------------
def test_oscillator_gradient_equals_finite_differences(oscillator):
    assert oscillator["gradient_rel_error"] < 1e-5
    np.testing.assert_allclose(oscillator["gradient_fwdad"], oscillator["gradient_fd"], rtol=1e-5)


def test_oscillator_recovers_zeta_omega_amplitude_within_3_percent(oscillator):
    assert_recovered(oscillator, 0.03, oscillator_calibration.NOISE)
    assert_exact_matches_finite_differences(oscillator)


# ---- Lorenz -------------------------------------------------------------------------------------
def test_lorenz_jacobian_equals_finite_differences(lorenz):
    rows = lorenz["rows"]
    assert rows[-1]["T"] >= 15
    for row in rows:
        assert row["jacobian"].shape == (3, 3)
        assert row["rel_error"] < 1e-5, (row["T"], row["rel_error"])


def test_lorenz_sensitivity_grows_with_time(lorenz):
    early = max(r["column_norms"].max() for r in lorenz["rows"] if r["T"] <= 2)
    late = max(r["column_norms"].max() for r in lorenz["rows"] if r["T"] >= 14)
    assert late > 50 * early


def test_lorenz_jacobian_columns_are_jvps():
    """Each Jacobian column is the JVP along that parameter (an independent path through fwdad)."""
    steps, dt = 300, 0.01
    jac = lorenz_sensitivity.sensitivity(steps, dt)
    primals = lorenz_sensitivity.PARAMS + lorenz_sensitivity.START + (steps, dt)
    for j in range(3):
        tangents = tuple(1.0 if i == j else None for i in range(3)) + (None,) * 5
        _, column = lorenz_sensitivity.end_state.jvp(primals, tangents)
        np.testing.assert_allclose(jac[:, j], column, rtol=1e-12, atol=1e-12)


def test_lorenz_plot_is_a_png(lorenz):
    path = lorenz["plot"]
    assert os.path.getsize(path) > 10_000
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
