"""Scenarios for tests/training/test_distributed.py, run as `mpiexec -n 2 python fgd_ranks.py SCENARIO OUTDIR`.

The problems and settings live here (module level, no MPI at import) so that the test can
import this file and compute the single-process references with plain `fwdad.fgd`.
"""
import os
import sys
import time

import numpy as np

import fwdad
import fwdad.distributed as distributed
from fwdad.train import mpi as mpi_layer
from fwdad.optim import NonFiniteLossError


def quadratic(x, a):
    """A loop-heavy smooth loss of an array and a scalar parameter."""
    s = 0.0
    for i in range(x.size):
        s += (i + 1.0) * (x[i] - 1.5) ** 2 + a * a * x[i]
    return s + (a - 0.3) ** 2


def least_squares(w, b, X, Y):
    """Mean squared error over the rows: the full-batch value is the row-weighted mean of shards'."""
    r = X @ w + b - Y
    return np.sum(r * r) / len(Y)


def regression_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(192, 4))
    return X, X @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.25 + 0.1 * rng.normal(size=192)


X, Y = regression_data()
CASES = {   # name: (fn, initial params, settings shared by the 2-rank run and the reference)
    "directions_sgd": (quadratic, (np.zeros(6), 0.5),
                       dict(lr=0.01, steps=40, seed=3, directions=4)),
    "directions_sgd_one": (quadratic, (np.zeros(6), 0.5),   # sgd, K = 1: g = t v fused into the update
                           dict(lr=0.01, steps=40, seed=8, directions=1)),
    "directions_one": (quadratic, (np.zeros(6), 0.5),     # K = 1 < ranks: rank 1 evaluates nothing
                       dict(lr=0.002, steps=40, seed=6, directions=1, optimizer="momentum")),
    "directions_adam_clip": (quadratic, (np.zeros(6), 0.5),
                             dict(lr=0.01, steps=40, seed=5, directions=3, optimizer="adam", clip=5.0)),
    "directions_batches": (least_squares, (np.zeros(4), 0.0),
                           dict(lr=0.02, steps=60, seed=1, directions=3, optimizer="momentum",
                                momentum=0.5, data=(X, Y), batch_size=32)),
    "data_even": (least_squares, (np.zeros(4), 0.0),
                  dict(lr=0.02, steps=60, seed=2, directions=2, data=(X, Y), batch_size=32, mode="data")),
    "data_uneven": (least_squares, (np.zeros(4), 0.0),
                    dict(lr=0.02, steps=60, seed=4, directions=1, data=(X, Y), batch_size=31,
                         decay=0.01, mode="data")),
}


def reference(name):
    """The single-process fgd result for a case (mode only matters with several ranks)."""
    fn, params, settings = CASES[name]
    settings = {k: v for k, v in settings.items() if k != "mode"}
    return fwdad.fgd(fn, params, progress=False, **settings)


def at_step(rank, step, fault):
    """Make `rank` call fault(trainer) before its step `step` (replaces Trainer.step in this
    process only: the faults the tests inject into one rank of a run)."""
    original = distributed.Trainer.step

    def step_with_fault(trainer, t):
        if (trainer.rank, t) == (rank, step):
            fault(trainer)
        return original(trainer, t)
    distributed.Trainer.step = step_with_fault


def perturb(trainer):
    trainer.arrays[0].reshape(-1)[0] += trainer.arrays[0].dtype.type(1e-9)


def stall(seconds):
    return lambda trainer: time.sleep(seconds)


def fail(trainer):
    raise RuntimeError(f"test hook: rank {trainer.rank} fails at step 3")


def run_case(comm, name, **overrides):
    fn, params, settings = CASES[name]
    settings = dict(settings, **overrides)
    return distributed.distributed_fgd(fn, params, comm=comm, progress=False, check_every=10,
                                       **settings)


def report(comm, out, what, error):
    """Append `WHAT ErrorClass: message` to OUTDIR/rank<r>.txt (ranks' stdout lines interleave)."""
    text = str(error).replace("\n", " | ")
    with open(os.path.join(out, f"rank{comm.Get_rank()}.txt"), "a") as file:
        file.write(f"{what} {type(error).__name__}: {text}\n")


def equal(comm, out):
    for name in CASES:
        result = run_case(comm, name, every=10, callback=lambda step, params, losses: (step, len(losses)))
        w, b = result.params
        np.savez(os.path.join(out, f"{name}.rank{comm.Get_rank()}.npz"), w=w, b=np.float64(b),
                 losses=result.losses, sent=result.communication["bytes_sent_per_step"],
                 history=np.array(result.history))


def mismatch(comm, out):
    rank = comm.Get_rank()
    attempts = {
        "seed": dict(seed=4 if rank == 1 else 3),
        "version": dict(),
        "initial": dict(),
    }
    for what, overrides in attempts.items():
        if what == "version" and rank == 1:
            mpi_layer.__version__ = "0.0.0-other"           # what Trainer.header sends
        fn, params, _ = CASES["directions_sgd"]
        if what == "initial" and rank == 1:
            params = (np.full(6, 1e-3), 0.5)
        try:
            settings = dict(CASES["directions_sgd"][2], **overrides)
            distributed.distributed_fgd(fn, params, comm=comm, progress=False, **settings)
        except distributed.DistributedError as error:
            report(comm, out, what, error)
        mpi_layer.__version__ = fwdad.__version__
    mismatched_contents(comm, out)


def mismatched_contents(comm, out):
    """Directions mode with one value of data= (then of args=) different on rank 1."""
    fn, params, settings = CASES["directions_batches"]
    other = Y.copy()
    other[5] += 1.0 if comm.Get_rank() == 1 else 0.0
    constant = {k: v for k, v in settings.items() if k not in ("data", "batch_size")}
    for what, overrides in [("data", dict(settings, data=(X, other))), ("args", dict(constant, args=(X, other)))]:
        try:
            distributed.distributed_fgd(fn, params, comm=comm, progress=False, **overrides)
        except distributed.DistributedError as error:
            report(comm, out, what, error)


def checks(comm, out):
    """The start-up mismatch checks, then the parameter hash check (each rank catches them)."""
    mismatch(comm, out)
    try:                                            # diverges: every rank stops at the same step
        run_case(comm, "directions_sgd", lr=10.0)
    except NonFiniteLossError as error:
        report(comm, out, "nonfinite", error)
        with open(os.path.join(out, f"nonfinite.rank{comm.Get_rank()}.txt"), "w") as file:
            file.write(f"{error.step} {error.result.steps} {len(error.result.losses)}")
    for target in ("parallel", "cuda"):             # the MPI loop runs CPU code: refused on every rank
        try:
            distributed.distributed_fgd(fwdad.forward_grad(quadratic, target=target), (np.zeros(6), 0.5),
                                        comm=comm, progress=False, lr=0.01, steps=3)
        except fwdad.OptionError as error:
            report(comm, out, f"target_{target}", error)
    at_step(1, 7, perturb)                          # rank 1 nudges its parameters at step 7
    try:
        run_case(comm, "directions_sgd")
    except distributed.DistributedError as error:
        report(comm, out, "perturb", error)


def stalled(comm, out):
    at_step(1, 3, stall(60.0))                       # rank 1 stops answering at step 3
    run_case(comm, "directions_sgd", timeout=2.0)    # rank 0 raises; its excepthook aborts the job


def crash(comm, out):
    at_step(1, 3, fail)                              # an uncaught exception on rank 1
    run_case(comm, "directions_sgd")                 # (default timeout 120 s: only Abort ends it fast)


def main():
    from mpi4py import MPI
    scenario, out = sys.argv[1], sys.argv[2]
    {"equal": equal, "checks": checks, "stall": stalled, "crash": crash}[scenario](
        MPI.COMM_WORLD, out)
    print(f"RANK {MPI.COMM_WORLD.Get_rank()} DONE", flush=True)


if __name__ == "__main__":
    main()
