"""The code fwdad differentiates is the code Python runs: the source is taken when the function
is decorated and checked against the code object (callees too); a decorator's wrapper is
refused, never silently dropped; Numba dispatchers and ForwardFunctions are looked through."""
import functools
import importlib.util
import os
import sys
import textwrap

import numba
import pytest

import fwdad
from fwdad.errors import SourceChangedError, WrappedFunctionError

MODULE = textwrap.dedent("""
    import fwdad


    def helper(x):
        return x * {k}


    @fwdad.forward_grad
    def decorated(x):
        return x * {k}


    @fwdad.forward_grad
    def calls_helper(x):
        return helper(x) + 1.0


    def plain(x):
        return x * x * {k}
""")


def load(tmp_path, name, k):
    path = tmp_path / f"{name}.py"
    path.write_text(MODULE.format(k=k))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module, path


def edit(path, text):
    """Rewrite a module's file after import (a later modification time, so linecache sees it)."""
    status = os.stat(path)
    path.write_text(text)
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))


def test_a_decorated_function_keeps_the_source_it_was_decorated_with(tmp_path):
    module, path = load(tmp_path, "identity_top", k="2.0")
    edit(path, MODULE.format(k="5.0"))                # same lines, another constant
    assert module.decorated.jvp((1.5,), (1.0,)) == (3.0, 2.0)
    assert module.decorated(1.5) == 3.0


def test_a_callee_edited_after_import_is_refused_at_its_line(tmp_path):
    module, path = load(tmp_path, "identity_callee", k="2.0")
    edit(path, MODULE.format(k="5.0"))
    with pytest.raises(SourceChangedError, match=r"identity_callee.py:5\n[\s\S]*'helper'[\s\S]*"
                                                 r"changed after it was imported[\s\S]*What to do: re-import"):
        module.calls_helper.jvp((1.5,), (1.0,))


def test_lines_moved_after_import_are_refused_not_another_function(tmp_path):
    module, path = load(tmp_path, "identity_moved", k="2.0")
    edit(path, "import math\nimport os\n" + MODULE.format(k="2.0"))    # `plain` is now 2 lines lower
    with pytest.raises(SourceChangedError, match="identity_moved.py"):
        fwdad.jvp(module.plain, (1.5,), (1.0,))


def test_unchanged_files_are_not_refused(tmp_path):
    module, _ = load(tmp_path, "identity_same", k="2.0")
    assert fwdad.jvp(module.plain, (1.5,), (1.0,)) == pytest.approx((4.5, 6.0))
    assert module.calls_helper.jvp((1.5,), (1.0,)) == pytest.approx((4.0, 2.0))


# ---- closures, methods, dispatchers: the source check has no false alarms -----------------------
def make_scaled(k):
    def scaled(x):
        return x * k
    return scaled


class Holder:
    @staticmethod
    def cube(x):
        return x * x * x


@numba.njit
def jitted_square(x):
    return x * x


square_forward = fwdad.forward_grad(jitted_square)


def through_dispatchers(x):
    return jitted_square(x) + square_forward(x)


def test_closures_methods_and_dispatchers_are_read_as_they_run():
    assert fwdad.jvp(make_scaled(3.0), (2.0,), (1.0,)) == (6.0, 3.0)
    assert fwdad.jvp(Holder.cube, (2.0,), (1.0,)) == (8.0, 12.0)
    assert square_forward.jvp((3.0,), (1.0,)) == (9.0, 6.0)
    assert fwdad.jvp(through_dispatchers, (3.0,), (1.0,)) == (18.0, 12.0)


# ---- wrappers ------------------------------------------------------------------------------------
def doubled(func):
    @functools.wraps(func)
    def wrapper(*args):
        return 2.0 * func(*args)
    return wrapper


@doubled
def wrapped_square(x):
    return x * x


def calls_wrapped(x):
    return wrapped_square(x) + 1.0


def test_a_wrapped_function_is_refused_not_unwrapped():
    """fwdad used to follow __wrapped__ and differentiate x * x: value 2.25, not 4.5."""
    with pytest.raises(WrappedFunctionError, match=r"test_source_identity.py:\d+\n\s+@doubled[\s\S]*"
                                                   r"drop the wrapper's code[\s\S]*What to do:"):
        fwdad.forward_grad(wrapped_square)
    with pytest.raises(WrappedFunctionError):
        fwdad.jvp(wrapped_square, (1.5,), (1.0,))
    with pytest.raises(WrappedFunctionError, match="wrapped_square"):
        fwdad.jvp(calls_wrapped, (1.5,), (1.0,))


@functools.lru_cache
def memoized(x):
    return x * x


def calls_memoized(x):
    return memoized(x)


def test_a_cache_decorator_is_refused_too():
    with pytest.raises(WrappedFunctionError, match="memoized"):
        fwdad.jvp(calls_memoized, (1.5,), (1.0,))


@doubled
def wrapped_with_rule(x):
    return x * x


@fwdad.defjvp(wrapped_with_rule)
def wrapped_with_rule_jvp(x, dx):
    return 2.0 * x * x, 4.0 * x * dx


def calls_wrapped_with_rule(x):
    return wrapped_with_rule(x) + 1.0


def test_a_rule_on_a_wrapper_is_refused_not_a_numba_typing_error():
    """Its primal would be the wrapper, which Numba cannot call (before: the inner function's value)."""
    with pytest.raises(WrappedFunctionError, match="wrapped_with_rule[\\s\\S]*What to do: differentiate the undecorated"):
        fwdad.jvp(calls_wrapped_with_rule, (1.5,), (1.0,))
