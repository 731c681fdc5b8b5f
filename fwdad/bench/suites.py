"""`fwdad bench`: fwdad side by side with hand-written Numba, JAX and PyTorch, in one process.

Sections (each a function returning rows into a harness.Table):
  jvp      JVP time and R_f for Rosenbrock (n = 1e5), Lorenz Euler (2e4 steps), Lorenz RK4, the
           paper's MLP (batch 64); R_b for the peers with a reverse mode
  fgd      FGD steps/s on the paper's Beale and Rosenbrock runs
  vector   exact gradient by vector mode vs n single-direction JVPs (Rosenbrock, n = 1000)
  memory   peak memory of a JVP through a T-step simulation vs reverse mode, T = 1e3 ... 1e6
  compile  first-call compile latency, and a fresh process with cache=True
  sparse   sparse Jacobians of the 2-D Brusselator (fwdad/bench/sparse.py): colors, detection,
           vs one JVP, dense f.jacobian, jax.jacfwd, sparsejac; solve_ivp vs SciPy's FD
  arrays   slices and the MLP (fwdad/bench/arrays.py): primal and JVP vs numba.njit of the same
           source, a hand-fused Numba JVP, jax.jit(jax.jvp), torch.func.jvp; compile rows
  second   second derivatives (fwdad/bench/second_order.py): jvp2 vs one JVP and JAX's jvp of
           jvp; Rosenbrock n = 100 Hessian and H.v vs jax.hessian
  callpath per-call overhead of f(...), .jvp, .forward_gradient, .value_and_grad beside the compiled
           code (fwdad/bench/callpath.py); Rosenbrock .jvp vs Numba; first calls in fresh processes
"""
import contextlib
import importlib
import json
import os
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np

from .. import fgd, forward_grad
from . import peers, problems
from .harness import MALLOC_RETURNS_MEMORY, LoopPeer, Peer, Table, limit_threads, machine, measure_loops, measure_peers, timeit

PAPER_STEPS_PER_SECOND = 25_000 / 3.1        # the paper: 25,000 Rosenbrock iterations in about 3.1 s


def mlp(W1, b1, W2, b2, W3, b3, X, Y):
    """The paper's MLP with the loss written as plain NumPy (what fwdad differentiates)."""
    h1 = np.maximum(X @ W1 + b1, np.float32(0.0))
    h2 = np.maximum(h1 @ W2 + b2, np.float32(0.0))
    z = h2 @ W3 + b3
    total = np.float32(0.0)
    for i in range(z.shape[0]):
        m = z[i, 0]
        for j in range(1, z.shape[1]):
            m = max(m, z[i, j])
        s = np.float32(0.0)
        for j in range(z.shape[1]):
            s += np.exp(z[i, j] - m)
        total += m + np.log(s) - z[i, Y[i]]
    return total / np.float32(z.shape[0])


def fwdad_peer(function, primals, tangents):
    f = forward_grad(function)
    f.jvp(primals, tangents)
    return Peer(jvp=lambda: f.jvp(primals, tangents), primal=lambda: f(*primals))


def jvp_section(table, quick):
    """JVP time, R_f and (peers) R_b per problem; the hand-written Numba JVP is the baseline."""
    table.section("jvp", "JVPs: value + directional derivative, one call",
                  "JVP time: one call computing f and its derivative along one direction; primal: "
                  "f alone; R_f = JVP time / primal; gradient: f and its full gradient by reverse "
                  "mode (peers that have one); R_b = gradient / primal; numba: written by hand in "
                  "Numba.", "JVP time",
                  (("primal_time", "primal"), ("R_f", "R_f"), ("grad_time", "gradient"), ("R_b", "R_b")))
    kw = dict(repeat=3 if quick else 7, min_time=0.02 if quick else 0.2, max_time=5 if quick else 30)
    n = 10_000 if quick else 100_000
    rng = np.random.default_rng(0)
    x, v = rng.uniform(-2.0, 2.0, n), rng.standard_normal(n)
    row = peers.suite("rosenbrock", n=n)
    row["fwdad"] = fwdad_peer(problems.rosenbrock, (x,), (v,))
    measure_peers(table, f"rosenbrock n={n}", order(row), **kw)
    steps = 2_000 if quick else 20_000
    p, dp = np.array(problems.LORENZ_PARAMS), np.array([1.0, 0.5, -0.3])
    row = peers.suite("lorenz_euler", n=steps, include=("numba", "jax") if quick else ("numba", "jax", "torch"))
    row["fwdad"] = fwdad_peer(problems.lorenz_euler, (*p, steps), (*dp, None))
    measure_peers(table, f"lorenz_euler n={steps}", order(row), **kw)
    row = peers.suite("lorenz_rk4", n=steps, include=("numba", "jax"))
    row["fwdad"] = fwdad_peer(problems.lorenz_rk4, (*p, 1.0, 1.0, 1.0, steps, 0.001),
                              (*dp, None, None, None, None, None))
    measure_peers(table, f"lorenz_rk4 n={steps}", order(row), **kw)
    params, X, Y = peers.mlp_data(batch=64)
    tangents = peers.mlp_direction(params, 1)
    row = peers.suite("mlp", batch=64)
    row["fwdad"] = fwdad_peer(mlp, (*params, X, Y), (*tangents, None, None))
    measure_peers(table, "mlp 784-1024-1024-10 b=64 f32", order(row), **kw)


def order(row):
    """fwdad first, then the peers (the baseline is the hand-written Numba row)."""
    return {"fwdad": row.pop("fwdad"), **row}


def fgd_section(table, quick):
    """Steps per second of whole FGD runs with the paper's settings."""
    table.section("fgd", "Forward gradient descent: whole runs with the paper's settings",
                  "time/step: the time of a run of steps/run steps (Algorithm 1: a direction, a "
                  "JVP and an update per step) divided by its steps; steps/s = 1 / time/step. "
                  "Slow peers run fewer steps; numba: the loop written by hand in Numba.",
                  "time/step", (("steps", "steps/run"), ("steps_per_s", "steps/s")))
    kw = dict(repeat=3 if quick else 5, min_time=0.02 if quick else 0.2, max_time=5 if quick else 30)
    for problem, function in (("beale", problems.beale), ("rosenbrock2", problems.rosenbrock2)):
        settings = peers.FGD_SETTINGS[problem]
        loops = peers.fgd_suite(problem, include=("numba", "jax") if quick else ("numba", "jax", "torch"),
                                steps={"torch": 50, "jax step from Python": 200} if quick else None)

        def run(function=function, settings=settings):
            return fgd(function, settings["x0"], lr=settings["lr"], steps=settings["steps"], progress=False)
        run()
        loops = {"fwdad.fgd": LoopPeer(run=run, steps=settings["steps"]), **loops}
        measure_loops(table, f"fgd {problem} ({settings['steps']} steps)", loops, **kw)
    table.note(f"the paper reports about {PAPER_STEPS_PER_SECOND:,.0f} Rosenbrock FGD steps/s "
               "(PyTorch, 25,000 iterations in about 3.1 s)")


def vector_section(table, quick):
    """value_and_grad (chunked vector mode) vs n separate single-direction JVPs."""
    table.section("vector", "Exact gradient: vector mode vs one JVP per input",
                  "time: one exact gradient of Rosenbrock (n = 1000 inputs).", "time")
    n = 1000
    x = np.random.default_rng(0).uniform(-2.0, 2.0, n)
    f = forward_grad(problems.rosenbrock)
    jvp = f.specialization((x,), [0]).jvp
    eye = np.eye(n)

    def separate():
        for i in range(n):
            jvp(x, eye[i])
    kw = dict(repeat=3 if quick else 7, min_time=0.02 if quick else 0.2)
    f.value_and_grad(x)
    table.add("gradient rosenbrock n=1000", "value_and_grad (vector mode)", timeit(lambda: f.value_and_grad(x), **kw))
    table.add("gradient rosenbrock n=1000", "1000 single-direction JVPs", timeit(separate, **kw))
    table.set_baseline("gradient rosenbrock n=1000", "1000 single-direction JVPs")


MEMORY_CHILD = textwrap.dedent("""
    import json, sys
    method, T = sys.argv[1], int(sys.argv[2])
    import numpy as np
    from fwdad.bench import problems
    from fwdad.bench.harness import reset_peak_rss, rss_mib
    p = (10.0, 28.0, 8.0 / 3.0)
    if method in ("fwdad", "numba primal"):
        import fwdad
        f = fwdad.forward_grad(problems.lorenz_euler, cache=True)
        run = (lambda: f.jvp((*p, T), (1.0, 0.0, 0.0, None))) if method == "fwdad" else (lambda: f(*p, T))
    elif method == "jax grad":
        from fwdad.bench import peers
        jax = peers.jax_setup()
        g = jax.jit(jax.grad(peers.jax_lorenz_euler(T)["primal"]))
        run = lambda: jax.block_until_ready(g(jax.numpy.asarray(p)))
    elif method == "torch backward":
        import torch
        def run():
            s = torch.tensor(p, dtype=torch.float64, requires_grad=True)
            problems.lorenz_euler(s[0], s[1], s[2], T).backward()
    run()                                      # compile and warm up; then measure one call alone
    before = rss_mib()
    reset_peak_rss()
    run()
    print(json.dumps({"peak_mib": rss_mib("VmHWM") - before}))
""")


def memory_section(table, quick, out=None):
    """Working memory (peak minus resident before the call) of a derivative through a T-step loop,
    in a fresh process per point, after a warm-up call (compilation is not counted)."""
    table.section("memory", "Memory of one derivative through a T-step loop (Lorenz, Euler)",
                  "MiB: working memory of one call, its peak resident memory minus the resident "
                  "memory before it, in a fresh process after a warm-up call (compilation not "
                  "counted). Forward mode needs none; reverse mode stores the T steps.",
                  None, (("peak_mib", "MiB"),))
    Ts = [1_000, 10_000] if quick else [1_000, 10_000, 100_000, 1_000_000]
    ok = peers.available()
    methods = ["numba primal", "fwdad"] + (["jax grad"] if ok.get("jax") else []) + \
        (["torch backward"] if ok.get("torch") else [])
    limits = {"torch backward": 10_000 if quick else 100_000}
    curves = {m: [] for m in methods}
    for T in Ts:
        for method in methods:
            if T > limits.get(method, T):
                curves[method].append(None)
                continue
            start = time.perf_counter()
            run = subprocess.run([sys.executable, "-c", MEMORY_CHILD, method, str(T)],
                                 capture_output=True, text=True, timeout=1800, env=MALLOC_RETURNS_MEMORY)
            if run.returncode != 0:
                curves[method].append(None)
                table.note(f"memory {method} T={T} failed: {run.stderr.strip().splitlines()[-1:]}")
                continue
            peak = json.loads(run.stdout.strip().splitlines()[-1])["peak_mib"]
            curves[method].append(peak)
            table.add(f"memory T={T}", method, time.perf_counter() - start, peak_mib=peak)
        table.set_baseline(f"memory T={T}", "numba primal")
    plot = plot_memory(Ts, curves, out) if out is not None else None
    if out is not None and plot is None:
        table.note("no memory plot: matplotlib is not installed")
    return {"T": Ts, "peak_mib": curves, "plot": plot}


def plot_memory(Ts, curves, out):
    """Linear MiB against T on a log axis, plain tick labels: forward mode's flat zero line and
    reverse mode's growth read directly. Returns the file name, or None without matplotlib."""
    try:
        from .figures import pyplot, save
        plt = pyplot()
    except ImportError:
        return None
    figure, ax = plt.subplots(figsize=(6.5, 4.5))
    for (method, values), style in zip(curves.items(), ("s--", "o-", "^-", "D-")):
        points = [(T, v) for T, v in zip(Ts, values) if v is not None]
        if points:             # dashed and square under fwdad's line: both lie at 0 MiB
            ax.plot(*zip(*points), style, label=method, markersize=8 if style == "s--" else 6)
    ax.set_xscale("log")
    ax.set_xticks(Ts, [f"{T:,}" for T in Ts])
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda y, _: f"{y:,.3g}"))
    ax.set_ylim(bottom=min([0.0] + [v for vs in curves.values() for v in vs if v is not None]))
    ax.set_xlabel("simulation steps T (Lorenz, explicit Euler)")
    ax.set_ylabel("working memory of one call (MiB)")
    ax.set_title("Memory of one derivative through T steps")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return save(figure, out, "bench_memory.png")


COMPILE_CHILD = textwrap.dedent("""
    import json, sys, time
    start = time.perf_counter()
    import fwdad
    from fwdad.bench import problems
    imported = time.perf_counter()
    f = fwdad.forward_grad(problems.lorenz_euler, cache=sys.argv[1] == "cache")
    f.jvp((10.0, 28.0, 2.5, 100), (1.0, 0.0, 0.0, None))
    first = time.perf_counter()
    g = fwdad.forward_grad(problems.rosenbrock, cache=sys.argv[1] == "cache")
    import numpy as np
    g.jvp((np.ones(10),), (np.ones(10),))
    done = time.perf_counter()
    print(json.dumps({"import": imported - start, "lorenz": first - imported, "rosenbrock": done - first,
                      "total": done - start}))
""")


def compile_section(table, quick, cache_dir):
    """First call in a fresh process without and with the on-disk cache (after a warm-up run)."""
    table.section("compile", "Start-up: the first call in a fresh Python process",
                  "first call: generating, compiling (or loading from the cache=True cache) and "
                  "running a JVP; import: `import fwdad`.", "first call", (("import_time", "import"),))
    environment = dict(os.environ, FWDAD_CACHE_DIR=cache_dir)
    results = {}
    for mode in ("nocache", "cache", "cache"):
        run = subprocess.run([sys.executable, "-c", COMPILE_CHILD, mode], capture_output=True, text=True,
                             env=environment, timeout=600)
        if run.returncode != 0:
            table.note(f"compile latency ({mode}) failed: {run.stderr.strip().splitlines()[-1:]}")
            continue
        results[mode] = json.loads(run.stdout.strip().splitlines()[-1])
    if "nocache" in results:
        r = results["nocache"]
        table.add("first call (fresh process)", "lorenz_euler jvp, compiled", r["lorenz"], import_time=r["import"])
        table.add("first call (fresh process)", "rosenbrock jvp, compiled", r["rosenbrock"])
    if "cache" in results:
        r = results["cache"]
        table.add("first call (fresh process)", "lorenz_euler jvp, cache=True", r["lorenz"], import_time=r["import"])
        table.add("first call (fresh process)", "rosenbrock jvp, cache=True", r["rosenbrock"])
        table.add("first call (fresh process)", "import + both, cache=True", r["total"])
    table.set_baseline("first call (fresh process)", "lorenz_euler jvp, compiled")
    return results


def imported_when_run(module, name):
    """A section of its own module, imported only when it runs (SciPy, the sparse and the
    second-order machinery are not loaded for the other sections)."""
    def run(table, quick, out):
        return getattr(importlib.import_module(f".{module}", __package__), name)(table, quick)
    return run


RUNS = {    # name: (what the log says, run(table, quick, out) -> its extra results or None)
    "jvp": ("JVPs (fwdad, hand-written Numba, JAX, PyTorch)", lambda table, quick, out: jvp_section(table, quick)),
    "fgd": ("forward gradient descent", lambda table, quick, out: fgd_section(table, quick)),
    "vector": ("vector mode", lambda table, quick, out: vector_section(table, quick)),
    "memory": ("memory vs work (fresh processes)", memory_section),
    "compile": ("compile latency (fresh processes)",
                lambda table, quick, out: compile_section(table, quick, os.path.join(out, "cache"))),
    "sparse": ("sparse Jacobians (2-D Brusselator)", imported_when_run("sparse", "sparse_section")),
    "second": ("second derivatives (forward over forward)",
               imported_when_run("second_order", "second_order_section")),
    "arrays": ("array programs (heat, diffusion, MLP)", imported_when_run("arrays", "arrays_section")),
    "callpath": ("the call path (overhead per call, first calls)", imported_when_run("callpath", "callpath_section")),
}
SECTIONS = tuple(RUNS)


def run(sections=SECTIONS, quick=False, out="bench-out", threads=1, log=print):
    """Run the chosen sections; print the table, write bench.json, bench.md and the plot."""
    os.makedirs(out, exist_ok=True)
    threads_note = limit_threads(threads)
    table = Table(title="fwdad bench" + (" (quick)" if quick else ""),
                  meta={"machine": machine(), "threads": threads_note})
    with torch_script_warning_silenced():
        extra = run_sections(table, sections, quick, out, log)
    for row in table.rows:                    # JVPs and FGD loops: ratios to hand-written Numba
        benchmark = row["benchmark"]
        if benchmark.startswith(("rosenbrock", "lorenz", "mlp", "fgd")):
            table.set_baseline(benchmark, "numba")
    for note in peers.missing_notes():
        table.note(note)
    log(table.format())
    log(where_written(write_results(table, extra, out), out))
    return table


def run_sections(table, sections, quick, out, log):
    """The chosen sections in RUNS's order, each adding rows to ``table``; returns their extra results."""
    extra = {}
    for name, (what, section) in RUNS.items():
        if name in sections:
            log(f"fwdad bench: {what}")
            result = section(table, quick, out)
            if result is not None:
                extra[name] = result
    return extra


@contextlib.contextmanager
def torch_script_warning_silenced():
    """PyTorch >= 2.9 warns that `torch.jit.script` is deprecated when its own modules use it
    (importing torch.func or torch.nn does): not something a bench user can act on. Only that
    warning is silenced, only while the bench runs."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`?torch\.jit\.script`? is (deprecated|not supported)")
        yield


def write_results(table, extra, out):
    """bench.json (rows, memory and compile results) and bench.md; returns the files written."""
    with open(os.path.join(out, "bench.json"), "w") as f:
        f.write(table.to_json() if not extra else json.dumps({"table": json.loads(table.to_json()), **extra},
                                                             indent=1, default=str))
    with open(os.path.join(out, "bench.md"), "w") as f:
        f.write(table.to_markdown())
    plot = extra.get("memory", {}).get("plot")
    cache = os.path.join(out, "cache") if "compile" in extra else None
    return ["bench.json", "bench.md"] + ([plot] if plot else []) + (["cache/"] if cache else [])


def where_written(files, out):
    """Where the results are: the file names, then the absolute directory on a line of its own."""
    return f"fwdad bench: wrote {', '.join(files)} to\n  {os.path.abspath(out)}"


def main(args):
    sections = tuple(s.strip() for s in args.only.split(",")) if args.only else SECTIONS
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"fwdad bench: unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    run(sections, quick=args.quick, out=args.out, threads=args.threads)


def register(commands):
    p = commands.add_parser("bench", help="benchmarks side by side with hand-written Numba, JAX, PyTorch")
    p.add_argument("--quick", action="store_true", help="small sizes, a minute or two")
    p.add_argument("--out", default="bench-out", help="output directory (default: bench-out)")
    p.add_argument("--only", default=None, help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument("--threads", type=int, default=1, help="BLAS/XLA/torch threads (default 1)")
    p.set_defaults(run=main)

