"""One prepared run on a machine with a GPU: correctness against the CPU, then timings.

    python benchmarks/gpu_check.py [--out DIR] [--instances 1048576] [--steps 1000]

Checks (CUDA result vs the CPU target): batch_jvp of a Lorenz-63 RK4 integration, forward
gradients, FGD, a user's own kernel calling fwdad's device function, and the error for device
code that allocates. Times (float64, value + JVP along a per-instance direction): fwdad's
batch_jvp kernel vs a hand-written numba-cuda tangent kernel vs JAX jit(vmap(jvp)) with
lax.fori_loop, and R_f = t(value + JVP) / t(value). Prints a table and writes gpu_check.json.
"""
import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from numba import cuda  # noqa: E402

import fwdad  # noqa: E402
from fwdad.bench.problems import allocates, batch_loss, lorenz_rk4, quadratic, rosenbrock2  # noqa: E402


# ---- hand-written numba-cuda kernels: what an expert writes ------------------------------------------
@cuda.jit(device=True, inline=True)
def rhs(s, r, b, x, y, z, ds, dr, db, dx, dy, dz):
    return (s * (y - x), x * (r - z) - y, x * y - b * z,
            ds * (y - x) + s * (dy - dx), dx * (r - z) + x * (dr - dz) - dy, dx * y + x * dy - db * z - b * dz)


@cuda.jit
def hand_jvp_kernel(s, r, b, ds, dr, db, n, dt, out_value, out_tangent):
    i = cuda.grid(1)
    if i < s.shape[0]:
        si, ri, bi, dsi, dri, dbi = s[i], r[i], b[i], ds[i], dr[i], db[i]
        x = y = z = 1.0
        dx = dy = dz = 0.0
        h = 0.5 * dt
        for _ in range(n):
            a1, b1, c1, da1, db1, dc1 = rhs(si, ri, bi, x, y, z, dsi, dri, dbi, dx, dy, dz)
            a2, b2, c2, da2, db2, dc2 = rhs(si, ri, bi, x + h * a1, y + h * b1, z + h * c1,
                                            dsi, dri, dbi, dx + h * da1, dy + h * db1, dz + h * dc1)
            a3, b3, c3, da3, db3, dc3 = rhs(si, ri, bi, x + h * a2, y + h * b2, z + h * c2,
                                            dsi, dri, dbi, dx + h * da2, dy + h * db2, dz + h * dc2)
            a4, b4, c4, da4, db4, dc4 = rhs(si, ri, bi, x + dt * a3, y + dt * b3, z + dt * c3,
                                            dsi, dri, dbi, dx + dt * da3, dy + dt * db3, dz + dt * dc3)
            w = dt / 6.0
            x += w * (a1 + 2.0 * a2 + 2.0 * a3 + a4)
            y += w * (b1 + 2.0 * b2 + 2.0 * b3 + b4)
            z += w * (c1 + 2.0 * c2 + 2.0 * c3 + c4)
            dx += w * (da1 + 2.0 * da2 + 2.0 * da3 + da4)
            dy += w * (db1 + 2.0 * db2 + 2.0 * db3 + db4)
            dz += w * (dc1 + 2.0 * dc2 + 2.0 * dc3 + dc4)
        out_value[i] = x + y + z
        out_tangent[i] = dx + dy + dz


def primal_kernel_for(device_primal):
    @cuda.jit
    def primal_kernel(s, r, b, n, dt, out_value):
        i = cuda.grid(1)
        if i < s.shape[0]:
            out_value[i] = device_primal(s[i], r[i], b[i], 1.0, 1.0, 1.0, n, dt)
    return primal_kernel


def best_time(fn, repeat=5):
    fn()
    cuda.synchronize()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def relative(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def checks(results, n=4096, steps=1000):
    rng = np.random.default_rng(0)
    s, r, b = 10 + rng.random(n), 28 + rng.random(n), 2.5 + rng.random(n)
    ds, dr, db = rng.normal(size=(3, n))
    primals, tangents = (s, r, b, 1.0, 1.0, 1.0, steps, 0.001), (ds, dr, db) + (None,) * 5
    cpu = fwdad.forward_grad(lorenz_rk4, target="parallel").batch_jvp(primals, tangents)
    gpu = fwdad.forward_grad(lorenz_rk4, target="cuda").batch_jvp(primals, tangents)
    results["check batch_jvp value (rel)"] = relative(gpu[0], cpu[0])
    results["check batch_jvp tangent (rel)"] = relative(gpu[1], cpu[1])
    x = np.linspace(-1, 1, 50)
    fg_cpu = fwdad.forward_grad(quadratic).forward_gradient(x, 0.3, seed=9, directions=64)
    fg_gpu = fwdad.forward_grad(quadratic, target="cuda").forward_gradient(x, 0.3, seed=9, directions=64)
    results["check forward_gradient (rel)"] = max(relative(fg_gpu[1][0], fg_cpu[1][0]),
                                                  relative(fg_gpu[1][1], fg_cpu[1][1]))
    runs = [fwdad.fgd(fwdad.forward_grad(rosenbrock2, target=t), (-1.0, 0.0), lr=5e-4, steps=min(2000, n),
                      seed=2, progress=False) for t in ("cpu", "cuda")]
    results["check fgd params (abs)"] = float(max(abs(a - c) for a, c in zip(runs[0].params, runs[1].params)))
    results["check fgd steps/s (cuda, launch-bound)"] = runs[1].steps_per_second
    X = rng.normal(size=(512, 16))
    y = X @ rng.normal(size=16) + 0.3
    runs = [fwdad.fgd(fwdad.forward_grad(batch_loss, target=t), (np.zeros(16), 0.0), lr=1e-2, steps=200, seed=3,
                      data=(X, y), batch_size=32, clip=1.0, optimizer="adam", trajectory=True, progress=False)
            for t in ("cpu", "cuda")]
    results["check fgd data/clip/adam/trajectory (abs)"] = float(max(
        np.abs(runs[0].trajectory - runs[1].trajectory).max(), abs(runs[0].params[1] - runs[1].params[1])))
    results["check fgd minibatch steps/s (cuda, launch-bound)"] = runs[1].steps_per_second
    f = fwdad.forward_grad(lorenz_rk4)
    jvp = f.cuda_jvp(10.0, 28.0, 2.5, 1.0, 1.0, 1.0, 100, 0.001, active=(0, 1, 2))

    @cuda.jit
    def sweep(rho, out_value, out_tangent):
        i = cuda.grid(1)
        if i < rho.shape[0]:
            value, tangent = jvp(10.0, rho[i], 2.5, 1.0, 1.0, 1.0, 100, 0.001, 0.0, 1.0, 0.0)
            out_value[i] = value
            out_tangent[i] = tangent

    rho = np.linspace(20.0, 30.0, 256)
    value, tangent = np.zeros(256), np.zeros(256)
    sweep[2, 128](rho, value, tangent)
    expected = [f.jvp((10.0, q, 2.5, 1.0, 1.0, 1.0, 100, 0.001), (0.0, 1.0, 0.0) + (None,) * 5)[1] for q in rho]
    results["check user kernel (rel)"] = relative(tangent, expected)
    try:
        fwdad.forward_grad(allocates, target="cuda").batch_jvp((np.ones((4, 3)),), (np.ones((4, 3)),))
        results["check allocation error"] = "no error (wrong)"
    except fwdad.CompilationError as error:
        results["check allocation error"] = str(error).splitlines()[0]


def timings(results, instances, steps):
    rng = np.random.default_rng(1)
    host = [10 + rng.random(instances), 28 + rng.random(instances), 2.5 + rng.random(instances)]
    host += list(rng.normal(size=(3, instances)))
    s, r, b, ds, dr, db = (cuda.to_device(a) for a in host)
    dt = 0.001
    out_v, out_t = cuda.device_array(instances), cuda.device_array(instances)
    blocks = (instances + 127) // 128
    forward = fwdad.forward_grad(lorenz_rk4, target="cuda")
    primals, tangents = (s, r, b, 1.0, 1.0, 1.0, steps, dt), (ds, dr, db) + (None,) * 5
    fw = best_time(lambda: forward.batch_jvp(primals, tangents))
    hand = best_time(lambda: hand_jvp_kernel[blocks, 128](s, r, b, ds, dr, db, steps, dt, out_v, out_t))
    primal = primal_kernel_for(forward.cuda_primal())
    fw_primal = best_time(lambda: primal[blocks, 128](s, r, b, steps, dt, out_v))
    value, tangent = forward.batch_jvp(primals, tangents)
    hand_jvp_kernel[blocks, 128](s, r, b, ds, dr, db, steps, dt, out_v, out_t)
    results["check fwdad vs hand kernel tangent (rel)"] = relative(tangent.copy_to_host(), out_t.copy_to_host())
    results["lorenz fwdad batch_jvp ms"] = fw * 1e3
    results["lorenz hand-written kernel ms"] = hand * 1e3
    results["lorenz primal kernel ms"] = fw_primal * 1e3
    results["fwdad / hand-written"] = fw / hand
    results["R_f (GPU)"] = fw / fw_primal
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        def jax_lorenz(p):
            def step(_, state):
                x, y, z = state
                sg, rh, bt = p[0], p[1], p[2]
                def f(x, y, z):
                    return sg * (y - x), x * (rh - z) - y, x * y - bt * z
                a1 = f(x, y, z)
                a2 = f(x + 0.5 * dt * a1[0], y + 0.5 * dt * a1[1], z + 0.5 * dt * a1[2])
                a3 = f(x + 0.5 * dt * a2[0], y + 0.5 * dt * a2[1], z + 0.5 * dt * a2[2])
                a4 = f(x + dt * a3[0], y + dt * a3[1], z + dt * a3[2])
                return tuple(v + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
                             for v, k1, k2, k3, k4 in zip((x, y, z), a1, a2, a3, a4))
            x, y, z = jax.lax.fori_loop(0, steps, step, (1.0, 1.0, 1.0))
            return x + y + z

        batched = jax.jit(jax.vmap(lambda p, v: jax.jvp(jax_lorenz, (p,), (v,))))
        P = jnp.asarray(np.stack(host[:3], axis=1))
        V = jnp.asarray(np.stack(host[3:], axis=1))
        jax_time = best_time(lambda: jax.block_until_ready(batched(P, V)))
        jv, jt = batched(P, V)
        results["check jax vs fwdad tangent (rel)"] = relative(np.asarray(jt), tangent.copy_to_host())
        results["lorenz JAX jit(vmap(jvp)) ms"] = jax_time * 1e3
        results["JAX / fwdad"] = jax_time / fw
    except Exception as error:                        # JAX is an optional peer
        results["JAX"] = f"skipped: {type(error).__name__}: {error}"[:300]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=".")
    parser.add_argument("--instances", type=int, default=1 << 20)
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    name = getattr(cuda.get_current_device(), "name", "CUDA simulator")
    results = {"device": name.decode() if isinstance(name, bytes) else str(name),
               "simulator": bool(os.environ.get("NUMBA_ENABLE_CUDASIM")),
               "python": platform.python_version(), "numpy": np.__version__,
               "numba": __import__("numba").__version__, "fwdad": fwdad.__version__,
               "instances": args.instances, "steps": args.steps}
    start = time.perf_counter()
    checks(results, min(4096, args.instances), min(1000, args.steps))
    results["checks seconds"] = time.perf_counter() - start
    timings(results, args.instances, args.steps)
    results["total seconds"] = time.perf_counter() - start
    width = max(map(len, results))
    for key, value in results.items():
        print(f"{key:<{width}}  {value:.4g}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    with open(os.path.join(args.out, "gpu_check.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
