"""Bad input gets a fwdad error naming the user's file and line, and what to do."""
import inspect

import numpy as np
import pytest

import bad_functions as bad
import fwdad


def marked_line(function, marker):
    lines, first = inspect.getsourcelines(function)
    for offset, line in enumerate(lines):
        if f"# <- {marker}" in line:
            return first + offset
    raise AssertionError(marker)


def location(function, marker):
    return f"bad_functions.py:{marked_line(function, marker)}"


@pytest.mark.parametrize("function, marker, words", [
    (bad.uses_try, "try", "try statement"),
    (bad.uses_with, "with", "with statement"),
    (bad.uses_comprehension, "comprehension", "list comprehension"),
    (bad.uses_generator, "generator", "generator"),
    (bad.uses_lambda, "lambda", "lambda"),
    (bad.uses_nested_def, "nested", "nested function"),
    (bad.uses_global, "global", "global statement"),
    (bad.uses_class, "class", "class definition"),
])
def test_unsupported_syntax_is_rejected_at_decoration(function, marker, words):
    with pytest.raises(fwdad.UnsupportedSyntaxError) as error:
        fwdad.forward_grad(function)
    message = str(error.value)
    assert location(function, marker) in message
    assert words in message and "What to do:" in message


def test_async_function_is_rejected():
    with pytest.raises(fwdad.FwdadError):
        fwdad.forward_grad(bad.asynchronous)


def test_recursion_is_reported():
    f = fwdad.forward_grad(bad.recursive)
    with pytest.raises(fwdad.UnsupportedSyntaxError, match="recursion .*recursive -> recursive"):
        f.jvp((1.0, 3), (1.0, None))


def test_call_without_rule_or_source():
    f = fwdad.forward_grad(bad.opaque_call)
    with pytest.raises(fwdad.DifferentiationError) as error:
        f.jvp((1.5,), (1.0,))
    assert location(bad.opaque_call, "opaque") in str(error.value)
    assert "math.gamma" in str(error.value) and "fwdad.defjvp" in str(error.value)
    assert f(1.5) == pytest.approx(bad.opaque_call(1.5))     # the primal alone is fine


def test_numba_error_is_mapped_to_the_user_line():
    f = fwdad.forward_grad(bad.numba_cannot)
    with pytest.raises(fwdad.CompilationError) as error:
        f.jvp((1.5,), (1.0,))
    message = str(error.value)
    assert location(bad.numba_cannot, "numba") in message
    assert message.startswith(location(bad.numba_cannot, "numba").split(":")[0][:0])
    assert "Traceback" not in message


def test_float_boolop_is_not_differentiated():
    f = fwdad.forward_grad(bad.bool_or_of_floats)
    with pytest.raises(fwdad.FwdadError) as error:
        f.jvp((1.5, 2.0), (1.0, 1.0))
    assert location(bad.bool_or_of_floats, "boolop") in str(error.value)


def test_variable_changing_kind():
    f = fwdad.forward_grad(bad.swap_kinds)
    with pytest.raises(fwdad.FwdadError, match="use two different names"):
        f.jvp((1.5,), (1.0,))


def square_sum(x, n):
    s = 0.0
    for i in range(n):
        s += x[i] * x[i]
    return s


@pytest.fixture(scope="module")
def square():
    return fwdad.forward_grad(square_sum)


def test_wrong_number_of_tangents(square):
    with pytest.raises(fwdad.TangentMismatchError, match="2 primals but 1 tangents"):
        square.jvp((np.ones(3), 3), (np.ones(3),))


def test_wrong_tangent_shape(square):
    with pytest.raises(fwdad.TangentMismatchError, match=r"shape \(4,\).*shape \(3,\)"):
        square.jvp((np.ones(3), 3), (np.ones(4), None))


def test_wrong_tangent_dtype(square):
    with pytest.raises(fwdad.TangentMismatchError, match="astype"):
        square.jvp((np.ones(3), 3), (np.ones(3, np.float32), None))


def test_tangent_for_an_int_argument(square):
    with pytest.raises(fwdad.TangentMismatchError, match="(?s)'n'.*int.*pass None"):
        square.jvp((np.ones(3), 3), (np.ones(3), 1.0))


def test_tangent_for_an_int_array(square):
    with pytest.raises(fwdad.TangentMismatchError, match="int64.*carries no tangent"):
        square.jvp((np.ones(3, np.int64), 3), (np.ones(3), None))


def test_lambda_and_builtin_have_no_source():
    with pytest.raises(fwdad.NoSourceError, match="lambda"):
        fwdad.forward_grad(lambda x: x * 2.0)
    with pytest.raises(fwdad.NoSourceError, match="defjvp"):
        fwdad.forward_grad(abs)


def test_source_before_any_call():
    f = fwdad.forward_grad(square_sum)
    with pytest.raises(fwdad.FwdadError, match="source_for"):
        f.source


def test_source_not_available(tmp_path):
    namespace = {}
    exec("def made_at_runtime(x):\n    return x * 2.0\n", namespace)
    with pytest.raises(fwdad.NoSourceError, match="not available"):
        fwdad.forward_grad(namespace["made_at_runtime"])
