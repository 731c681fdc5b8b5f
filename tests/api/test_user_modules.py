"""User modules whose names begin like a library's (mathtools, numpy_utils) are still user code."""
import importlib.util
import sys
import textwrap

import pytest

import fwdad

SOURCE = textwrap.dedent("""
    def helper(x):
        return x * x

    def f(x):
        return helper(x) + 1.0
""")


@pytest.mark.parametrize("module_name", ["mathtools", "numpy_utils", "numbakit", "fwdad_models"])
def test_helper_in_a_module_named_like_a_library_is_differentiated(tmp_path, module_name):
    path = tmp_path / f"{module_name}.py"
    path.write_text(SOURCE)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
        value, tangent = fwdad.forward_grad(module.f).jvp((3.0,), (1.0,))
    finally:
        del sys.modules[module_name]
    assert (value, tangent) == (10.0, 6.0)
