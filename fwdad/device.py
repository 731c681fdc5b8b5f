"""numba-cuda as fwdad uses it: the module itself, device functions, device arrays, the
device's copy of the random generator. Loading numba.cuda is deferred to the first use, so
that fwdad imports without the cuda extra.

Device code cannot allocate arrays; code that does gets a fwdad error at the user's line when
the kernel that calls it is compiled.
"""
import ast
import types as pytypes

import numpy as np

from . import random as fwdrandom
from .codegen import compile_source
from .errors import CompilationError, located
from .transform import rules


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


def compile_kernel(text, name, namespace, device=False):
    """Kernel (or device function) `name` defined in `text`, with readable tracebacks."""
    return compile_source(text, name, namespace, cuda().jit(device=device))


def check_device_code(function, kinds, filename):
    """Reject array allocation in code meant for the GPU, at the user's line, before numba-cuda does.

    Device functions cannot allocate: array results must be written into arrays passed in.
    """
    for node in ast.walk(function):
        if not isinstance(node, ast.Assign):
            continue
        target, value = node.targets[0], node.value
        name = target.id if isinstance(target, ast.Name) else None
        kind = kinds.get(name[2:] if name and name.startswith("d_") else name)
        allocating_call = isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) \
            and rules.allocates(value.func.attr)
        array_result = kind is not None and kind.shape == "array" and not isinstance(value, (ast.Name, ast.Subscript))
        if allocating_call or array_result:
            raise located(CompilationError, filename, getattr(node, "lineno", 0),
                          "the CUDA target cannot allocate arrays inside device code (this line "
                          "creates a new array, or its tangent needs one).",
                          "pass preallocated arrays as arguments and write the results into them "
                          "with element assignments; give every array that the function writes a tangent")


def is_device_array(value):
    """A numba-cuda device array (or any __cuda_array_interface__ array, or the simulator's)."""
    if isinstance(value, (np.ndarray, int, float, np.generic)) or value is None:
        return False
    return hasattr(value, "__cuda_array_interface__") or type(value).__name__ == "FakeCUDAArray"


def host_like(value):
    """A host stand-in with the same Numba type as `value` (a device array's shape and dtype)."""
    if is_device_array(value):
        return np.empty(value.shape, value.dtype)
    return value


# ---- counter-based directions on the device --------------------------------------------------------
_RANDOM = {}


def device_random():
    """(stream_key, sample) as device functions: the same code and numbers as fwdad.random."""
    if not _RANDOM:
        scope = dict(vars(fwdrandom))
        for name in ("mix64", "stream_key", "sample"):
            py_func = getattr(fwdrandom, name).py_func
            scope[name] = cuda().jit(device=True)(pytypes.FunctionType(py_func.__code__, scope, name))
        _RANDOM.update(stream_key=scope["stream_key"], sample=scope["sample"])
    return _RANDOM["stream_key"], _RANDOM["sample"]


_TABLE = {}


def device_table():
    """The normal distribution's lookup table (fwdad.random.NORMAL_TABLE), copied to the device once."""
    if "table" not in _TABLE:
        _TABLE["table"] = cuda().to_device(fwdrandom.NORMAL_TABLE)
    return _TABLE["table"]
