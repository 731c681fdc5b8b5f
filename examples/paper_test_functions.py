"""The paper's Section 5.1: forward gradient vs gradient descent on Beale and Rosenbrock.

    python examples/paper_test_functions.py [--runs 10] [--out test_functions.png]

Copy and change it: the functions are plain Python, fwdad.fgd runs each whole optimization
as one compiled loop (gradient="exact" gives the gradient-descent baseline).
"""
import argparse

import numpy as np

import fwdad


def beale(x, y):
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y * y) ** 2 + (2.625 - x + x * y ** 3) ** 2


def rosenbrock(x, y):
    return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2


SETTINGS = {"beale": (beale, (1.0, 1.0), 0.01, 1000), "rosenbrock": (rosenbrock, (-1.0, 0.0), 5e-4, 25000)}


def main(runs=10, out=None):
    results = {}
    for name, (function, start, lr, steps) in SETTINGS.items():
        for gradient in ("forward", "exact"):
            finals, seconds = [], []
            for seed in range(runs):
                r = fwdad.fgd(function, start, lr=lr, steps=steps, seed=seed, gradient=gradient,
                              trajectory=True, progress=False)
                finals.append(r.losses[-1])
                seconds.append(r.seconds)
                results.setdefault((name, gradient), []).append(r)
            print(f"{name:10s} {gradient:8s} final f = {np.mean(finals):.3g} ± {np.std(finals):.2g}, "
                  f"{np.median(seconds) / steps * 1e9:.0f} ns / iteration (median of {runs} runs), "
                  f"end point {r.params}")
    if out:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        figure, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, name in zip(axes, SETTINGS):
            for gradient, color in (("forward", "tab:blue"), ("exact", "tab:orange")):
                for r in results[(name, gradient)]:
                    ax.plot(r.losses, color=color, alpha=0.3)
            ax.set_yscale("log"), ax.set_title(name), ax.set_xlabel("iteration")
        figure.savefig(out, dpi=100)
        print("wrote", out)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    main(args.runs, args.out)
