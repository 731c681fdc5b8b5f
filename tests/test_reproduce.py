"""`fwdad reproduce` on tiny settings: real outcomes, every table and figure, a valid JSON."""
import json
import os

import numpy as np
import pytest

import fwdad
from fwdad.models import init_mlp, mlp_loss, mlp_sizes, mlp_value_and_grad
from fwdad.reproduce import Settings, reproduce


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    results = reproduce(out=str(out), settings=Settings.tiny(), mnist="digits", show_progress=False,
                        log=lambda *a: None)
    return out, results


def test_report_has_every_table_and_figure(report):
    out, results = report
    text = (out / "report.md").read_text()
    for heading in ("### Beale", "### Rosenbrock", "### MNIST logistic regression", "### MNIST MLP",
                    "### Cost of a forward gradient", "### Depth scaling", "## Settings"):
        assert heading in text
    for figure in ("beale.png", "rosenbrock.png", "mnist_logreg.png", "mnist_mlp.png", "depth.png"):
        assert f"]({figure})" in text
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "digits" in text and "8x8" in text                      # the fallback is announced
    data = json.loads((out / "results.json").read_text())
    assert data["settings"]["name"] == "tiny" and data["experiments"] == list(fwdad.reproduce.EXPERIMENTS)


def test_losses_fall(report):
    _, results = report
    for name in ("beale", "rosenbrock"):
        for method in ("forward", "exact"):
            curves = results[name][method]["loss_curves"]
            assert all(c[-1] < c[0] for c in curves)
    for run in results["logreg"]["runs"].values():
        assert run["smoothed_loss"][-1] < run["smoothed_loss"][0]
        assert run["val_loss"][-1] < run["val_loss"][0]
    for run in results["mlp"]["runs"].values():                  # six steps: only sanity
        assert np.isfinite(run["val_loss"]).all() and 0 <= run["val_accuracy"][-1] <= 1
    cost = results["cost"]["models"]
    assert cost["mlp"]["R_f"] > 1 and cost["mlp"]["R_b"] > 1
    assert all(cost[m]["memory_mib"]["jvp"] >= 0 for m in ("logreg", "mlp"))
    assert len(results["depth"]["memory"]["grad"]) == 1


def test_backprop_matches_fwdad_exact_gradient():
    sizes = mlp_sizes(12, 16, 2, 4)
    theta = init_mlp(sizes, 3).astype(np.float64)
    rng = np.random.default_rng(0)
    X, Y = rng.random((7, 12)), rng.integers(0, 4, 7)
    loss, grad = mlp_value_and_grad(theta, sizes, X, Y)
    value, grads = fwdad.forward_grad(mlp_loss, wrt=(0,)).value_and_grad(theta, sizes, X, Y)
    assert value == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(grads[0], grad, rtol=1e-9, atol=1e-12)


def test_unknown_experiment_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="unknown experiments"):
        reproduce(out=str(tmp_path), settings=Settings.tiny(), experiments=("beal",), log=lambda *a: None)
