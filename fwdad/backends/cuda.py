"""The CUDA target: fwdad's generated code as numba-cuda device functions, and batched kernels.

Device code cannot allocate arrays; code that does gets a fwdad error at the user's line when
the kernel that calls it is compiled.
"""
import numpy as np

from ..errors import CompilationError


def cuda():
    """numba.cuda, or a clear error when the cuda extra is not installed."""
    try:
        from numba import cuda as numba_cuda
    except ImportError as error:                          # pragma: no cover - depends on extras
        raise CompilationError(
            f"the CUDA target needs numba-cuda ({error}).\nWhat to do: pip install 'fwdad[cuda]' "
            "(or set NUMBA_ENABLE_CUDASIM=1 to run kernels in the simulator).") from None
    return numba_cuda


def device_function(py_func, modules):
    """`py_func` compiled lazily as a CUDA device function."""
    function = cuda().jit(device=True)(py_func)
    function.fwdad_modules = modules
    return function


def is_device_array(value):
    return hasattr(value, "__cuda_array_interface__") and not isinstance(value, np.ndarray)


def host_like(value):
    """A host stand-in with the same Numba type as `value` (a device array's shape and dtype)."""
    if is_device_array(value):
        return np.empty(value.shape, value.dtype)
    return value
