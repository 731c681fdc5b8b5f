"""target="cuda": numba-cuda device functions; one GPU thread per direction or instance.

Device code cannot allocate arrays (fwdad.device refuses it at the user's line); fgd keeps
parameters, data and optimizer state on the device (fwdad.train.cuda).
"""
import numpy as np
from numba.core.errors import NumbaError

from ..arguments import per_argument
from ..drivers import batch
from ..compiler import numba_error
from ..device import compile_kernel, cuda, device_table, is_device_array
from ..drivers.gradients import direction_passes, scalar_output_required, writes_arguments
from ..drivers.kernels import ForwardGradientKernels
from ..random import DISTRIBUTIONS
from ..train.cuda import fgd_cuda

THREADS_PER_BLOCK = 128


class CudaTarget:
    """numba-cuda kernels around the tangent code compiled as device functions."""
    name = "cuda"
    parallel = False                 # its CPU drivers (value_and_grad, jacobian) run in one thread
    runs_over_mpi = False            # fgd(comm=) runs the CPU loop on every rank (distributed.py)

    def tangent_function(self, spec):
        return spec.device_jvp

    def loop_calls_driver(self, directions):
        return False

    def forward_gradient(self, forward, args, active, directions, distribution):
        """(the specialization it runs, gradient(args, seed)): K threads draw a direction each and
        run the JVP; a second kernel reduces on the device."""
        spec = forward.specialization(args, active)
        scalar_output_required(spec, "forward_gradient")
        kernels = spec.driver(("cuda forward_gradient",), lambda: ForwardGradientKernels(spec, len(args)))
        code = DISTRIBUTIONS[distribution]

        def gradient(args, seed):
            numba_cuda, table = cuda(), device_table()
            device_args = [numba_cuda.to_device(a) if isinstance(a, np.ndarray) else a for a in args]
            sums = None
            for first, count in direction_passes(directions, sum(np.size(args[i]) for i in active)):
                values, ts = kernels.jvps(device_args, args, seed, first, count, code, table)
                flats = [f.copy_to_host() * (count / directions)
                         for f in kernels.gradient(ts, args, seed, first, count, code, table)]
                sums = flats if sums is None else [s + f for s, f in zip(sums, flats)]
            grads = [f.reshape(np.shape(args[a.position])) if not a.scalar else f[0]
                     for f, a in zip(sums, kernels.items)]
            return float(values.copy_to_host()[0]), per_argument(grads, active, args)
        return spec, gradient

    def batch_loop(self):
        return ["i = cuda.grid(1)", "if i < v0.shape[0]:"]

    def compile_batch(self, text, spec):
        return compile_kernel(text, "batch", {"np": np, "cuda": cuda(), "jvp": self.tangent_function(spec)})

    def batch_jvp(self, forward, spec, axes, active, primals, tangents, n):
        """Values and tangents of n instances, one GPU thread each; host arrays the function
        writes into are copied back."""
        kernel, dtypes = batch.batch_kernel(self, spec, axes, active)
        numba_cuda = cuda()
        on_device = any(is_device_array(p) for p in primals)
        to_device = lambda a: (a if is_device_array(a) or not isinstance(a, np.ndarray)   # noqa: E731
                               else numba_cuda.to_device(a))
        args = [to_device(p) for p in primals] + [to_device(tangents[j]) for j in active]
        values = [numba_cuda.device_array(n, d) for d in dtypes]
        derivs = [numba_cuda.device_array(n, d if d.kind == "f" else np.float64) for d in dtypes]
        blocks = (n + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
        try:
            kernel[blocks, THREADS_PER_BLOCK](*args, *values, *derivs)
        except NumbaError as error:
            raise numba_error(error, spec.modules(device=True), f"numba-cuda cannot compile the tangent "
                              f"code of {forward.__name__} for the CUDA target") from None
        if not on_device:                     # the function wrote into host arrays: copy them back
            for j in writes_arguments(spec):
                args[j].copy_to_host(primals[j])
                if j in active:
                    args[len(primals) + active.index(j)].copy_to_host(tangents[j])
            values = [v.copy_to_host() for v in values]
            derivs = [d.copy_to_host() for d in derivs]
        return batch.package(spec, values, derivs)

    def fgd(self, forward, params, options, data, gradient, args, callback):
        return fgd_cuda(forward, params, options, data=data, gradient=gradient, args=args, callback=callback)
