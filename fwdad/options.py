"""Validation of every option of fwdad's entry points, in one place.

Each entry point (jvp, forward_gradient, value_and_grad, jacobian, batch_jvp, fgd and its CUDA
and MPI paths) checks its options with these functions before doing any work, so that a bad
value is refused with an error naming the option instead of being truncated (`directions=2.7`),
running to NaN (`lr=inf`) or failing deep inside (`seed=-1`). Integers are Python or NumPy
integers, never bools; reals are finite unless said otherwise.
"""
import math

import numpy as np

from .errors import OptionError

SEED_LIMIT = 2 ** 64          # seeds are 64-bit counters of fwdad.random
INT64_MAX = 2 ** 63 - 1       # integer options reach compiled code as int64


def refuse(who, name, value, wanted, hint):
    """Raise the OptionError every check raises: who, the option, its value, what it must be."""
    raise OptionError(f"{who}: {name} must be {wanted}, got {shown(value)}.\nWhat to do: {hint}")


def shown(value):
    """A one-line description of a refused value (arrays by shape and dtype)."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    text = " ".join(repr(value).split())
    return f"{text[:57] + '...' if len(text) > 60 else text} ({type(value).__name__})"


def is_integer(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def integer(who, name, value, minimum=None, maximum=INT64_MAX):
    """`value` as an int, refused unless it is an integer in [minimum, maximum]."""
    wanted = "an integer" + bounds_text(minimum, maximum)
    if not is_integer(value):
        refuse(who, name, value, wanted, f"pass a whole number (e.g. {name}={minimum or 1}), not a "
               "float, bool or string.")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        refuse(who, name, value, wanted, f"pass {name} within those bounds.")
    return value


def optional_integer(who, name, value, minimum=None, maximum=INT64_MAX):
    return None if value is None else integer(who, name, value, minimum, maximum)


def real(who, name, value, minimum=None, maximum=None, positive=False, below=None):
    """`value` as a finite float, refused unless it is a real number within the bounds.

    minimum/maximum are inclusive; positive=True means > 0; below is an exclusive upper bound."""
    wanted = "a finite number" + (" > 0" if positive else "") + bounds_text(minimum, maximum)
    wanted += f" below {below}" if below is not None else ""
    if not is_real(value):
        refuse(who, name, value, wanted, f"pass a number (e.g. {name}=0.1).")
    number = float(value)
    if (not math.isfinite(number) or (positive and not number > 0)
            or (minimum is not None and number < minimum) or (maximum is not None and number > maximum)
            or (below is not None and not number < below)):
        refuse(who, name, value, wanted, f"pass {name} within those bounds.")
    return number


def optional_real(who, name, value, **bounds):
    return None if value is None else real(who, name, value, **bounds)


def bounds_text(minimum, maximum):
    if minimum is not None and maximum is not None and maximum != INT64_MAX:
        return f" between {minimum} and {maximum}"
    if minimum is not None:
        return f" >= {minimum}"
    return f" <= {maximum}" if maximum not in (None, INT64_MAX) else ""


def seed(who, value):
    return integer(who, "seed", value, 0, SEED_LIMIT - 1)


def choice(who, name, value, choices):
    if not isinstance(value, str) or value not in choices:
        refuse(who, name, value, "one of " + ", ".join(repr(c) for c in choices),
               f"pass one of those as {name}.")
    return value


def flag(who, name, value):
    """A True/False option (NumPy bools accepted; 0, 1 and strings refused)."""
    if not isinstance(value, (bool, np.bool_)):
        refuse(who, name, value, "True or False", f"pass {name}=True or {name}=False.")
    return bool(value)


def optional_flag(who, name, value):
    return None if value is None else flag(who, name, value)


def sequence(who, name, value, what, hint):
    """A tuple or list option as a tuple (a bare array is refused: it would be split into rows)."""
    if not isinstance(value, (tuple, list)):
        refuse(who, name, value, f"a tuple of {what}", hint)
    return tuple(value)


def optional_callable(who, name, value):
    if value is not None and not callable(value):
        refuse(who, name, value, "a function or None", f"pass a function as {name}, or None.")
    return value


def positions(who, wrt, parameters, name="wrt"):
    """wrt as sorted, distinct parameter positions (names, positions and negative positions).

    Sorted because every driver returns gradients in parameter order: `wrt=(1, 0)` means the
    same as `wrt=(0, 1)`."""
    if wrt is None:
        return None
    items = (wrt,) if isinstance(wrt, (str, int, np.integer, np.bool_)) else wrt
    if not isinstance(items, (tuple, list)) or not items:
        refuse(who, name, wrt, "a parameter name or position, or a non-empty tuple of them",
               f"pass e.g. {name}=0 or {name}=({parameters[0]!r},)." if parameters else f"leave {name}=None.")
    found = []
    for item in items:
        position = position_of(who, item, parameters, name)
        if position in found:
            refuse(who, name, wrt, "a tuple of distinct parameters",
                   f"name {parameters[position]!r} once.")
        found.append(position)
    return tuple(sorted(found))


def position_of(who, item, parameters, name):
    """The position of one wrt entry: a parameter name, or an index (negative from the end)."""
    n = len(parameters)
    names = ", ".join(parameters)
    if isinstance(item, str):
        if item not in parameters:
            refuse(who, name, item, f"one of the parameter names ({names})", "check the spelling.")
        return parameters.index(item)
    if not is_integer(item):
        refuse(who, name, item, "parameter names or integer positions",
               "pass positions as ints (not bools or floats) or parameter names.")
    if not -n <= int(item) < n:
        refuse(who, name, item, f"a position between {-n} and {n - 1} ({names})",
               "count positions from 0 (or from -1 at the end).")
    return int(item) % n
