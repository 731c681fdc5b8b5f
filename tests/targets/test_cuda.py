"""The CUDA target, run in the CUDA simulator (NUMBA_ENABLE_CUDASIM=1) and checked against the CPU.

The simulator is enabled by tests/cuda_sim.py before numba-cuda is imported; on a machine with a
GPU, benchmarks/gpu_check.py runs the same checks for real and times them.
"""
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("numba.cuda")
from helpers import PROGRAMS


def run_simulated(code):
    """Run `code` in a fresh interpreter with the CUDA simulator on; return its stdout."""
    environment = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONWARNINGS="ignore")
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         env=environment, cwd=PROGRAMS, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.mark.slow          # the default profile's slowest check (20-70 s in a simulator); CI runs it
def test_cuda_target_matches_the_cpu():
    out = run_simulated("""
        import numpy as np, fwdad, json
        from cuda_programs import (lorenz_rk4, quadratic, rosenbrock2, scale_into, lorenz_kernel_with_user_jvp,
                                   batch_loss)
        rng = np.random.default_rng(0)
        n = 40
        s, r, b = 10 + rng.random(n), 28 + rng.random(n), 2.5 + rng.random(n)
        ds, dr, db = rng.normal(size=(3, n))
        primals = (s, r, b, 1.0, 1.0, 1.0, 50, 0.001)
        tangents = (ds, dr, db, None, None, None, None, None)
        cpu = fwdad.forward_grad(lorenz_rk4).batch_jvp(primals, tangents)
        gpu = fwdad.forward_grad(lorenz_rk4, target="cuda").batch_jvp(primals, tangents)
        out = {"batch": [float(np.abs(cpu[k] - gpu[k]).max()) for k in range(2)]}
        x = np.arange(6.0)
        fg_cpu = fwdad.forward_grad(quadratic).forward_gradient(x, 0.5, seed=4, directions=5)
        fg_gpu = fwdad.forward_grad(quadratic, target="cuda").forward_gradient(x, 0.5, seed=4, directions=5)
        out["fg"] = [float(np.abs(fg_cpu[1][0] - fg_gpu[1][0]).max()), abs(fg_cpu[1][1] - fg_gpu[1][1])]
        runs = [fwdad.fgd(fwdad.forward_grad(rosenbrock2, target=t), (-1.0, 0.0), lr=1e-4, steps=200,
                          seed=1, optimizer="momentum", progress=False) for t in ("cpu", "cuda")]
        out["fgd"] = [abs(a - b) for a, b in zip(runs[0].params, runs[1].params)]
        out["losses"] = float(np.abs(runs[0].losses - runs[1].losses).max())
        X = rng.normal(size=(50, 4)); y = X @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.3
        out["minibatches"] = []
        for options in [dict(optimizer="adam", clip=0.5, trajectory=True), dict(shuffle=False, directions=3)]:
            runs = [fwdad.fgd(fwdad.forward_grad(batch_loss, target=t), (np.zeros(4), 0.0), lr=1e-2, steps=30,
                              seed=5, data=(X, y), batch_size=8, progress=False, **options) for t in ("cpu", "cuda")]
            out["minibatches"] += [float(np.abs(runs[0].params[0] - runs[1].params[0]).max()),
                                   abs(runs[0].params[1] - runs[1].params[1]),
                                   float(np.abs(runs[0].losses - runs[1].losses).max() / runs[0].losses.max())]
            if options.get("trajectory"):
                out["trajectory"] = [runs[1].trajectory.shape, float(np.abs(runs[0].trajectory - runs[1].trajectory).max())]
                unclipped = fwdad.fgd(fwdad.forward_grad(batch_loss, target="cuda"), (np.zeros(4), 0.0), lr=1e-2,
                                      steps=30, seed=5, data=(X, y), batch_size=8, progress=False, optimizer="adam")
                out["clip_changes_the_run"] = float(np.abs(unclipped.params[0] - runs[1].params[0]).max())
        out["user_kernel"] = lorenz_kernel_with_user_jvp()
        y, dy = np.zeros((n, 3)), np.zeros((n, 3))
        values, tangents2 = fwdad.forward_grad(scale_into, target="cuda").batch_jvp(
            (y, s, 2.0), (dy, ds, None))
        out["in_place"] = [float(np.abs(y[:, 1] - 2 * s).max()), float(np.abs(dy[:, 1] - 2 * ds).max())]
        print(json.dumps(out))
    """)
    import json
    result = json.loads(out.strip().splitlines()[-1])
    assert max(result["batch"]) < 1e-12
    assert max(result["fg"]) < 1e-12
    assert max(result["fgd"]) < 1e-12 and result["losses"] < 1e-12
    assert result["user_kernel"] < 1e-12
    assert max(result["minibatches"]) < 1e-12          # data=, batch_size, shuffle, clip, adam, K = 3
    assert result["trajectory"] == [[31, 5], result["trajectory"][1]] and result["trajectory"][1] < 1e-12
    assert result["clip_changes_the_run"] > 1e-3
    assert max(result["in_place"]) == 0.0


def test_cuda_errors_name_the_user_line():
    out = run_simulated("""
        import numpy as np, fwdad
        from cuda_programs import allocates
        try:
            fwdad.forward_grad(allocates, target="cuda").batch_jvp((np.ones((4, 3)),), (np.ones((4, 3)),))
        except fwdad.CompilationError as error:
            print("ERROR", error)
    """)
    assert "ERROR" in out and "cuda_programs.py:" in out and "cannot allocate arrays" in out


def test_array_outputs_are_refused_with_a_clear_error():
    out = run_simulated("""
        import numpy as np, fwdad
        from cuda_programs import returns_array
        try:
            fwdad.forward_grad(returns_array, target="cuda").batch_jvp((np.ones((4, 3)),), (np.ones((4, 3)),))
        except fwdad.FwdadError as error:
            print("ERROR", error)
    """)
    assert "ERROR" in out and "scalar or a tuple of scalars" in out
