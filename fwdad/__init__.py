"""fwdad: forward-mode derivatives of numeric Python, compiled with Numba.

    @fwdad.forward_grad
    def f(x, w, n): ...

    value, tangent = f.jvp((x, w, n), (dx, dw, None))
"""
from .version import __version__
from .errors import (FwdadError, UnsupportedSyntaxError, DifferentiationError,
                     TangentMismatchError, CompilationError, NoSourceError, OptionError,
                     ExecutionError, SourceChangedError, WrappedFunctionError, FwdadWarning,
                     CacheWarning, SparsityError, SparsityWarning)
from .api import ForwardFunction, forward_grad, jvp, defjvp
from .layers import stop_gradient, dense, dense_relu

__all__ = ["__version__", "forward_grad", "ForwardFunction", "jvp", "defjvp", "FwdadError",
           "UnsupportedSyntaxError", "DifferentiationError", "TangentMismatchError",
           "CompilationError", "NoSourceError", "OptionError", "ExecutionError",
           "SourceChangedError", "WrappedFunctionError", "FwdadWarning", "CacheWarning",
           "SparsityError", "SparsityWarning", "sparse", "stop_gradient", "dense", "dense_relu"]
from .optim import fgd, FGDResult, FGDStopped, NonFiniteLossError, CallbackError, FGDInterrupted
from . import random
from . import sparse
__all__ += ["fgd", "FGDResult", "FGDStopped", "NonFiniteLossError", "CallbackError",
            "FGDInterrupted", "random"]
