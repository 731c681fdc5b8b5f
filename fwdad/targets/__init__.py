"""The targets a ForwardFunction runs on: one class per file, with the same small interface.

    name                 "cpu", "parallel", "cuda"
    parallel             whether its CPU drivers are compiled with Numba's parallel=True
    runs_over_mpi        whether fgd(comm=...) can run this target's code on every rank
    tangent_function     the compiled tangent function of a specialization, for this target
    forward_gradient     (spec, gradient(args, seed) -> (value, gradient per active argument)) for
                         K directions, prepared once per type signature (fwdad.prepared)
    batch_jvp            values and tangents of many instances, one per loop step / core / thread
    fgd                  the training loop (fwdad.train) for this target
    loop_calls_driver    whether fgd's CPU loop calls the forward_gradient driver for K directions

A new target is one new file and one line in TARGETS; nothing outside this package compares
target names.
"""
from ..errors import FwdadError
from .cpu import CpuTarget
from .cuda import CudaTarget
from .parallel import ParallelTarget

TARGETS = {target.name: target for target in (CpuTarget(), ParallelTarget(), CudaTarget())}


def target_named(name):
    """The target called `name`, or a clear error naming the choices."""
    try:
        return TARGETS[name]
    except (KeyError, TypeError):
        raise FwdadError(f"unknown target {name!r}; choose one of {', '.join(TARGETS)}") from None
