"""`fwdad show`: the user's file runs under a private name, --args is read and never run,
the function's wrt= (or --wrt) decides what is differentiated, and unknown argument types
ask for --args."""
import sys

import numpy as np
import pytest

from fwdad.cli import main, parse_arguments

PROGRAM = '''
import numpy as np
import fwdad
from show_sibling_constants import SCALE


def f(x, w, n):
    s = 0.0
    for i in range(n):
        s += SCALE * np.sum(x * w) * i
    return s


g = fwdad.forward_grad(f, wrt=(0,))


def h(x, n):
    s = 0.0
    for i in range(n):
        s += x[i] * x[i]
    return s
'''
ARGS = "(np.ones(3), np.ones(3), 4)"


@pytest.fixture(scope="module")
def random_py(tmp_path_factory):
    """A user's file named like the standard library's `random`, with a sibling import."""
    folder = tmp_path_factory.mktemp("show")
    (folder / "random.py").write_text(PROGRAM)
    (folder / "show_sibling_constants.py").write_text("SCALE = 2.0\n")
    return folder / "random.py"


def show(capsys, *argv):
    """(exit status, stdout, stderr) of `fwdad show ...`."""
    status = main(["show", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def test_show_runs_a_file_named_random_without_replacing_the_module(random_py, capsys):
    import random
    path, modules = list(sys.path), set(sys.modules)
    status, out, _ = show(capsys, f"{random_py}:g", "--args", ARGS)
    assert status == 0 and "def f_jvp(x, w, n, d_x):" in out
    assert sys.modules["random"] is random and sys.path == path
    assert not any(name.startswith("fwdad_show_") for name in set(sys.modules) - modules)


def test_show_honours_the_functions_wrt_and_the_wrt_option(random_py, capsys):
    _, out, _ = show(capsys, f"{random_py}:g", "--args", ARGS)   # g = forward_grad(f, wrt=(0,))
    assert "d_x" in out and "d_w" not in out
    _, out, _ = show(capsys, f"{random_py}:f", "--args", ARGS, "--wrt", "w")
    assert "def f_jvp(x, w, n, d_w):" in out and "d_x" not in out
    _, out, _ = show(capsys, f"{random_py}:f", "--args", ARGS)   # default: every float argument
    assert "def f_jvp(x, w, n, d_x, d_w):" in out
    with pytest.raises(SystemExit, match="not a parameter"):
        show(capsys, f"{random_py}:f", "--args", ARGS, "--wrt", "y")


def test_show_asks_for_args_when_it_had_to_guess_the_types(random_py, capsys):
    status, out, err = show(capsys, f"{random_py}:h")       # x[i] on the guess x = 1.0 fails
    assert status == 1 and out == ""
    assert "does not know the argument types of h: x, n have no annotation or default" in err
    assert "What to do: pass example arguments, e.g. fwdad show" in err
    assert "--args '(np.ones(5), 2.0, 10)'" in err


@pytest.mark.parametrize("expression", [
    "__import__('os').system('touch {marker}')",
    "open('{marker}', 'w')",
    "np.save('{marker}', np.ones(2))",
    "np.ones.__globals__",
    "(lambda: open('{marker}', 'w'))()",
    "np.ones(3, like=open('{marker}', 'w'))",
    "np.ones(**{{'shape': 3}})",
    "[x for x in ().__class__.__base__.__subclasses__()]",
])
def test_args_that_would_run_code_are_refused(expression, random_py, tmp_path, capsys):
    marker = tmp_path / "ran"
    with pytest.raises(SystemExit, match="--args may not contain"):
        show(capsys, f"{random_py}:f", "--args", expression.format(marker=marker))
    assert not marker.exists() and not (tmp_path / "ran.npy").exists()


@pytest.mark.parametrize("text, expected", [
    ("(np.ones(5), 2.0, 10)", (np.ones(5), 2.0, 10)),
    ("np.zeros((3, 4), dtype=np.float32)", (np.zeros((3, 4), np.float32),)),
    ("(numpy.full(2, -1.5), np.float32(1.0), True, None)", (np.full(2, -1.5), np.float32(1.0), True, None)),
    ("(np.linspace(0, 1, 3), np.arange(4), np.eye(2), [1.0, 2.0], math.pi)",
     (np.linspace(0, 1, 3), np.arange(4), np.eye(2), [1.0, 2.0], np.pi)),
    ("-2.5", (-2.5,)),
])
def test_args_accepts_literals_and_a_few_numpy_constructors(text, expected):
    values = parse_arguments(text)
    assert len(values) == len(expected)
    for value, want in zip(values, expected):
        assert type(value) is type(want) and np.array_equal(value, want)
        assert getattr(value, "dtype", None) == getattr(want, "dtype", None)


def test_args_syntax_errors_say_what_to_write():
    with pytest.raises(SystemExit, match="not a Python expression"):
        parse_arguments("(np.ones(5), ")
