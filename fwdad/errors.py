"""fwdad's exceptions: every message names the user's file and line and says what to do."""
import linecache
import os
import sys

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


class FwdadError(Exception):
    """Base class of every error fwdad raises on purpose."""


class UnsupportedSyntaxError(FwdadError):
    """The function uses a Python construct fwdad cannot differentiate."""


class DifferentiationError(FwdadError):
    """An active value reaches an operation with no derivative rule."""


class TangentMismatchError(FwdadError, ValueError):
    """The tangents passed to a JVP do not match the primals."""


class CompilationError(FwdadError):
    """Numba could not compile the function or its generated tangent code."""


class NoSourceError(FwdadError):
    """The function has no Python source fwdad can read."""


class OptionError(FwdadError, ValueError, TypeError):
    """An option of an fwdad entry point has a value it cannot take; the message names it."""


class ExecutionError(FwdadError):
    """Compiled tangent or driver code raised at run time (e.g. LinAlgError on a NaN tangent);
    the message names the user's function, file and line, `__cause__` is the original error."""


class SourceChangedError(NoSourceError):
    """The function's source file no longer holds the code Python runs (edited after import)."""


class WrappedFunctionError(UnsupportedSyntaxError):
    """The function is wrapped by a decorator (functools.wraps) whose code fwdad would drop."""


class FwdadWarning(UserWarning):
    """Base class of fwdad's warnings."""


class CacheWarning(FwdadWarning):
    """fwdad runs without its on-disk cache (the directory is unsafe or not writable)."""


class SparsityError(DifferentiationError):
    """fwdad cannot guarantee a sparsity pattern that misses no nonzero (fwdad.sparse)."""


class SparsityWarning(FwdadWarning):
    """A detected sparsity pattern holds at the given point only (an active loop trip count)."""


def where(filename, lineno):
    """`file:line` plus the source line, for the head of an error message."""
    text = linecache.getline(filename, lineno).strip() if lineno else ""
    head = f"{filename}:{lineno}" if lineno else filename
    return f"{head}\n    {text}" if text else head


def located(cls, filename, lineno, what, hint=""):
    """An error of class `cls` whose message starts at the user's file and line."""
    message = f"{where(filename, lineno)}\n{what}"
    if hint:
        message += f"\nWhat to do: {hint}"
    return cls(message)


def user_stacklevel():
    """The warnings.warn stacklevel that attributes a warning to the user's line: the caller of
    this helper is level 1, and every frame in fwdad, in Numba (which may call back into fwdad
    while compiling) or in fwdad's generated code is skipped."""
    import numba
    numba_dir = os.path.dirname(os.path.abspath(numba.__file__)) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None:
        filename = frame.f_code.co_filename
        if not (filename.startswith((_PACKAGE, numba_dir)) or filename.startswith("<fwdad")):
            return level
        frame, level = frame.f_back, level + 1
    return 1
