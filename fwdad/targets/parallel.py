"""target="parallel": Numba CPU code with parallel=True; directions and instances spread over cores."""
from ..drivers.gradients import forward_gradient_parallel
from .cpu import CpuTarget


class ParallelTarget(CpuTarget):
    """Compiled CPU code on every core (prange)."""
    name = "parallel"
    parallel = True
    runs_over_mpi = False            # fgd(comm=) runs one CPU loop per rank (see distributed.py)

    def forward_gradient_generator(self, scalar, vector, directions):
        """Directions spread over threads, each component regenerated from the seed."""
        return forward_gradient_parallel, scalar

    def loop_calls_driver(self, directions):
        return True

    def batch_loop(self):
        return ["for i in prange(v0.shape[0]):"]
