"""fwdad.fgd: forward gradient descent (Baydin et al. 2022, Algorithm 1) as one compiled loop.

The entry point: fgd checks its options once (fwdad.train.options.FGDOptions) and hands the
run to the function's target (fwdad/targets/: the compiled CPU loop of fwdad/train/loop.py, or
the GPU loop of fwdad/train/cuda.py), or with comm= to the MPI layer (fwdad/distributed.py).
The names users catch and read (FGDResult, FGDStopped, ...) are importable from here.
"""
from .api import as_forward
from .distributed import distributed_fgd
from .errors import FwdadError, OptionError

GRADIENT_ESTIMATES = ("forward", "activity")      # the estimators that combine= applies to
from .train.chunks import CallbackError, FGDInterrupted, FGDResult, FGDStopped, NonFiniteLossError
from .train.local import fgd_in_process
from .train.options import OPTIMIZERS, FGDOptions, refuse_unbounded_directions

__all__ = ["fgd", "FGDOptions", "FGDResult", "FGDStopped", "NonFiniteLossError", "CallbackError",
           "FGDInterrupted", "OPTIMIZERS", "refuse_unbounded_directions"]


def fgd(fn, params, *, lr, steps, seed=0, optimizer="sgd", momentum=0.9, decay=0.0, directions=1,
        clip=None, data=None, batch_size=None, shuffle=True, every=None, callback=None,
        gradient="forward", args=(), distribution="normal", betas=(0.9, 0.999), eps=1e-8,
        progress=None, trajectory=False, on_nonfinite="raise", comm=None, mode="directions", combine="mean",
        **distributed):
    """Minimize fn(*params, *args, *batch) by forward gradient descent in one compiled loop.

    gradient: "forward" (the paper's estimator: weight perturbation), "activity" (activity
    perturbation: fn returns per-example losses and computes its layers with fwdad.dense /
    dense_relu; docs/forward-learning.md), "exact" (gradient descent with the exact
    gradient by vector forward mode) or a compiled function returning (value, gradients)
    for the same arguments (e.g. a hand-written backpropagation).
    combine: how the `directions` of gradient="forward" or "activity" are combined: "mean", or
    "orthogonal" (the projection of the gradient onto their span, Flügel et al. 2024; CPU only).
    decay: the learning rate at step t is lr * exp(-decay * t).
    clip: rescale the gradient to this global 2-norm when it is larger.
    trajectory: also return the parameters after every step (result.trajectory, flattened).
    on_nonfinite: "raise" (default) stops at a NaN or infinite loss with NonFiniteLossError,
    "warn" warns once and goes on, "continue" says nothing.
    comm: an mpi4py communicator to spread directions (mode="directions") or data (mode="data")
    over ranks; further keywords (check_every, timeout, ...) go to fwdad.distributed.
    Time spent in callbacks and the progress bar is excluded from result.times and .seconds.
    A run stopped early (Ctrl-C: FGDInterrupted; a raising callback: CallbackError; a non-finite
    loss: NonFiniteLossError) raises an error whose `.result` holds the steps done.
    """
    if distributed and comm is None:
        raise TypeError(f"fgd() got unexpected keyword arguments {sorted(distributed)}")
    given = dict(lr=lr, steps=steps, seed=seed, optimizer=optimizer, momentum=momentum, decay=decay,
                 directions=directions, clip=clip, batch_size=batch_size, shuffle=shuffle, every=every,
                 distribution=distribution, betas=betas, eps=eps, progress=progress,
                 trajectory=trajectory, on_nonfinite=on_nonfinite, combine=combine)
    if gradient == "activity" and distribution != "normal" or combine != "mean" and gradient not in GRADIENT_ESTIMATES:
        raise OptionError("fgd: combine= applies to gradient='forward' and 'activity', and 'activity' draws "
                          f"normal noise (got gradient={gradient!r}, combine={combine!r}, distribution="
                          f"{distribution!r}).\nWhat to do: pass combine= only with a forward-gradient "
                          "estimator, and distribution='normal' with gradient='activity'.")
    if comm is not None:
        if gradient != "forward" or trajectory or combine != "mean":
            raise FwdadError("fgd with comm= runs forward gradients only, averaged, without trajectory.\n"
                             "What to do: leave gradient, combine and trajectory at their defaults.")
        given.pop("trajectory")
        given.pop("combine")
        return distributed_fgd(fn, params, comm=comm, mode=mode, data=data, callback=callback,
                               args=args, **given, **distributed)
    return fgd_in_process(as_forward, fn, params, data=data, gradient=gradient, args=args,
                          callback=callback, **given)
