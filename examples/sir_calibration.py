"""Calibrate an SIR epidemic model's (beta, gamma) to noisy observations, three ways.

The model is written as plain Python (an RK4 time-stepping loop over the days); fwdad
differentiates it in forward mode and compiles the tangent code with Numba. We fit the
infection rate beta and recovery rate gamma to noisy observations of the infected fraction
I(t) by Adam with

  (a) exact gradients from forward mode (what `value_and_grad` computes: one vector-mode
      pass carrying one direction per parameter),
  (b) forward gradients (the unbiased one-direction estimate (grad f . v) v of Baydin et
      al. 2022), both as one compiled loop (`fwdad.fgd`), and
  (c) central finite differences of the compiled primal, driven from Python (the baseline),

and compare fwdad's gradient with the finite-difference one for accuracy and time.

    python examples/sir_calibration.py            # full settings
    python examples/sir_calibration.py --quick    # tiny settings (the test suite runs these)
"""
import argparse
import math
import time

import numpy as np

import fwdad

TRUE_PARAMS = (0.5, 0.2)        # beta (1/day), gamma (1/day): R0 = 2.5
INITIAL_GUESS = (0.3, 0.15)     # R0 = 2: an epidemic, but the wrong one
I0 = 1e-3                       # infected fraction on day 0
NOISE = 0.1                     # multiplicative (log-normal) observation noise
TARGET = 1.0 + 1e-4             # "converged": loss within 0.01% of the exact-gradient fit's final loss


# ---- the model: plain Python that fwdad differentiates ------------------------------------------
def sir_rhs(beta, gamma, s, i):
    """dS/dt and dI/dt of the SIR model (population fractions; R = 1 - S - I)."""
    infection = beta * s * i
    return -infection, infection - gamma * i


def rk4_step(beta, gamma, s, i, dt):
    """One classical Runge-Kutta step of the SIR equations."""
    ds1, di1 = sir_rhs(beta, gamma, s, i)
    ds2, di2 = sir_rhs(beta, gamma, s + 0.5 * dt * ds1, i + 0.5 * dt * di1)
    ds3, di3 = sir_rhs(beta, gamma, s + 0.5 * dt * ds2, i + 0.5 * dt * di2)
    ds4, di4 = sir_rhs(beta, gamma, s + dt * ds3, i + dt * di3)
    s_next = s + dt / 6.0 * (ds1 + 2.0 * ds2 + 2.0 * ds3 + ds4)
    i_next = i + dt / 6.0 * (di1 + 2.0 * di2 + 2.0 * di3 + di4)
    return s_next, i_next


def infected_curve(beta, gamma, i0, days, substeps):
    """I(t) at the end of each day, with `substeps` RK4 steps per day."""
    curve = np.empty(days)
    dt = 1.0 / substeps
    s = 1.0 - i0
    i = i0
    for day in range(days):
        for _ in range(substeps):
            s, i = rk4_step(beta, gamma, s, i, dt)
        curve[day] = i
    return curve


@fwdad.forward_grad(wrt=("beta", "gamma"))
def sir_loss(beta, gamma, observed, i0, substeps):
    """Mean squared error between log I(t) of the model and of the observations."""
    days = observed.shape[0]
    curve = infected_curve(beta, gamma, i0, days, substeps)
    total = 0.0
    for day in range(days):
        residual = math.log(curve[day]) - math.log(observed[day])
        total += residual * residual
    return total / days


# ---- data ---------------------------------------------------------------------------------------
def make_observations(days, substeps, seed=0):
    """Noisy daily observations of I(t) from the true parameters (fixed seed)."""
    rng = np.random.default_rng(seed)
    clean = infected_curve(*TRUE_PARAMS, I0, days, substeps)
    return clean * np.exp(NOISE * rng.standard_normal(days))


# ---- the baseline: central finite differences from Python ---------------------------------------
def central_difference_grad(loss, params, args):
    """(loss, gradient by central differences): 2n + 1 evaluations, step ~ eps**(1/3) * |p|."""
    grad = []
    for j, p in enumerate(params):
        h = 6e-6 * max(abs(p), 1e-3)
        plus = list(params)
        minus = list(params)
        plus[j] = p + h
        minus[j] = p - h
        grad.append((loss(*plus, *args) - loss(*minus, *args)) / (2.0 * h))
    return loss(*params, *args), tuple(grad)


def adam_python(value_and_grad, params, args, lr, steps, decay, betas=(0.9, 0.999), eps=1e-8):
    """Adam from Python with the same update (and learning-rate decay) as fwdad.fgd."""
    params = np.array(params, dtype=np.float64)
    m = np.zeros_like(params)
    s = np.zeros_like(params)
    losses = np.empty(steps)
    times = np.empty(steps)
    start = time.perf_counter()
    for t in range(steps):
        value, grad = value_and_grad(tuple(params), args)
        g = np.array(grad)
        losses[t] = value
        rate = lr * math.exp(-decay * t)
        m = betas[0] * m + (1.0 - betas[0]) * g
        s = betas[1] * s + (1.0 - betas[1]) * g * g
        params -= rate * (m / (1.0 - betas[0] ** (t + 1))) / (np.sqrt(s / (1.0 - betas[1] ** (t + 1))) + eps)
        times[t] = time.perf_counter() - start
    return tuple(float(p) for p in params), losses, times


# ---- the comparison (shared with oscillator_calibration.py) -------------------------------------
def best_time(fn, repeats):
    """Best-of wall-clock seconds of fn() (after one warm-up call)."""
    fn()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def compare_gradients(loss, params, args, repeats):
    """fwdad's exact gradient vs central differences, values and time per gradient."""
    exact = np.array(loss.value_and_grad(*params, *args)[1][:len(params)])
    fd = np.array(central_difference_grad(loss, params, args)[1])
    plain = loss.py_func                                    # the uncompiled Python function
    return {
        "gradient_fwdad": exact, "gradient_fd": fd,
        "gradient_rel_error": float(np.linalg.norm(exact - fd) / np.linalg.norm(exact)),
        "time_primal": best_time(lambda: loss(*params, *args), repeats),
        "time_fwdad_value_and_grad": best_time(lambda: loss.value_and_grad(*params, *args), repeats),
        "time_fd_compiled": best_time(lambda: central_difference_grad(loss, params, args), repeats),
        "time_fd_python": best_time(lambda: central_difference_grad(plain, params, args), 2),
    }


def fit_three_ways(loss, initial, truth, args, lr, steps, decay, seed):
    """Adam with exact forward-mode gradients, forward gradients (both fwdad.fgd) and finite differences."""
    runs = {}
    for gradient in ("exact", "forward"):
        result = fwdad.fgd(loss, initial, lr=lr, steps=steps, decay=decay, seed=seed,
                           optimizer="adam", gradient=gradient, args=args, progress=False)
        runs[gradient] = (tuple(result.params), result.losses, result.times)
    fd = lambda p, a: central_difference_grad(loss, p, a)
    runs["finite differences"] = adam_python(fd, initial, args, lr, steps, decay)
    target = TARGET * runs["exact"][1][-1]
    return {name: summarize(*run, truth, target) for name, run in runs.items()}


def summarize(params, losses, times, truth, target):
    """Final parameters and loss, their errors, time, and the steps taken to reach `target`."""
    reached = np.flatnonzero(losses <= target)
    step = int(reached[0]) + 1 if reached.size else None
    return {"params": params, "loss": float(losses[-1]), "initial_loss": float(losses[0]),
            "seconds": float(times[-1]),
            "steps": len(losses), "steps_per_second": len(losses) / times[-1],
            "rel_error": tuple(abs(p - q) / abs(q) for p, q in zip(params, truth)),
            "steps_to_target": step, "seconds_to_target": float(times[step - 1]) if step else None}


def calibrate(loss, initial, truth, args, lr, steps, decay, seed=0, repeats=100):
    """The whole comparison for one model: gradients at `initial`, then the three fits."""
    start = time.perf_counter()
    loss.value_and_grad(*initial, *args)                    # compile before timing anything
    results = {"compile_seconds": time.perf_counter() - start, "true_params": tuple(truth),
               "initial_guess": tuple(initial)}
    results.update(compare_gradients(loss, initial, args, repeats))
    results["fits"] = fit_three_ways(loss, initial, truth, args, lr, steps, decay, seed)
    return results


def print_report(title, names, r, lr, steps, decay):
    """The gradient comparison and the fit table."""
    print(f"{title}\ntrue {fmt(r['true_params'], names)}, start {fmt(r['initial_guess'], names)}")
    print(f"\nGradient at the start (first call compiles: {r['compile_seconds']:.2f} s)")
    print(f"  fwdad value_and_grad   {vector(r['gradient_fwdad'])}  {r['time_fwdad_value_and_grad'] * 1e6:8.1f} us")
    print(f"  central differences    {vector(r['gradient_fd'])}  {r['time_fd_compiled'] * 1e6:8.1f} us")
    print(f"  relative difference {r['gradient_rel_error']:.1e}; primal {r['time_primal'] * 1e6:.1f} us; "
          f"central differences of the plain-Python primal {r['time_fd_python'] * 1e3:.2f} ms")
    print(f"\nAdam, lr {lr}, decay {decay}, {steps} steps (target: loss within {TARGET - 1:.0e} of the exact fit's)")
    columns = "".join(f"{n:>9}" for n in names) + "".join(f"{'err ' + n:>11}" for n in names)
    print(f"  {'gradient':<19}{columns} {'loss':>9} {'seconds':>8} {'us/step':>8} {'to target':>9} {'seconds':>8}")
    for name, fit in r["fits"].items():
        step = fit["steps_to_target"]
        reached = f"{step:>9d} {fit['seconds_to_target']:8.4f}" if step else f"{'never':>9} {'':>8}"
        values = "".join(f"{p:9.4f}" for p in fit["params"]) + "".join(f"{e:11.2%}" for e in fit["rel_error"])
        print(f"  {name:<19}{values} {fit['loss']:9.6f} {fit['seconds']:8.3f} "
              f"{1e6 / fit['steps_per_second']:8.1f} {reached}")


def fmt(values, names):
    return "(" + ", ".join(f"{n}={v:g}" for n, v in zip(names, values)) + ")"


def vector(values):
    return "[" + ", ".join(f"{v:+.8e}" for v in values) + "]"


SETTINGS = {
    "full": dict(days=120, substeps=10, lr=0.02, steps=1000, decay=2e-3),
    "quick": dict(days=60, substeps=4, lr=0.02, steps=300, decay=5e-3),
}


def main(quick=False, seed=0):
    """Run the comparison and return its numbers (see SETTINGS for what quick changes)."""
    cfg = SETTINGS["quick" if quick else "full"]
    observed = make_observations(cfg["days"], cfg["substeps"], seed)
    args = (observed, I0, cfg["substeps"])
    results = calibrate(sir_loss, INITIAL_GUESS, TRUE_PARAMS, args, cfg["lr"], cfg["steps"], cfg["decay"],
                        seed, repeats=20 if quick else 200)
    results["settings"] = cfg
    title = f"SIR calibration: {cfg['days']} days x {cfg['substeps']} RK4 steps per day"
    print_report(title, ("beta", "gamma"), results, cfg["lr"], cfg["steps"], cfg["decay"])
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings (seconds)")
    main(quick=parser.parse_args().quick)
