"""fwdad's exceptions: every message names the user's file and line and says what to do."""
import linecache


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
