"""Experiments 3 and 4: the cost of a forward gradient (R_f) and of backpropagation (R_b) relative to
the function itself, with peak memory, for the paper's models and for MLPs of growing depth.

    R_f = t(value + JVP) / t(value)        R_b = t(value + gradient) / t(value)
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np

from ..api import forward_grad
from ..bench.harness import timeit
from ..models import init_mlp, mlp_loss, mlp_sizes, mlp_value, mlp_value_and_grad
from .common import fmt, progress, pyplot, save, table

PAPER_MLP = {"R_f": "2.33–2.61", "R_b": "3.97–4.36"}


def loss_jvp():
    """The JVP of the loss w.r.t. theta only (X is float data, not a parameter); cached on disk."""
    return forward_grad(mlp_loss, wrt=(0,), cache=True)


def batch_for(sizes, batch, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((batch, int(sizes[0]))).astype(np.float32)
    Y = rng.integers(0, int(sizes[-1]), batch)
    return X, Y


def measure(sizes, batch, repeats, seed=0):
    """Seconds for value, value + JVP, value + gradient (backprop) and one forward-gradient step."""
    theta = init_mlp(sizes, seed)
    X, Y = batch_for(sizes, batch, seed)
    v = np.random.default_rng(seed + 1).standard_normal(theta.size).astype(np.float32)
    f = loss_jvp()
    kw = dict(repeat=repeats, min_time=0.05)
    times = {"value": timeit(lambda: mlp_value(theta, sizes, X, Y), **kw),
             "jvp": timeit(lambda: f.jvp((theta, sizes, X, Y), (v, None, None, None)), **kw),
             "grad": timeit(lambda: mlp_value_and_grad(theta, sizes, X, Y), **kw),
             "forward_gradient": timeit(lambda: f.forward_gradient(theta, sizes, X, Y, seed=1), **kw)}
    times["R_f"] = times["jvp"] / times["value"]
    times["R_b"] = times["grad"] / times["value"]
    times["R_forward_gradient"] = times["forward_gradient"] / times["value"]
    times["parameters"] = int(theta.size)
    return times


def peers(batch, repeats):
    """The same MLP in JAX and PyTorch, when installed (value, JVP and gradient times)."""
    try:
        from ..bench import peers as bench_peers
        suite = bench_peers.suite("mlp", batch=batch, include=("jax", "torch"))
    except Exception as error:                       # an optional comparison must not stop the run
        return {"note": f"JAX/PyTorch comparison skipped: {error}"}
    out = {}
    for name, peer in suite.items():
        kw = dict(repeat=repeats, min_time=0.05, max_time=10)
        value, jvp, grad = (timeit(fn, **kw) for fn in (peer.primal, peer.jvp, peer.grad))
        out[name] = {"value": value, "jvp": jvp, "grad": grad, "R_f": jvp / value, "R_b": grad / value}
    return out


MEMORY_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    from fwdad.bench.harness import reset_peak_rss, rss_mib
    from fwdad.reproduce.cost import batch_for, loss_jvp
    from fwdad.models import init_mlp, mlp_sizes, mlp_value, mlp_value_and_grad
    method, batch, configs = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    f = loss_jvp()
    for sizes in configs:
        sizes = np.array(sizes, np.int64)
        theta = init_mlp(sizes, 0)
        X, Y = batch_for(sizes, batch)
        v = np.ones_like(theta)
        run = {"value": lambda: mlp_value(theta, sizes, X, Y),
               "jvp": lambda: f.jvp((theta, sizes, X, Y), (v, None, None, None)),
               "grad": lambda: mlp_value_and_grad(theta, sizes, X, Y)}[method]
        run()                                  # compiled and warm: the peak below is one evaluation
        before = rss_mib()
        exact = reset_peak_rss()
        run()
        print(json.dumps({"parameters": int(theta.size), "extra_mib": rss_mib("VmHWM") - before,
                          "exact": exact}), flush=True)
""")


# glibc: serve arrays of 64 KiB and more with mmap and give freed memory back at once, so that
# resident memory follows the arrays alive (a warm-up call's freed pages do not hide the next peak)
MALLOC_RETURNS_MEMORY = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")


def memory(configs, batch):
    """Working memory (MiB) of one evaluation of value, value + JVP and value + gradient: the peak
    resident memory during the call minus what was resident before it (inputs, compiled code),
    measured in a fresh process per method."""
    out = {}
    for method in ("value", "jvp", "grad"):
        run = subprocess.run([sys.executable, "-c", MEMORY_CHILD, method, str(batch),
                              json.dumps([list(map(int, s)) for s in configs])],
                             capture_output=True, text=True, timeout=1800, env=MALLOC_RETURNS_MEMORY)
        if run.returncode != 0:
            return {"note": f"memory measurement failed: {run.stderr.strip().splitlines()[-1:]}"}
        lines = [json.loads(line) for line in run.stdout.strip().splitlines()]
        out[method] = [line["extra_mib"] for line in lines]
        out["exact"] = all(line["exact"] for line in lines)
    return out


def run_cost(models, data_features, num_classes, settings, show_progress=None):
    """The cost table for the paper's logistic regression and MLP (batch 64)."""
    configs = {"logreg": mlp_sizes(data_features, 0, 0, num_classes),
               "mlp": mlp_sizes(data_features, 1024, 2, num_classes)}
    out = {"batch": settings.batch, "models": {}}
    bar = progress(total=len(models), desc="cost", enabled=show_progress)
    for model in models:
        out["models"][model] = measure(configs[model], settings.batch, settings.timing_repeats)
        bar.update(1)
    bar.close()
    if settings.memory:
        mem = memory([configs[m] for m in models], settings.batch)
        for i, model in enumerate(models):
            if "note" not in mem:
                out["models"][model]["memory_mib"] = {k: mem[k][i] for k in ("value", "jvp", "grad")}
            else:
                out["memory_note"] = mem["note"]
    if "mlp" in models and data_features == 784:
        out["peers"] = peers(settings.batch, settings.timing_repeats)
        if not out["peers"]:
            out["peers"] = {"note": "JAX and PyTorch are not installed (pip install '.[bench]'), so "
                                    "their rows are left out."}
    return out


def report_cost(summary):
    rows = []
    for model, m in summary["models"].items():
        memory_text = "-"
        if "memory_mib" in m:
            mem = m["memory_mib"]
            memory_text = f"{mem['value']:.1f} / {mem['jvp']:.1f} / {mem['grad']:.1f}"
        rows.append([f"fwdad ({model})", f"{m['value'] * 1e3:.3g}", f"{m['jvp'] * 1e3:.3g}",
                     f"{m['grad'] * 1e3:.3g}", fmt(m["R_f"]), fmt(m["R_b"]),
                     fmt(m["R_forward_gradient"]), memory_text])
    for name, p in summary.get("peers", {}).items():
        if isinstance(p, dict):
            rows.append([f"{'JAX' if name == 'jax' else 'PyTorch'} (mlp)", f"{p['value'] * 1e3:.3g}",
                         f"{p['jvp'] * 1e3:.3g}", f"{p['grad'] * 1e3:.3g}", fmt(p["R_f"]), fmt(p["R_b"]),
                         "-", "-"])
    rows.append(["paper (mlp, PyTorch, GPU)", "-", "-", "-", PAPER_MLP["R_f"], PAPER_MLP["R_b"], "-", "-"])
    text = ["### Cost of a forward gradient and of backpropagation",
            f"Batch {summary['batch']}. Times in ms; R = time / time of the function alone. "
            "'value + gradient' is the hand-derived backpropagation in fwdad.models (Numba); "
            "'forward gradient' adds sampling the direction to the JVP. Memory: MiB of working "
            "memory of one evaluation (its peak resident memory minus what was resident before: "
            "inputs, parameters, compiled code).", "",
            table(["implementation", "value", "value + JVP", "value + gradient", "R_f", "R_b",
                   "R (forward gradient)", "working MiB (value / JVP / grad)"], rows), ""]
    if summary.get("peers", {}).get("note"):
        text.append(summary["peers"]["note"] + "\n")
    return "\n".join(text) + "\n"


def run_depth(settings, show_progress=None):
    """R_f, R_b and memory of MLPs with 1..N hidden layers of 1024 units (the paper's Figure 6)."""
    configs = [mlp_sizes(784, 1024, d, 10) for d in settings.depths]
    out = {"depths": list(settings.depths), "batch": settings.batch, "rows": []}
    bar = progress(total=len(configs), desc="depth", enabled=show_progress)
    for depth, sizes in zip(settings.depths, configs):
        row = measure(sizes, settings.batch, settings.timing_repeats)
        row["depth"] = depth
        out["rows"].append(row)
        bar.update(1)
    bar.close()
    if settings.memory:
        out["memory"] = memory(configs, settings.batch)
    return out


def figures_depth(out_dir, summary):
    plt = pyplot()
    depths = [r["depth"] for r in summary["rows"]]
    figure, axes = plt.subplots(1, 2 if "memory" in summary and "note" not in summary["memory"] else 1,
                                figsize=(11, 4), squeeze=False)
    ax = axes[0, 0]
    ax.plot(depths, [r["R_f"] for r in summary["rows"]], "o-", label="R_f (forward gradient: value + JVP)")
    ax.plot(depths, [r["R_b"] for r in summary["rows"]], "s--", label="R_b (backpropagation)")
    ax.set_xlabel("hidden layers of 1024 units"), ax.set_ylabel("time / time of the function")
    ax.legend(fontsize=8)
    if axes.shape[1] > 1:
        mem = summary["memory"]
        ax = axes[0, 1]
        ax.plot(depths, mem["value"], "k:", label="value")
        ax.plot(depths, mem["jvp"], "o-", label="value + JVP")
        ax.plot(depths, mem["grad"], "s--", label="value + gradient")
        ax.set_xlabel("hidden layers of 1024 units"), ax.set_ylabel("working memory of one call (MiB)")
        ax.legend(fontsize=8)
    figure.suptitle(f"MLP depth scaling (batch {summary['batch']})")
    return [save(figure, out_dir, "depth.png")]


def report_depth(summary, figure_names):
    mem = summary.get("memory", {})
    rows = []
    for i, r in enumerate(summary["rows"]):
        extra = [f"{mem['value'][i]:.1f}", f"{mem['jvp'][i]:.1f}", f"{mem['grad'][i]:.1f}"] \
            if mem and "note" not in mem else ["-", "-", "-"]
        rows.append([str(r["depth"]), f"{r['parameters']:,}", f"{r['value'] * 1e3:.3g}", fmt(r["R_f"]),
                     fmt(r["R_b"])] + extra)
    text = ["### Depth scaling (the paper's Figure 6)",
            "MLPs with 1 to N hidden layers of 1024 units, batch "
            f"{summary['batch']}.", "",
            table(["hidden layers", "parameters", "value (ms)", "R_f", "R_b", "working MiB value",
                   "working MiB JVP", "working MiB grad"], rows), ""]
    if mem.get("note"):
        text.append(mem["note"])
    text += [f"![depth]({f})" for f in figure_names]
    return "\n".join(text) + "\n"

