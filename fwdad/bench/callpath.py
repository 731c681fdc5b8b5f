"""`fwdad bench --only callpath`: what a call costs beyond its compiled code, and first calls.

Rows (issue 14's goals in brackets):
  call overhead   a tiny function (x * x on a float; a sum of squares over a 3-element array)
                  through f(...), f.jvp, f.forward_gradient and f.value_and_grad, each beside the
                  compiled function the call ends in, called directly (the primal's dispatcher,
                  the tangent function, the driver); overhead = the difference [<= 1.5 us]
  rosenbrock      n = 1e5 through f.jvp vs the hand-written Numba tangent code [<= 1.05x]
  first call      a fresh process each: numba.njit compiling the primal (the baseline), fwdad's
                  f(...) then f.jvp [<= 1.5x], fwdad's value_and_grad alone [<= 2x]; on the
                  Lorenz RK4, the MNIST MLP loss of fwdad.models and a 2-D diffusion stencil
Timed rows run in three interleaved rounds: seconds is the best round, `spread` the lowest and
highest ratio (or overhead) over the rounds.
"""
import json
import subprocess
import sys
import textwrap

import numpy as np

from .. import forward_grad
from ..drivers.gradients import chunk_size, exact_gradient_driver, forward_gradient_driver
from ..random import DISTRIBUTIONS, NORMAL_TABLE
from . import peers, problems
from .harness import timeit

ROUNDS = 3


def square(x):
    return x * x


def squares(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i]
    return s


def calls_of(f, x):
    """{method: (the call through fwdad, the compiled function it ends in, called directly)}."""
    args, active = (x,), [0]
    tangent = np.ones_like(x) if isinstance(x, np.ndarray) else 1.0
    scalar, vector = f.specialization(args, active), f.specialization(args, active, "vector")
    jvp = scalar.jvp
    sampled, _ = forward_gradient_driver(f.backend, scalar, vector, 1)
    exact, _ = exact_gradient_driver(f.backend, scalar, vector, False)
    seed, chunk = np.uint64(0), chunk_size(args, active, None)
    return {"f(...)": (lambda: f(x), lambda: f.primal_njit(x)),
            "f.jvp": (lambda: f.jvp(args, (tangent,)), lambda: jvp(x, tangent)),
            "f.forward_gradient": (lambda: f.forward_gradient(x),
                                   lambda: sampled(x, seed, 0, 1, DISTRIBUTIONS["normal"], NORMAL_TABLE)),
            "f.value_and_grad": (lambda: f.value_and_grad(x), lambda: exact(x, chunk))}


def overhead_rows(table, quick):
    """Per call: fwdad's method and the compiled code it ends in, in interleaved rounds."""
    kw = dict(repeat=3, min_time=0.02 if quick else 0.1)
    for name, function, x in (("x * x, float", square, 1.5), ("sum of squares, 3-element array", squares,
                                                               np.array([0.5, -1.0, 2.0]))):
        calls = calls_of(forward_grad(function), x)
        for fwdad_call, direct in calls.values():        # compiled and warm before timing
            fwdad_call(), direct()
        rounds = [{method: (timeit(call, **kw), timeit(direct, **kw)) for method, (call, direct) in calls.items()}
                  for _ in range(ROUNDS)]
        for method in calls:
            overheads = [(r[method][0] - r[method][1]) * 1e6 for r in rounds]
            table.add(f"call overhead, {name}", method, min(r[method][0] for r in rounds),
                      direct_time=min(r[method][1] for r in rounds), overhead_us=min(overheads),
                      spread=f"{min(overheads):.2f}-{max(overheads):.2f} us")


def rosenbrock_rows(table, quick):
    """f.jvp of Rosenbrock vs the hand-written Numba JVP, interleaved rounds."""
    n = 10_000 if quick else 100_000
    row = peers.suite("rosenbrock", n=n, include=("numba",))
    rng = np.random.default_rng(0)
    x, v = rng.uniform(-2.0, 2.0, n), rng.standard_normal(n)
    f = forward_grad(problems.rosenbrock)
    calls = {"numba, by hand": row["numba"].jvp, "fwdad f.jvp": lambda: f.jvp((x,), (v,))}
    kw = dict(repeat=3, min_time=0.02 if quick else 0.2)
    rounds = [{name: timeit(call, **kw) for name, call in calls.items()} for _ in range(ROUNDS)]
    benchmark = f"rosenbrock n={n}, jvp"
    for name in calls:
        ratios = [r[name] / r["numba, by hand"] for r in rounds]
        table.add(benchmark, name, min(r[name] for r in rounds), spread=f"{min(ratios):.3f}-{max(ratios):.3f}")
    table.set_baseline(benchmark, "numba, by hand")


FIRST_CALL_CHILD = textwrap.dedent("""
    import json, sys, time
    import numba, numpy as np
    import fwdad
    from fwdad.bench.callpath import first_call_program
    numba.njit(lambda x: x + 1.0)(1.0)          # Numba's own set-up is not the program's
    function, args, tangents = first_call_program(sys.argv[1])
    start = time.perf_counter()
    if sys.argv[2] == "numba":
        numba.njit(error_model="numpy")(function)(*args)
    elif sys.argv[2] == "jvp":
        f = fwdad.forward_grad(function)
        f(*args)
        f.jvp(args, tangents)
    else:
        fwdad.forward_grad(function).value_and_grad(*args)
    print(json.dumps({"seconds": time.perf_counter() - start}))
""")

FIRST_CALL_PROGRAMS = ("lorenz_rk4", "mlp", "diffusion")
FIRST_CALLS = {"numba": "numba.njit primal", "jvp": "fwdad f(...) then f.jvp", "vg": "fwdad value_and_grad"}


def first_call_program(name):
    """(function, arguments, tangents) of a first-call program, small sizes (compile time does
    not depend on them)."""
    rng = np.random.default_rng(0)
    if name == "lorenz_rk4":
        return (problems.lorenz_rk4, (*problems.LORENZ_PARAMS, 1.0, 1.0, 1.0, 100, 0.001),
                (1.0, 0.5, -0.3, 0.0, 0.0, 0.0, None, None))
    if name == "mlp":
        from ..models.mlp import mlp_loss
        sizes = np.array([64, 32, 10])
        n = 64 * 32 + 32 + 32 * 10 + 10
        theta = (rng.standard_normal(n) * 0.1).astype(np.float32)
        X, Y = rng.standard_normal((16, 64)).astype(np.float32), rng.integers(0, 10, 16)
        return mlp_loss, (theta, sizes, X, Y), (np.ones(n, np.float32), None, None, None)
    from .arrays import diffusion
    return diffusion, (rng.uniform(size=(16, 16)), 0.1, 10), (np.ones((16, 16)), 0.1, None)


def first_call(program, mode):
    """Seconds of the first call in a fresh process, or the child's last error line."""
    run = subprocess.run([sys.executable, "-c", FIRST_CALL_CHILD, program, mode], capture_output=True,
                         text=True, timeout=900)
    if run.returncode != 0:
        return None, (run.stderr.strip().splitlines() or ["no output"])[-1]
    return json.loads(run.stdout.strip().splitlines()[-1])["seconds"], None


def first_call_rows(table, quick):
    """Fresh processes, the modes interleaved, the best of the rounds (2 in quick mode: Lorenz only)."""
    for program in FIRST_CALL_PROGRAMS[:1] if quick else FIRST_CALL_PROGRAMS:
        rounds = []
        for _ in range(2 if quick else ROUNDS):
            rounds.append({mode: first_call(program, mode) for mode in FIRST_CALLS})
        benchmark = f"first call (fresh process), {program}"
        for mode, name in FIRST_CALLS.items():
            times = [r[mode][0] for r in rounds if r[mode][0] is not None]
            if not times:
                table.note(f"{benchmark}, {name} failed: {rounds[-1][mode][1]}")
                continue
            ratios = [r[mode][0] / r["numba"][0] for r in rounds if r[mode][0] and r["numba"][0]]
            table.add(benchmark, name, min(times),
                      spread=f"{min(ratios):.2f}-{max(ratios):.2f}" if ratios else None)
        table.set_baseline(benchmark, "numba.njit primal")


def callpath_section(table, quick):
    """The rows described in this module's docstring."""
    table.section("callpath", "The call path: overhead per call, first calls",
                  "call overhead: one call of fwdad's method beside the compiled code it ends in, "
                  "called directly (overhead = the difference, spread over 3 rounds); rosenbrock: "
                  "f.jvp vs hand-written Numba; first call: a fresh process, ratio to numba.njit "
                  "compiling the primal alone.", "time",
                  (("direct_time", "compiled code"), ("overhead_us", "overhead us"), ("spread", "spread")))
    overhead_rows(table, quick)
    rosenbrock_rows(table, quick)
    first_call_rows(table, quick)
