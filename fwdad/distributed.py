"""Forward gradient descent over MPI ranks (mpi4py), exchanging scalars instead of gradients.

A forward gradient is g = (1/K) sum_k t_k v_k with t_k = grad f . v_k, and every direction v_k is
a pure function of (seed, direction id) (fwdad.random). Ranks that share a seed therefore only
need each other's scalars t_k: every rank regenerates the K directions and applies the same
update, so the parameters stay bit-identical without ever sending a parameter-sized message
(the trick of Salimans et al. 2017's evolution strategies and of MeZO).

    mode="directions"  rank r evaluates directions k = r, r + size, ... of each step on the whole
                       minibatch; the ranks allgather (direction id, t_k) pairs. Same result as
                       fgd(directions=K) in one process.
    mode="data"        every rank evaluates all K directions on its shard of the minibatch (rows
                       r, r + size, ... of it); t_k and the loss are averaged over the ranks,
                       weighted by shard rows. Same result as one process on the whole minibatch
                       when fn returns a mean over rows.

Per step each rank makes two compiled calls (`evaluate`: batch + its JVPs, `update`: assemble the
scalars, regenerate the directions, optimizer) and one non-blocking allgather of 3 + 2m
float64 numbers (m directions per rank), polled against a deadline. See docs/distributed.md.
"""
import sys
import time

from . import options as check
from .api import as_forward
from .errors import FwdadError, OptionError
from .train.local import fgd_in_process
from .train.mpi import (DEFAULT_TIMEOUT, MODES, Channel, CollectiveTimeout, DistributedError, Trainer, assemble,
                        bytes_per_step, mismatches, parameter_hash)
from .train.options import FGDOptions, checked_inputs

__all__ = ["distributed_fgd", "DistributedError", "CollectiveTimeout", "bytes_per_step", "MODES",
           "resolve_comm", "Trainer", "assemble", "mismatches", "parameter_hash"]


def distributed_fgd(fn, params, *, comm=None, mode="directions", lr, steps, seed=0, optimizer="sgd",
                    momentum=0.9, decay=0.0, directions=1, clip=None, data=None, batch_size=None,
                    shuffle=True, every=None, callback=None, args=(), distribution="normal",
                    betas=(0.9, 0.999), eps=1e-8, progress=None, on_nonfinite="raise", check_every=100,
                    timeout=DEFAULT_TIMEOUT, abort_on_error=True, fallback=True):
    """fwdad.fgd spread over the ranks of `comm` (an mpi4py communicator, or "world").

    mode: "directions" (split the K directions of a step over the ranks) or "data" (split each
    minibatch's rows over the ranks; fn must return a mean over rows). Every rank must make the
    same call; the result's .params are bit-identical on every rank.
    check_every: compare a 64-bit hash of the parameters across ranks every this many steps
    (and always at the start and the end); None or 0: only at the start and the end.
    timeout: seconds any rank waits in one collective before raising CollectiveTimeout, which
    names the ranks that did not answer a liveness check.
    abort_on_error: install a sys.excepthook that prints an uncaught exception and calls
    comm.Abort(), so one failing rank ends the job instead of leaving the others waiting.
    Falls back to the local fgd when comm is None, has one rank, or is "world" without mpi4py
    (fallback=False runs the MPI code path even on one rank: for benchmarks and debugging).
    """
    if mode not in MODES:
        raise FwdadError(f"fgd: unknown mode {mode!r}; choose 'directions' or 'data'.")
    given = dict(lr=lr, steps=steps, seed=seed, optimizer=optimizer, momentum=momentum, decay=decay,
                 directions=directions, clip=clip, batch_size=batch_size, shuffle=shuffle, every=every,
                 distribution=distribution, betas=betas, eps=eps, progress=progress,
                 on_nonfinite=on_nonfinite)
    comm = resolve_comm(comm)
    if comm is None or (comm.Get_size() == 1 and fallback):
        return fgd_in_process(as_forward, fn, params, data=data, gradient="forward", args=args,
                              callback=callback, **given)
    o = FGDOptions.validated(**given)      # the errors every rank finds by itself, before any message
    args, data = checked_inputs("fgd", params, args, data, "forward", callback)
    forward = as_forward(fn)
    refuse_target_over_mpi(forward, comm.Get_size())
    check_every = check.optional_integer("fgd", "check_every", check_every, 0) or 0
    timeout = check.real("fgd", "timeout", timeout, positive=True)
    if check.flag("fgd", "abort_on_error", abort_on_error):
        install_abort_hook(comm)
    check.flag("fgd", "fallback", fallback)
    channel = Channel(comm, timeout)
    try:
        return Trainer(forward, params, channel, mode, o, data, args, check_every).train(callback)
    finally:
        channel.free()


def refuse_target_over_mpi(forward, ranks):
    """Refuse a function whose target the MPI loop cannot honour: every rank runs its JVPs in
    compiled CPU code, so a target="cuda" or "parallel" function would silently run on one CPU
    core instead (every rank raises the same error, before any message is sent)."""
    if forward.backend.runs_over_mpi:
        return
    raise OptionError(
        f"fgd: with comm= over {ranks} ranks, each rank runs the JVPs of {forward.__name__} in fwdad's "
        f"compiled CPU loop, which cannot run its target={forward.target!r} code.\nWhat to do: "
        f"decorate {forward.__name__} with target='cpu' (the default) for fgd(comm=...), or call fgd "
        f"without comm= to train on the {forward.target!r} target in one process.")


def resolve_comm(comm):
    """The communicator to use: None stays None; "world" is COMM_WORLD when mpi4py is installed."""
    if isinstance(comm, str):
        if comm != "world":
            raise FwdadError(f"fgd: comm must be an mpi4py communicator, None or 'world', got {comm!r}.")
        try:
            from mpi4py import MPI
        except ImportError:
            return None
        return MPI.COMM_WORLD
    if comm is not None and not hasattr(comm, "Iallgather"):
        raise FwdadError(f"fgd: comm must be an mpi4py communicator (e.g. MPI.COMM_WORLD), "
                         f"got {type(comm).__name__}.")
    return comm


def install_abort_hook(comm):
    """Make an uncaught exception on this rank print its traceback, then MPI_Abort the job."""
    if getattr(sys.excepthook, "fwdad_abort", False):
        return
    previous, rank, size = sys.excepthook, comm.Get_rank(), comm.Get_size()

    def abort_hook(kind, value, traceback):
        try:
            sys.stderr.write(f"[fwdad rank {rank} of {size}] uncaught {kind.__name__}: {value}; calling "
                             "MPI Abort so that the other ranks do not wait forever\n")
            sys.stderr.flush()                  # the line that names the error comes first
            previous(kind, value, traceback)
            sys.stdout.flush()
            sys.stderr.flush()
            time.sleep(0.5)                     # let mpiexec forward the output before the abort
        finally:
            comm.Abort(1)
    abort_hook.fwdad_abort = True
    sys.excepthook = abort_hook
