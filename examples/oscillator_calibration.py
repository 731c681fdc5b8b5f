"""Calibrate a damped driven oscillator's (zeta, omega, A) to a noisy trajectory, three ways.

    x'' + 2 zeta omega x' + omega^2 x = A cos(Omega t),   x(0) = 1, x'(0) = 0

is integrated with RK4 in a plain Python loop; we observe x(t) with Gaussian noise and fit
the damping ratio zeta, natural frequency omega and forcing amplitude A (the drive frequency
Omega is known) by Adam with exact forward-mode gradients, forward gradients and central
finite differences. The comparison machinery (finite differences, Adam from Python, the
table) is shared with sir_calibration.py.

    python examples/oscillator_calibration.py [--quick]
"""
import argparse
import math
import os
import sys

import numpy as np

import fwdad

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sir_calibration import calibrate, print_report  # noqa: E402

TRUE_PARAMS = (0.15, 2.0, 1.0)      # zeta, omega (rad/s), A
INITIAL_GUESS = (0.3, 1.8, 0.6)     # a start inside the basin of the true frequency
DRIVE = 1.3                         # Omega (rad/s), known
NOISE = 0.05                        # standard deviation of the observation noise


# ---- the model: plain Python that fwdad differentiates ------------------------------------------
def acceleration(zeta, omega, amplitude, x, v, t):
    """x'' from the equation of motion."""
    return amplitude * math.cos(DRIVE * t) - 2.0 * zeta * omega * v - omega * omega * x


def rk4_step(zeta, omega, amplitude, x, v, t, dt):
    """One classical Runge-Kutta step for the state (x, v = x')."""
    a1 = acceleration(zeta, omega, amplitude, x, v, t)
    x2 = x + 0.5 * dt * v
    v2 = v + 0.5 * dt * a1
    a2 = acceleration(zeta, omega, amplitude, x2, v2, t + 0.5 * dt)
    x3 = x + 0.5 * dt * v2
    v3 = v + 0.5 * dt * a2
    a3 = acceleration(zeta, omega, amplitude, x3, v3, t + 0.5 * dt)
    x4 = x + dt * v3
    v4 = v + dt * a3
    a4 = acceleration(zeta, omega, amplitude, x4, v4, t + dt)
    x_next = x + dt / 6.0 * (v + 2.0 * v2 + 2.0 * v3 + v4)
    v_next = v + dt / 6.0 * (a1 + 2.0 * a2 + 2.0 * a3 + a4)
    return x_next, v_next


def trajectory(zeta, omega, amplitude, n_obs, substeps, dt):
    """x at n_obs observation times, `substeps` RK4 steps of size dt apart."""
    xs = np.empty(n_obs)
    x = 1.0
    v = 0.0
    t = 0.0
    for k in range(n_obs):
        for _ in range(substeps):
            x, v = rk4_step(zeta, omega, amplitude, x, v, t, dt)
            t += dt
        xs[k] = x
    return xs


@fwdad.forward_grad(wrt=("zeta", "omega", "amplitude"))
def oscillator_loss(zeta, omega, amplitude, observed, substeps, dt):
    """Mean squared error between the simulated and observed positions."""
    n_obs = observed.shape[0]
    xs = trajectory(zeta, omega, amplitude, n_obs, substeps, dt)
    total = 0.0
    for k in range(n_obs):
        residual = xs[k] - observed[k]
        total += residual * residual
    return total / n_obs


def make_observations(n_obs, substeps, dt, seed=0):
    """Noisy positions from the true parameters (fixed seed)."""
    rng = np.random.default_rng(seed)
    return trajectory(*TRUE_PARAMS, n_obs, substeps, dt) + NOISE * rng.standard_normal(n_obs)


SETTINGS = {       # observations every substeps * dt = 0.1 s
    "full": dict(n_obs=300, substeps=10, dt=0.01, lr=0.01, steps=2000, decay=2e-3),
    "quick": dict(n_obs=150, substeps=4, dt=0.025, lr=0.01, steps=1500, decay=2e-3),
}


def main(quick=False, seed=0):
    """Run the comparison and return its numbers (see SETTINGS for what quick changes)."""
    cfg = SETTINGS["quick" if quick else "full"]
    observed = make_observations(cfg["n_obs"], cfg["substeps"], cfg["dt"], seed)
    args = (observed, cfg["substeps"], cfg["dt"])
    results = calibrate(oscillator_loss, INITIAL_GUESS, TRUE_PARAMS, args, cfg["lr"], cfg["steps"],
                        cfg["decay"], seed, repeats=20 if quick else 200)
    results["settings"] = cfg
    span = cfg["n_obs"] * cfg["substeps"] * cfg["dt"]
    title = (f"Damped driven oscillator: {cfg['n_obs']} observations over {span:g} s, "
             f"{cfg['n_obs'] * cfg['substeps']} RK4 steps of {cfg['dt']} s")
    print_report(title, ("zeta", "omega", "A"), results, cfg["lr"], cfg["steps"], cfg["decay"])
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings (seconds)")
    main(quick=parser.parse_args().quick)
