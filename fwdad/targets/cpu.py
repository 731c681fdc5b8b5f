"""target="cpu": Numba CPU code; the drivers loop over directions and instances in one thread."""
import numba
import numpy as np

from ..arguments import per_argument, placing
from ..codegen import NUMBA_OPTIONS, compile_source
from ..drivers import batch
from ..drivers.gradients import (direction_passes, directions_fit, forward_gradient_driver,
                                 forward_gradient_sequential, forward_gradient_vector)
from ..execution import raise_reported
from ..random import DISTRIBUTIONS, NORMAL_TABLE
from ..train.loop import fgd_local


class CpuTarget:
    """Compiled CPU code, one thread."""
    name = "cpu"
    parallel = False
    runs_over_mpi = True

    def tangent_function(self, spec):
        return spec.jvp

    def forward_gradient_generator(self, scalar, vector, directions):
        """(driver source generator, the specialization it runs): one vector-mode pass carrying
        the K directions when the function has a vector form, else one direction at a time."""
        if directions > 1 and vector.vectorizable:
            return forward_gradient_vector, vector
        return forward_gradient_sequential, scalar

    def loop_calls_driver(self, directions):
        return directions > 1

    def forward_gradient(self, forward, args, active, directions, distribution):
        """(the specialization it runs, gradient(args, seed) -> (f(*args), one forward gradient
        per argument, None for the inactive ones)) for arguments of these types: the driver is
        chosen and compiled once; the directions run in passes of bounded memory."""
        vector = forward.specialization(args, active, "vector")
        scalar = forward.specialization(args, active)
        driver, spec = forward_gradient_driver(self, scalar, vector, directions)
        options = (directions, DISTRIBUTIONS[distribution], NORMAL_TABLE)
        arrays = [i for i in active if isinstance(args[i], np.ndarray)]
        scalars, place = len(active) - len(arrays), placing(active, args)
        warm = [False]                   # the first call compiles (forward.run); then a direct call

        def gradient(args, seed):
            # `seed` is a Python int (checked): below 2 ** 63 it goes as it is (int64; the driver's
            # stream_key takes np.uint64(seed), the same bits), as np.uint64 costs 0.15 us a call
            seed = seed if seed < 2 ** 63 else np.uint64(seed)
            total = scalars
            for i in arrays:
                total += args[i].size
            if directions_fit(directions, total):    # one pass: the driver's results, in the arguments' dtypes
                if not warm[0]:
                    value, grads = forward.run(spec, driver, args + (seed, 0) + options)
                    warm[0] = True
                    return value, place(grads)
                try:
                    value, grads = driver(*args, seed, 0, *options)
                except Exception as error:
                    raise_reported(error, spec, forward.py_func)
                return value, place(grads)
            passes = direction_passes(directions, total)
            value, sums = None, None
            for first, count in passes:
                value, grads = forward.run(spec, driver, args + (seed, first, count) + options[1:])
                weighted = [np.asarray(g, np.float64) * (count / directions) for g in grads]
                sums = weighted if sums is None else [s + w for s, w in zip(sums, weighted)]
            return value, per_argument(sums, active, args)
        return spec, gradient

    def batch_loop(self):
        return ["for i in range(v0.shape[0]):"]

    def compile_batch(self, text, spec):
        namespace = {"prange": numba.prange, "np": np, "jvp": self.tangent_function(spec)}
        return compile_source(text, "batch", namespace,
                                    numba.njit(parallel=self.parallel, **NUMBA_OPTIONS))

    def batch_jvp(self, forward, spec, axes, active, primals, tangents, n):
        """Values and tangents of n instances, one per step of a compiled loop."""
        kernel, dtypes = batch.batch_kernel(self, spec, axes, active)
        values = [np.empty(n, d) for d in dtypes]
        derivs = [np.zeros(n, d if d.kind == "f" else np.float64) for d in dtypes]
        forward.run(spec, kernel, primals + tuple(tangents[j] for j in active) + tuple(values + derivs))
        return batch.package(spec, values, derivs)

    def fgd(self, forward, params, options, data, gradient, args, callback):
        return fgd_local(forward, params, options, data, gradient, args, callback)
