"""The benchmark peers compute what they claim, and the harness reports it right.

Hand-written Numba JVPs are checked against central differences of their primal along a
random direction; JAX and PyTorch peers against the Numba ones (skipped when missing).
Sizes are small: the whole file runs in seconds, JIT compilation included.
"""
import json
import re
import time

import numpy as np
import pytest

from fwdad.bench import harness, peers, problems
from fwdad.bench.harness import LoopPeer, Peer, Table

HAVE = peers.available()
needs_jax = pytest.mark.skipif(not HAVE["jax"], reason="jax not installed")
needs_torch = pytest.mark.skipif(not HAVE["torch"], reason="torch not installed")
SR_B = problems.LORENZ_PARAMS


def direction(k, seed=1):
    return np.random.default_rng(seed).standard_normal(k)


# ---------------------------------------------------------------- Numba vs finite differences

def close_to_fd(jvp_value, primal, args, tangents, rtol=1e-6):
    fd = problems.central_difference(primal, args, tangents)
    assert jvp_value == pytest.approx(fd, rel=rtol, abs=1e-8)


def test_rosenbrock_jvp_matches_fd():
    x = np.random.default_rng(0).uniform(-2, 2, 50)
    v = direction(50)
    value, tangent = peers.rosenbrock_jvp_numba(x, v)
    assert value == pytest.approx(problems.rosenbrock(x), rel=1e-12)
    close_to_fd(tangent, peers.rosenbrock_numba, (x,), (v,))


def test_lorenz_euler_jvp_matches_fd():
    ds, dr, db = direction(3)
    value, tangent = peers.lorenz_euler_jvp_numba(*SR_B, 500, ds, dr, db)
    assert value == pytest.approx(problems.lorenz_euler(*SR_B, 500), rel=1e-12)
    close_to_fd(tangent, peers.lorenz_euler_numba, (*SR_B, 500), (ds, dr, db, None))


def test_lorenz_rk4_jvp_matches_fd():
    ds, dr, db = direction(3)
    args = (*SR_B, 1.0, 2.0, 3.0, 500, 0.002)
    value, tangent = peers.lorenz_rk4_jvp_numba(*args, ds, dr, db)
    assert value == pytest.approx(problems.lorenz_rk4(*args), rel=1e-12)
    close_to_fd(tangent, peers.lorenz_rk4_numba, args, (ds, dr, db) + (None,) * 5)


@pytest.mark.parametrize("name, point", [("beale", (1.2, 0.7)), ("rosenbrock2", (-1.0, 0.5))])
def test_2d_jvp_and_grad_match_fd(name, point):
    jvp = getattr(peers, f"{name}_jvp_numba")
    grad = getattr(peers, f"{name}_grad_numba")
    primal = getattr(problems, name)
    vx, vy = direction(2)
    value, tangent = jvp(*point, vx, vy)
    assert value == pytest.approx(primal(*point), rel=1e-14)
    close_to_fd(tangent, primal, point, (vx, vy))
    value_g, gx, gy = grad(*point)
    assert value_g == value and gx * vx + gy * vy == pytest.approx(tangent, rel=1e-12)


def test_rosenbrock_grad_dot_v_is_jvp():
    x, v = np.random.default_rng(2).uniform(-2, 2, 40), direction(40)
    value, g = peers.rosenbrock_grad_numba(x)
    assert value == pytest.approx(problems.rosenbrock(x), rel=1e-12)
    assert g @ v == pytest.approx(peers.rosenbrock_jvp_numba(x, v)[1], rel=1e-10)


def small_mlp(dtype=np.float64):
    params, X, Y = peers.mlp_data(batch=8, sizes=(12, 16, 16, 5), seed=3, dtype=dtype)
    return params, peers.mlp_direction(params, seed=4), X, Y


def test_mlp_jvp_matches_fd_and_backprop():
    params, tangents, X, Y = small_mlp()

    def loss(*p):
        return peers.mlp_loss_numba(*p, X, Y)
    value, tangent = peers.mlp_jvp_numba(*params, X, Y, *tangents)
    assert value == pytest.approx(loss(*params), rel=1e-12)
    close_to_fd(tangent, loss, params, tangents)
    value_g, grads = peers.mlp_grad_numba(*params, X, Y)
    assert value_g == pytest.approx(value, rel=1e-12)
    assert sum((g * t).sum() for g, t in zip(grads, tangents)) == pytest.approx(tangent,
                                                                                rel=1e-10)


def test_mlp_numba_keeps_float32():
    params, tangents, X, Y = small_mlp(np.float32)
    _, grads = peers.mlp_grad_numba(*params, X, Y)
    assert all(g.dtype == np.float32 for g in grads)
    value64, tangent64 = peers.mlp_jvp_numba(*small_mlp(np.float64)[0], X.astype(float), Y,
                                             *(t.astype(float) for t in tangents))
    value, tangent = peers.mlp_jvp_numba(*params, X, Y, *tangents)
    assert value == pytest.approx(value64, rel=1e-5)
    assert tangent == pytest.approx(tangent64, rel=1e-3)


@pytest.mark.parametrize("name, args", [
    ("rosenbrock", (np.linspace(-1.5, 1.5, 30),)),
    ("lorenz_euler", (*SR_B, 300)),
    ("lorenz_rk4", (*SR_B, 1.0, 1.0, 1.0, 300, 0.001)),
    ("beale", (1.3, -0.4)),
    ("rosenbrock2", (0.3, 0.8))])
def test_numba_primal_equals_cpython(name, args):
    compiled = getattr(peers, f"{name}_numba")(*args)
    assert compiled == pytest.approx(getattr(problems, name)(*args), rel=1e-13)


# ---------------------------------------------------------------- FGD loops

def test_fgd_numba_reduces_rosenbrock2_loss_reproducibly():
    params, losses = peers.fgd_numba("rosenbrock2", (-1.0, 0.0), 5e-4, 5_000, seed=0)
    assert losses.shape == (5_000,) and losses[0] == pytest.approx(104.0)
    assert losses[-1] < 0.5 < losses[0] and np.all(np.isfinite(params))
    again = peers.fgd_numba("rosenbrock2", (-1.0, 0.0), 5e-4, 5_000, seed=0)[1]
    other = peers.fgd_numba("rosenbrock2", (-1.0, 0.0), 5e-4, 5_000, seed=1)[1]
    assert np.array_equal(losses, again) and not np.array_equal(losses, other)


def test_fgd_numba_beale_paper_settings_converge():
    settings = peers.FGD_SETTINGS["beale"]
    _, losses = peers.fgd_numba("beale", settings["x0"], settings["lr"], settings["steps"], 0)
    assert losses[-1] < 1e-2 * losses[0]


@pytest.mark.parametrize("name", ["beale", "rosenbrock2"])
def test_gd_numba_descends(name):
    settings = peers.FGD_SETTINGS[name]
    _, losses = peers.gd_numba(name, settings["x0"], settings["lr"], 2_000)
    assert np.all(np.diff(losses) <= 1e-12) and losses[-1] < 0.1 * losses[0]


@needs_jax
def test_fgd_jax_loop_equals_step_from_python():
    looped = peers.fgd_jax("rosenbrock2", (-1.0, 0.0), 5e-4, 300, seed=0, mode="loop")
    stepped = peers.fgd_jax("rosenbrock2", (-1.0, 0.0), 5e-4, 300, seed=0, mode="python")
    np.testing.assert_allclose(looped[1], stepped[1], rtol=1e-12)
    np.testing.assert_allclose(looped[0], stepped[0], rtol=1e-12)
    assert looped[1][-1] < looped[1][0]


@needs_jax
def test_fgd_jax_presampled_directions_descend_reproducibly():
    params, losses = peers.fgd_jax("rosenbrock2", (-1.0, 0.0), 5e-4, 300, 0, "presampled")
    again = peers.fgd_jax("rosenbrock2", (-1.0, 0.0), 5e-4, 300, 0, "presampled")[1]
    assert losses[0] == pytest.approx(104.0) and losses[-1] < 0.2 * losses[0]
    np.testing.assert_array_equal(losses, again)
    with pytest.raises(ValueError):
        peers.jax_fgd_loop("rosenbrock2", 5e-4, 10, directions="sobol")


@needs_torch
def test_fgd_torch_reduces_loss():
    params, losses = peers.fgd_torch("rosenbrock2", (-1.0, 0.0), 5e-4, 300, seed=0)
    assert losses[0] == pytest.approx(104.0) and losses[-1] < 0.2 * losses[0]


# ---------------------------------------------------------------- JAX / PyTorch vs Numba

SMALL = [("rosenbrock", {"n": 200}), ("lorenz_euler", {"n": 300}),
         ("lorenz_rk4", {"n": 300}), ("mlp", {"batch": 8})]


def as_float(x):
    return float(np.asarray(x.detach() if hasattr(x, "detach") else x))


def check_against_numba(framework, problem, size):
    row = peers.suite(problem, include=("numba", framework), **size)
    rtol = 1e-5 if problem == "mlp" else 1e-10     # the MLP runs in float32
    reference_value, reference_tangent = row["numba"].jvp()
    value, tangent = row[framework].jvp()
    assert as_float(value) == pytest.approx(reference_value, rel=rtol)
    assert as_float(tangent) == pytest.approx(reference_tangent, rel=10 * rtol)
    assert as_float(row[framework].primal()) == pytest.approx(reference_value, rel=rtol)
    value_g, _ = row[framework].grad()
    assert as_float(value_g) == pytest.approx(reference_value, rel=rtol)


def check_grad_dot_direction(framework, problem, size):
    """Reverse mode agrees with forward: grad . v equals the JVP."""
    p, v = peers._suite_inputs(problem, size.get("n"), 0.001, size.get("batch", 64), 0)[:2]
    fns = {"jax": {"rosenbrock": peers.jax_rosenbrock,
                   "lorenz_euler": lambda: peers.jax_lorenz_euler(size.get("n"))},
           "torch": {"rosenbrock": peers.torch_rosenbrock,
                     "lorenz_euler": lambda: peers.torch_lorenz_euler(size.get("n"))}}
    to = peers._converters(framework)[0]
    f = fns[framework][problem]()
    _, grad = f["grad"](to(p))
    _, tangent = f["jvp"](to(p), to(v))
    assert np.dot(np.asarray(grad), v) == pytest.approx(as_float(tangent), rel=1e-10)


@needs_jax
@pytest.mark.parametrize("problem, size", SMALL, ids=[p for p, _ in SMALL])
def test_jax_matches_numba(problem, size):
    check_against_numba("jax", problem, size)


@needs_torch
@pytest.mark.parametrize("problem, size", SMALL, ids=[p for p, _ in SMALL])
def test_torch_matches_numba(problem, size):
    check_against_numba("torch", problem, size)


@pytest.mark.parametrize("framework", [
    pytest.param("jax", marks=needs_jax), pytest.param("torch", marks=needs_torch)])
@pytest.mark.parametrize("problem", ["rosenbrock", "lorenz_euler"])
def test_reverse_mode_agrees_with_jvp(framework, problem):
    check_grad_dot_direction(framework, problem, {"n": 200})


@needs_jax
def test_jax_mlp_grad_matches_numba_backprop():
    params, _, X, Y = small_mlp(np.float32)
    _, reference = peers.mlp_grad_numba(*params, X, Y)
    import jax.numpy as jnp
    _, grads = peers.jax_mlp()["grad"](tuple(map(jnp.asarray, params)), jnp.asarray(X),
                                       jnp.asarray(Y))
    for g, r in zip(grads, reference):
        np.testing.assert_allclose(np.asarray(g), r, rtol=1e-4, atol=1e-6)


def test_available_and_missing_notes_agree():
    ok = peers.available()
    assert ok["numba"] is True and set(ok) == {"numba", "jax", "torch"}
    assert len(peers.missing_notes()) == sum(not v for v in ok.values())


# ---------------------------------------------------------------- harness

def test_table_ratios_per_benchmark_baseline():
    table = Table(baseline="numba")
    table.add("a", "numba", 2e-3)
    table.add("a", "jax", 3e-3, R_f=1.4)
    table.add("b", "torch", 1.0)
    table.add("b", "numba", 0.25)
    table.set_baseline("b", "torch")
    assert [table.ratio(r) for r in table.rows] == [1.0, 1.5, 1.0, 0.25]
    table.add("c", "jax", 1.0)                       # no baseline row in "c"
    assert table.ratio(table.rows[-1]) is None


def test_table_text_markdown_json():
    table = Table(baseline="numba", title="demo", meta={"cpu": "x"})
    table.add("rosenbrock n=1e5", "numba", 1.5e-4, primal_time=1e-4, R_f=1.5)
    table.add("rosenbrock n=1e5", "a much longer name", 4.5e-4, primal_time=2e-4, R_f=2.25)
    table.note("torch peers skipped")
    text = table.format()
    lines = text.splitlines()
    assert lines[0] == "demo" and "note: torch peers skipped" in text
    legend, header, benchmark, first, second = lines[2:7]
    assert legend == "vs numba = time / time of 'numba' in the same benchmark (below 1: faster)."
    assert benchmark == "rosenbrock n=1e5" and first.startswith("  numba")
    assert len(header) == len(second)                          # aligned, no ragged rows
    assert header.index("vs numba") + len("vs numba") == second.index("3.00x") + len("3.00x")
    assert "150 µs" in first and "1.00x" in first and "100 µs" in first and "2.25" in second
    markdown = table.to_markdown().splitlines()
    assert markdown[4].startswith("| benchmark | implementation | time | vs numba")
    assert markdown[5].count("---:") == 4
    data = json.loads(table.to_json())
    assert data["meta"] == {"cpu": "x"} and data["rows"][1]["ratio"] == pytest.approx(3.0)
    assert data["rows"][0]["baseline"] == "numba" and data["notes"] == ["torch peers skipped"]


def test_table_sections_print_their_own_columns_legend_and_width():
    """Each section is its own table: only its columns, its time label, a ratio that says what
    it divides by; legends and notes wrap at 100 columns."""
    table = Table(title="demo")
    table.section("loops", "FGD runs", "time/step: one step. " * 8, "time/step",
                  (("steps_per_s", "steps/s"),))
    table.add("fgd beale", "fwdad.fgd", 1e-7, steps=1000, steps_per_s=1e7)
    table.add("fgd beale", "numba written by hand", 2e-7, steps=1000, steps_per_s=5e6)
    table.set_baseline("fgd beale", "numba written by hand")
    table.section("memory", "Memory", "MiB: working memory.", None, (("peak_mib", "MiB"),))
    table.add("memory T=10", "fwdad", 1.0, peak_mib=0.25)
    table.note("a long note " * 20)
    text = table.format()
    assert max(len(line) for line in text.splitlines()) <= 100
    loops, memory = text.split("\nMemory\n")
    assert re.search(r"time/step +ratio +steps/s\n", loops) and "steps/run" not in loops
    legend = " ".join(loops.split())
    assert "ratio = time/step / time/step of 'numba written by hand' in the same benchmark" in legend
    assert "0.50x" in loops and "10,000,000" in loops
    assert "  fwdad  0.25" in memory and "ratio" not in memory and "1 s" not in memory
    assert [r["section"] for r in json.loads(table.to_json())["rows"]] == ["loops", "loops", "memory"]
    assert table.to_markdown().count("| benchmark | implementation |") == 2


def test_timeit_is_best_of_repeats_and_skips_warmup():
    calls = []

    def fn():
        calls.append(None)
        time.sleep(0.03 if len(calls) == 1 else 0.002)   # a slow first call: "compilation"
    seconds = harness.timeit(fn, repeat=3, number=4)
    assert len(calls) == 1 + 3 * 4
    assert 0.002 <= seconds < 0.02
    calls.clear()
    harness.timeit(fn, repeat=2, min_time=0.01)        # autorange: >= 5 calls per repeat
    assert len(calls) >= 1 + 5 * 3


def test_timeit_max_time_stops_early():
    calls = []
    harness.timeit(lambda: calls.append(time.sleep(0.02)), repeat=50, number=1,
                   max_time=0.05)
    assert len(calls) < 10


def test_measure_peers_and_loops_record_ratios():
    table = Table(baseline="fast")
    row = {"fast": Peer(jvp=lambda: time.sleep(0.002), primal=lambda: time.sleep(0.001)),
           "slow": Peer(jvp=lambda: time.sleep(0.006))}
    harness.measure_peers(table, "demo", row, repeat=2, min_time=0.01)
    fast, slow = table.rows
    assert 1.3 < fast["R_f"] < 2.7 and slow["R_f"] is None
    assert 2.0 < table.ratio(slow) < 3.5
    harness.measure_loops(table, "loop", {"x": LoopPeer(run=lambda: time.sleep(0.01),
                                                        steps=10)}, repeat=2, number=1)
    assert 0.001 <= table.rows[-1]["seconds"] < 0.003
    assert table.rows[-1]["steps_per_s"] == pytest.approx(1 / table.rows[-1]["seconds"])


def test_machine_describes_this_host():
    info = harness.machine()
    assert info["cores"] >= 1 and info["cpu"] and info["python"].count(".") == 2
    assert info["numpy"] == np.__version__


def test_limit_threads_caps_openblas_in_a_fresh_process():
    import subprocess
    import sys
    code = ("import json, numpy, os; from fwdad.bench.harness import limit_threads;"
            "done = limit_threads(1); print(json.dumps([done, os.environ['XLA_FLAGS']]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    done, xla_flags = json.loads(out.strip().splitlines()[-1])
    assert any("openblas" in key for key in done) and "multi_thread_eigen=false" in xla_flags


def test_peak_rss_child_sees_the_child_allocation():
    base = harness.peak_rss_child("import numpy")
    big = harness.peak_rss_child("import numpy as np\na = np.ones(args[0] // 8)\na[:] = 2",
                                 200 * 2**20)
    assert 150 < big - base < 260
    assert 0 < harness.peak_rss_child("json:dumps", [1, 2]) < base
    with pytest.raises(RuntimeError):
        harness.peak_rss_child("raise ValueError('boom')")
