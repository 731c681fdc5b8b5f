"""`fwdad reproduce` on tiny settings: real outcomes, every table and figure, a valid JSON, and a
report that is consistent with itself (derived columns agree with their sources, a quantity
shown twice is one number, a comparison that means nothing is a dash with its reason)."""
import json
import re

import numpy as np
import pytest

import fwdad
from fwdad.models import init_mlp, mlp_loss, mlp_sizes, mlp_value_and_grad
from fwdad.reproduce import Settings, reproduce
from fwdad.reproduce.common import Timing, mnist_run, time_calls
from fwdad.reproduce.mnist import compare


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    results = reproduce(out=str(out), settings=Settings.tiny(), mnist="digits", show_progress=False,
                        log=lambda *a: None, experiments=PAPER_EXPERIMENTS)
    return out, results, (out / "report.md").read_text()


PAPER_EXPERIMENTS = tuple(e for e in fwdad.reproduce.EXPERIMENTS if e != "beyond")   # beyond: its own test


def section(text, heading):
    """The Markdown table rows (lists of cells) of the section that starts with `heading`."""
    body = text.split(heading, 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    lines = [line for line in body.splitlines() if line.startswith("| ") and not line.startswith("|---")]
    header, *rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    return [dict(zip(header, row)) for row in rows]


def median_of(cell):
    """The median of a 'median (low–high)' cell."""
    return float(cell.split(" (")[0])


def close(a, b, rel=0.01):
    """Equal up to the three significant digits the report prints."""
    return a == pytest.approx(b, rel=rel)


def test_report_has_every_table_and_figure(report):
    out, results, text = report
    for heading in ("### Beale", "### Rosenbrock", "### MNIST logistic regression", "### MNIST MLP",
                    "### Cost of a forward gradient", "### Depth scaling", "## Settings"):
        assert heading in text
    for figure in ("beale.png", "rosenbrock.png", "mnist_logreg.png", "mnist_mlp.png", "depth.png"):
        assert f"]({figure})" in text
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "digits" in text and "8x8" in text                      # the fallback is announced
    data = json.loads((out / "results.json").read_text())
    assert data["settings"]["name"] == "tiny" and data["experiments"] == list(PAPER_EXPERIMENTS)
    assert "median of at least 5" in text


def test_iterations_per_second_is_one_over_time_per_iteration(report):
    _, results, text = report
    for heading, unit in (("### Beale", 1e9), ("### Rosenbrock", 1e9), ("### MNIST logistic regression", 1e3),
                          ("### MNIST MLP", 1e3)):
        rows = section(text, heading)
        assert rows
        for row in rows:
            time_column = next(k for k in row if "/ iteration" in k)
            assert close(unit / median_of(row[time_column]), float(row["iterations / s"]))


def test_cost_ratios_come_from_the_times_shown(report):
    _, results, text = report
    for row in section(text, "### Cost of a forward gradient"):
        if not row["implementation"].startswith("fwdad"):
            continue
        value = median_of(row["value"])
        assert close(median_of(row["value + JVP"]) / value, float(row["R_f"]), rel=0.02)
        assert close(median_of(row["value + gradient"]) / value, float(row["R_b"]), rel=0.02)
        assert close(median_of(row["forward gradient"]) / value, float(row["R (forward gradient)"]), rel=0.02)
        assert float(row["R (forward gradient)"]) >= float(row["R_f"])
    for m in results["cost"]["models"].values():
        assert m["R_forward_gradient"] >= m["R_f"] > 0 and m["times"]["value"]["repeats"] >= 5


def test_the_paper_mlp_is_one_measurement_in_both_tables(report):
    _, results, text = report
    mlp = next(r for r in section(text, "### Cost of a forward gradient") if r["implementation"] == "fwdad (mlp)")
    depth_two = next(r for r in section(text, "### Depth scaling") if r["hidden layers"] == "2")
    assert mlp["value"] == depth_two["value (ms, range)"]
    assert (mlp["R_f"], mlp["R_b"]) == (depth_two["R_f"], depth_two["R_b"])
    row = next(r for r in results["depth"]["rows"] if r["depth"] == 2)
    assert row["times"] == results["cost"]["models"]["mlp"]["times"]


def test_mnist_runs_of_one_method_share_their_time_per_iteration(report):
    _, results, text = report
    for model in ("logreg", "mlp"):
        timing = results[model]["time_per_iteration"]
        assert all(t["repeats"] >= 5 for t in timing.values())
        for row in section(text, f"### MNIST {'logistic' if model == 'logreg' else 'MLP'}"):
            method = "forward" if row["method"] == "forward gradient" else "backprop"
            keys = [k for k in timing if k.startswith(method)]
            assert any(close(median_of(row["ms / iteration (range)"]), timing[k]["median"] * 1e3) for k in keys)


def test_t_ratio_is_a_number_or_a_dash_with_its_reason(report):
    _, results, text = report
    for heading, model in (("### MNIST logistic regression", "logreg"), ("### MNIST MLP", "mlp")):
        assert "**What this run shows.**" in text.split(heading, 1)[1].split("###", 1)[0]
        for row in section(text, heading):
            cell = row["T_f / T_b"]
            if row["method"] == "forward gradient":
                assert re.fullmatch(r"[0-9.e+-]+|– \(.+\)", cell), cell
    for name in ("beale", "rosenbrock"):
        cell = section(text, f"### {name.capitalize()}")[0]["T_f / T_b"]
        assert re.fullmatch(r"[0-9.e+-]+|– \(.+\)", cell), cell
    mlp = [r for r in results["mlp"]["runs"].values() if r["method"] == "forward"]
    assert all(r["T_f/T_b"] is None and r["T_reason"] for r in mlp)      # 6 iterations: nothing to compare


def fake_runs(forward_losses, backprop_losses, points=10):
    """Two runs as mnist.record shapes them, with one chunk per `points` iterations."""
    def run(method, losses):
        losses = np.asarray(losses, float)
        return {"method": method, "setting": {"architecture": "4-2"}, "smoothed": losses,
                "final_smoothed_loss": losses[-1], "start_smoothed_loss": losses[len(losses) // 20],
                "chunk_seconds_per_iteration": [1e-3] * points}
    setting = mnist_run(0.1, len(backprop_losses))
    name = "lr 0.1, k 0.0001, " + f"{len(backprop_losses)} it"
    return setting, {"runs": {f"forward {name}": run("forward", forward_losses),
                              f"backprop {name}": run("backprop", backprop_losses)},
                     "time_per_iteration": {"forward 4-2": {"median": 2e-3}, "backprop 4-2": {"median": 1e-3}}}


@pytest.mark.parametrize("forward, backprop, points, reason", [
    (np.linspace(2, 1, 100), np.linspace(2, 1.5, 100), 10, None),
    (np.linspace(1, 0.5, 100), np.linspace(2, 1.5, 100), 10, "starts below"),
    (np.linspace(2, 1.9, 100), np.linspace(2, 1.5, 100), 10, "not reached"),
    (np.linspace(2, 1, 100), np.linspace(2, 2.5, 100), 10, "did not fall"),
    (np.linspace(2, 1, 100), np.linspace(2, 1.5, 100), 3, "too few"),
])
def test_t_ratio_reasons(forward, backprop, points, reason):
    setting, out = fake_runs(forward, backprop, points)
    setting["architecture"] = "4-2"
    compare(out, setting)
    run = out["runs"][next(k for k in out["runs"] if k.startswith("forward"))]
    if reason is None:
        reached = int(np.nonzero(forward <= 1.5)[0][0]) + 1
        assert run["T_f/T_b"] == pytest.approx(reached * 2e-3 / (100 * 1e-3)) and run["T_reason"] is None
    else:
        assert run["T_f/T_b"] is None and reason in run["T_reason"]


def test_timing_protocol():
    calls = []
    t = time_calls(lambda: calls.append(1), repeats=5, min_time=0.001)
    assert t.repeats == 5 and t.low <= t.median <= t.high and len(calls) > 5
    both = Timing(2.0, 1.0, 3.0, 5) + Timing(1.0, 0.5, 2.0, 7)
    assert (both.median, both.low, both.high, both.repeats) == (3.0, 1.5, 5.0, 5)
    assert Timing.of([3, 1, 2, 5, 4]).text(1e3) == "3000 (1000–5000)"          # no 3e+03 in a table


def test_losses_fall(report):
    _, results, _ = report
    for name in ("beale", "rosenbrock"):
        for method in ("forward", "exact"):
            curves = results[name][method]["loss_curves"]
            assert all(c[-1] < c[0] for c in curves)
    for run in results["logreg"]["runs"].values():
        assert run["smoothed_loss"][-1] < run["smoothed_loss"][0]
        assert run["val_loss"][-1] < run["val_loss"][0]
        assert 0 <= run["test_accuracy"] <= 1
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


def test_cost_is_an_experiment_of_its_own(tmp_path):
    settings = Settings.tiny()
    settings.memory = False
    results = reproduce(out=str(tmp_path), settings=settings, experiments=("cost",), log=lambda *a: None)
    text = (tmp_path / "report.md").read_text()
    assert "### Cost of a forward gradient" in text and "### MNIST" not in text and "### Beale" not in text
    assert set(results["cost"]["models"]) == {"logreg", "mlp"}


@pytest.mark.slow
def test_beyond_reports_every_method_and_its_goals(tmp_path):
    """Experiment `beyond` (forward-only training): a row per method, ratios computed from the
    columns shown, the cosine of the exact methods 1, each goal stated met or missed."""
    results = reproduce(out=str(tmp_path), settings=Settings.tiny(), mnist="digits", show_progress=False,
                        log=lambda *a: None, experiments=("beyond",))
    text = (tmp_path / "report.md").read_text()
    rows = {r["method"]: r for r in section(text, "### Forward-only training")}
    assert set(rows) == {r["label"] for r in results["beyond"]["runs"].values()} and len(rows) == 5
    backprop = median_of(rows["backpropagation"]["ms / step (range)"])
    weight = float(rows["weight perturbation"]["mean cos²"])
    for label, row in rows.items():
        assert close(float(row["time × backprop"]), median_of(row["ms / step (range)"]) / backprop, rel=0.02)
        if row["mean cos²"] == "1 (exact)":
            assert label.startswith("backpropagation")
        else:
            assert close(float(row["cos² × weight perturbation"]), float(row["mean cos²"]) / weight, rel=0.02)
    goals = text.split("**Goals** (issue):", 1)[1].split("\n", 1)[0]
    assert goals.count(": met") + goals.count(": missed") == 4
    assert (tmp_path / "beyond.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    json.loads((tmp_path / "results.json").read_text())
