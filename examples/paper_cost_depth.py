"""The paper's runtime cost table and depth scaling (Figure 6): R_f and R_b for MLPs.

    python examples/paper_cost_depth.py [--depths 1,2,4,8,16]

R_f = t(value + JVP) / t(value), with fwdad's JVP of fwdad.models.mlp_loss;
R_b = t(value + gradient) / t(value), with the hand-derived backpropagation.
"""
import argparse
import time

import numpy as np

import fwdad
from fwdad.models import init_mlp, mlp_loss, mlp_sizes, mlp_value, mlp_value_and_grad


def seconds(fn, repeat=5):
    fn()
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(depths=(1, 2, 4, 8), batch=64):
    f = fwdad.forward_grad(mlp_loss, wrt=(0,))
    rng = np.random.default_rng(0)
    X = rng.random((batch, 784)).astype(np.float32)
    Y = rng.integers(0, 10, batch)
    rows = []
    for depth in depths:
        sizes = mlp_sizes(784, 1024, depth, 10)
        theta = init_mlp(sizes, 0)
        v = rng.standard_normal(theta.size).astype(np.float32)
        value = seconds(lambda: mlp_value(theta, sizes, X, Y))
        jvp = seconds(lambda: f.jvp((theta, sizes, X, Y), (v, None, None, None)))
        grad = seconds(lambda: mlp_value_and_grad(theta, sizes, X, Y))
        rows.append((depth, theta.size, value, jvp / value, grad / value))
        print(f"{depth:3d} hidden layers  {theta.size:>10,} parameters  value {value * 1e3:7.2f} ms  "
              f"R_f {jvp / value:5.2f}  R_b {grad / value:5.2f}")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="1,2,4,8")
    args = parser.parse_args()
    main(tuple(int(d) for d in args.depths.split(",")))
