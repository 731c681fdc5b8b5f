"""Sensitivity of the Lorenz-63 end state to (sigma, rho, beta), and how chaos makes it grow.

The state (x, y, z) after T time units of RK4 is a plain Python function of the parameters;
`ff.jacobian` gives the 3 x 3 matrix d(x, y, z)(T) / d(sigma, rho, beta) in one vector-mode
forward pass (three directions). We compare it with central finite differences for a range of
T and plot |d state / d param| against T: on the attractor it grows like exp(lambda T) with
the largest Lyapunov exponent lambda ~ 0.906, and finite differences break down long before
forward mode does (a perturbation of size h grows to h exp(lambda T) and stops being small).

    python examples/lorenz_sensitivity.py [--quick] [--out lorenz_sensitivity.png]
"""
import argparse
import math
import time

import numpy as np

import fwdad

PARAMS = (10.0, 28.0, 8.0 / 3.0)        # sigma, rho, beta: the classic chaotic regime
NAMES = ("sigma", "rho", "beta")
START = (1.0, 1.0, 1.0)                 # x, y, z at t = 0
LYAPUNOV = 0.9056                       # largest Lyapunov exponent of these parameters
FD_STEP = 1e-6                          # relative step of the central differences


# ---- the model: plain Python that fwdad differentiates ------------------------------------------
def lorenz_rhs(sigma, rho, beta, x, y, z):
    return sigma * (y - x), x * (rho - z) - y, x * y - beta * z


def rk4_step(sigma, rho, beta, x, y, z, dt):
    """One classical Runge-Kutta step of the Lorenz equations."""
    dx1, dy1, dz1 = lorenz_rhs(sigma, rho, beta, x, y, z)
    dx2, dy2, dz2 = lorenz_rhs(sigma, rho, beta, x + 0.5 * dt * dx1, y + 0.5 * dt * dy1, z + 0.5 * dt * dz1)
    dx3, dy3, dz3 = lorenz_rhs(sigma, rho, beta, x + 0.5 * dt * dx2, y + 0.5 * dt * dy2, z + 0.5 * dt * dz2)
    dx4, dy4, dz4 = lorenz_rhs(sigma, rho, beta, x + dt * dx3, y + dt * dy3, z + dt * dz3)
    h = dt / 6.0
    return (x + h * (dx1 + 2.0 * dx2 + 2.0 * dx3 + dx4), y + h * (dy1 + 2.0 * dy2 + 2.0 * dy3 + dy4),
            z + h * (dz1 + 2.0 * dz2 + 2.0 * dz3 + dz4))


@fwdad.forward_grad(wrt=("sigma", "rho", "beta"))
def end_state(sigma, rho, beta, x0, y0, z0, steps, dt):
    """(x, y, z) after `steps` RK4 steps of size dt from (x0, y0, z0)."""
    x = x0
    y = y0
    z = z0
    for _ in range(steps):
        x, y, z = rk4_step(sigma, rho, beta, x, y, z, dt)
    state = np.empty(3)
    state[0] = x
    state[1] = y
    state[2] = z
    return state


# ---- sensitivities ------------------------------------------------------------------------------
def sensitivity(steps, dt):
    """d(x, y, z)(T) / d(sigma, rho, beta) from fwdad, as a 3 x 3 matrix (rows: state)."""
    jac = end_state.jacobian(*PARAMS, *START, steps, dt)
    return np.stack(jac[:3], axis=1)


def finite_difference_sensitivity(steps, dt):
    """The same matrix by central differences of the compiled primal (6 evaluations)."""
    columns = []
    for j, p in enumerate(PARAMS):
        h = FD_STEP * abs(p)
        plus = list(PARAMS)
        minus = list(PARAMS)
        plus[j] = p + h
        minus[j] = p - h
        columns.append((end_state(*plus, *START, steps, dt) - end_state(*minus, *START, steps, dt)) / (2 * h))
    return np.stack(columns, axis=1)


def best_time(fn, repeats):
    fn()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def sweep(horizons, dt):
    """Per horizon T: the fwdad and finite-difference Jacobians and their relative difference."""
    rows = []
    for T in horizons:
        steps = int(round(T / dt))
        exact = sensitivity(steps, dt)
        fd = finite_difference_sensitivity(steps, dt)
        rows.append({"T": T, "steps": steps, "jacobian": exact, "jacobian_fd": fd,
                     "column_norms": np.linalg.norm(exact, axis=0),
                     "column_norms_fd": np.linalg.norm(fd, axis=0),
                     "rel_error": float(np.linalg.norm(exact - fd) / np.linalg.norm(exact))})
    return rows


def plot(rows, out):
    """Top: |d state(T) / d param| against T, fwdad (lines) and finite differences (crosses).
    Bottom: their relative difference."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    T = np.array([r["T"] for r in rows])
    norms = np.array([r["column_norms"] for r in rows])
    norms_fd = np.array([r["column_norms_fd"] for r in rows])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 6.0), sharex=True, height_ratios=(2, 1))
    for j, name in enumerate(NAMES):
        line, = top.semilogy(T, norms[:, j], label=f"d state / d {name}")
        top.semilogy(T, norms_fd[:, j], "x", color=line.get_color(), ms=3)
    mid = len(T) // 2                                       # anchor the reference slope mid-way
    top.semilogy(T, norms[mid].max() * np.exp(LYAPUNOV * (T - T[mid])), "k--", lw=0.8,
                 label=f"exp({LYAPUNOV} T)")
    top.set_ylabel("|d (x, y, z)(T) / d parameter|")
    top.set_title("Lorenz-63 end state: fwdad (lines), central differences (x)", fontsize=10)
    top.legend(fontsize=8)
    bottom.semilogy(T, [r["rel_error"] for r in rows], "k.-", ms=3)
    bottom.set_ylabel("central diff. vs fwdad\n(relative difference)")
    bottom.set_xlabel("integration time T")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


SETTINGS = {
    "full": dict(dt=0.01, horizons=[0.25 * k for k in range(1, 161)], repeats=50),
    "quick": dict(dt=0.01, horizons=[0.5 * k for k in range(1, 33)], repeats=5),
}


def main(quick=False, out=None):
    """Sweep T, time the Jacobian at the longest T, save the plot; return the numbers."""
    cfg = SETTINGS["quick" if quick else "full"]
    dt, horizons = cfg["dt"], cfg["horizons"]
    start = time.perf_counter()
    sensitivity(1, dt)                                      # compile before timing anything
    compile_seconds = time.perf_counter() - start
    rows = sweep(horizons, dt)
    steps = rows[-1]["steps"]
    results = {
        "rows": rows, "settings": cfg, "compile_seconds": compile_seconds,
        "time_primal": best_time(lambda: end_state(*PARAMS, *START, steps, dt), cfg["repeats"]),
        "time_jacobian": best_time(lambda: sensitivity(steps, dt), cfg["repeats"]),
        "time_fd": best_time(lambda: finite_difference_sensitivity(steps, dt), cfg["repeats"]),
        "plot": plot(rows, out or "lorenz_sensitivity.png"),
    }
    print_report(results)
    return results


def print_report(r):
    rows = r["rows"]
    print(f"Lorenz-63, (sigma, rho, beta) = ({PARAMS[0]:g}, {PARAMS[1]:g}, {PARAMS[2]:.4g}), start {START}, "
          f"RK4 dt = {r['settings']['dt']}")
    print(f"\n{'T':>6} {'|dS/dsigma|':>12} {'|dS/drho|':>12} {'|dS/dbeta|':>12}   {'fwdad vs central diff.':>22}")
    shown = [row for row in rows if row["T"] in (0.25, 0.5, 1, 2, 4, 6, 8, 10, 15, 20, 25, 30, 35, 40)]
    for row in shown:
        norms = "".join(f"{n:13.4e}" for n in row["column_norms"])
        print(f"{row['T']:6.2f}{norms}   {row['rel_error']:22.1e}")
    T = rows[-1]["T"]
    print(f"\nAt T = {T:g} ({rows[-1]['steps']} steps; first call compiled in {r['compile_seconds']:.2f} s): "
          f"primal {r['time_primal'] * 1e6:.0f} us, fwdad jacobian {r['time_jacobian'] * 1e6:.0f} us, "
          f"central differences {r['time_fd'] * 1e6:.0f} us")
    print(f"d(x, y, z)/d(sigma, rho, beta) at T = {T:g}:\n{np.array2string(rows[-1]['jacobian'], precision=5)}")
    print(f"plot: {r['plot']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings (seconds)")
    parser.add_argument("--out", default="lorenz_sensitivity.png", help="where to save the plot (PNG)")
    options = parser.parse_args()
    main(quick=options.quick, out=options.out)
