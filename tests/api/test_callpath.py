"""The thin call path (issue 14, fwdad/prepared.py): a call whose argument types were seen
before runs a prepared call. Prepared calls give the results of the full path for every argument
form, a changed type re-dispatches, nothing the user passes is modified, value checks (tangent
shapes, byte order, seeds) still refuse, and errors still name the user's line. Each function is
compiled once, at module level; the full path is the first call, or a fresh ForwardFunction."""
import numpy as np
import pytest

import fwdad
from fwdad.errors import ExecutionError, OptionError, TangentMismatchError


def scaled(x, a):
    return a * np.sum(x * x)


def pair(a, b):
    return a * a * b + np.sin(b)


def solve(m, v):
    return np.sum(np.linalg.solve(m, v))


def first_of(t, a):
    return t[0][1] * a


def squares(x, a):
    return a * (x[0] * x[0] + x[1] * x[1])


SCALED = fwdad.forward_grad(scaled)
PAIR = fwdad.forward_grad(pair)
SOLVE = fwdad.forward_grad(solve)
FIRST_OF = fwdad.forward_grad(first_of)
SQUARES = fwdad.forward_grad(squares)


def same(got, expected):
    """Equal values of equal types, item by item (tuples, None, arrays with their dtype and shape)."""
    if isinstance(expected, tuple):
        return type(got) is tuple and len(got) == len(expected) and all(map(same, got, expected))
    if isinstance(expected, np.ndarray):
        return type(got) is np.ndarray and got.dtype == expected.dtype and np.array_equal(got, expected)
    return type(got) is type(expected) and (got == expected or got is expected)


CALLS = {
    "jvp": lambda f, args: f.jvp(args, tuple(np.ones_like(a) if isinstance(a, np.ndarray) else
                                             None if isinstance(a, int) else 1.0 for a in args)),
    "forward_gradient": lambda f, args: f.forward_gradient(*args, seed=7),
    "forward_gradient K=3": lambda f, args: f.forward_gradient(*args, seed=7, directions=3),
    "value_and_grad": lambda f, args: f.value_and_grad(*args),
    "jacobian": lambda f, args: f.jacobian(*args),
}


@pytest.mark.parametrize("method", [pytest.param(m, marks=pytest.mark.slow) if "K=3" in m else m for m in CALLS])
def test_a_prepared_call_gives_what_the_full_path_gives(method):
    x = np.array([0.5, -1.0])
    first = CALLS[method](SQUARES, (x, 1.5))         # the full path (kept as a prepared call)
    second = CALLS[method](SQUARES, (x, 1.5))        # the prepared call
    assert same(second, first)
    assert same(CALLS[method](SQUARES, (x + 1.0, 1.5)), CALLS[method](SQUARES, (x + 1.0, 1.5)))


ARGUMENT_FORMS = {
    "float32 array": lambda x: (x.astype(np.float32), np.float32(1.5)),
    "Fortran order": lambda x: (np.asfortranarray(np.stack([x, x])), 1.5),
    "strided view": lambda x: (np.repeat(x, 2)[::2], 1.5),
    "read-only": lambda x: (readonly(x), 1.5),
    "0-d array": lambda x: (np.array(2.0), 1.5),
    "float scalar": lambda x: (2.0, 1.5),
    "int scale": lambda x: (x, 2),
}


def readonly(x):
    x = x.copy()
    x.flags.writeable = False
    return x


@pytest.mark.slow
@pytest.mark.parametrize("form", ARGUMENT_FORMS)
@pytest.mark.parametrize("method", CALLS)
def test_every_argument_form_gives_the_same_results_prepared(method, form):
    args = ARGUMENT_FORMS[form](np.array([0.5, -1.0, 2.0]))
    if method == "jacobian" and np.ndim(args[0]) == 0 and isinstance(args[1], int):
        pytest.skip("no float argument")
    first = CALLS[method](SCALED, args)
    assert same(CALLS[method](SCALED, args), first)
    assert same(CALLS[method](fwdad.forward_grad(scaled), args), first)


@pytest.mark.filterwarnings("ignore::numba.core.errors.NumbaPendingDeprecationWarning")    # a list
@pytest.mark.parametrize("second", ["float32", "Fortran", "0-d", "list", "tuple", "strided"])
def test_a_changed_type_on_the_next_call_is_dispatched_again(second):
    x = np.array([[0.5, -1.0], [2.0, 3.0]])
    SQUARES.jvp((x[0].copy(), 1.5), (np.ones(2), 0.0))
    args = {"float32": (x[0].astype(np.float32), 1.5), "Fortran": (np.asfortranarray(x)[:, 0], 1.5),
            "0-d": (np.array([3.0, 2.0]), np.array(1.5)), "list": ([0.5, -1.0], 1.5),
            "tuple": ((0.5, -1.0), 1.5), "strided": (x[:, 1], 1.5)}[second]
    value, tangent = SQUARES.jvp(args, (None, np.ones_like(args[1])))
    expected = float(np.sum(np.square(np.asarray(args[0], np.float64))))
    assert value == pytest.approx(1.5 * expected) and tangent == pytest.approx(expected)


def test_a_scalar_then_a_0d_array_tangent_is_converted_each_time():
    for tangent in (1.0, np.array(2.0), 3, np.float32(4.0), 1.0):
        value, derivative = PAIR.jvp((1.5, 2.0), (tangent, None))
        assert derivative == 2 * 1.5 * 2.0 * float(tangent)


def test_nothing_passed_is_modified():
    x, dx = np.array([0.5, -1.0]), np.array([1.0, 2.0])
    kept = x.copy(), dx.copy()
    for _ in range(2):
        SQUARES.jvp((x, 1.5), (dx, None))
        SQUARES.forward_gradient(x, 1.5, seed=3)
        SQUARES.value_and_grad(x, 1.5)
        SQUARES.jacobian(x, 1.5)
    assert np.array_equal(x, kept[0]) and np.array_equal(dx, kept[1])


def test_a_tangent_of_another_shape_is_refused_after_a_prepared_call():
    x = np.array([0.5, -1.0, 2.0])
    SCALED.jvp((x, 1.5), (np.ones(3), None))
    with pytest.raises(TangentMismatchError, match=r"shape \(2,\)"):
        SCALED.jvp((x, 1.5), (np.ones(2), None))


def test_big_endian_arrays_are_refused_after_native_ones_also_inside_a_tuple():
    x = np.array([0.5, -1.0])
    SQUARES.value_and_grad(x, 1.5)
    with pytest.raises(OptionError, match="byte order"):
        SQUARES.value_and_grad(x.astype(">f8"), 1.5)
    t = (np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    assert FIRST_OF(t, 2.0) == 4.0 and FIRST_OF.jvp((t, 2.0), (None, 1.0)) == (4.0, 2.0)
    foreign = (t[0], t[1].astype(">f8"))             # Numba reads its bytes as native ones
    for call in (lambda: FIRST_OF(foreign, 2.0), lambda: FIRST_OF.jvp((foreign, 2.0), (None, 1.0))):
        with pytest.raises(OptionError, match=r"argument 't' holds an array.*byte order"):
            call()


@pytest.mark.parametrize("seed", [-1, 2 ** 64, 1.0, True])
def test_a_bad_seed_is_refused_after_a_good_one(seed):
    SCALED.forward_gradient(np.ones(3), 1.5, seed=1)
    with pytest.raises(OptionError, match="seed"):
        SCALED.forward_gradient(np.ones(3), 1.5, seed=seed)


def test_a_numpy_seed_gives_what_the_same_int_gives():
    args = (np.array([0.5, -1.0, 2.0]), 1.5)
    assert same(SCALED.forward_gradient(*args, seed=np.uint64(2 ** 63 + 5)),
                SCALED.forward_gradient(*args, seed=2 ** 63 + 5))


@pytest.mark.parametrize("seed", [0, 2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1])
def test_the_direction_of_every_64_bit_seed_is_the_one_fwdad_random_gives(seed):
    """The seed goes to the driver as a Python int below 2 ** 63 and as np.uint64 above."""
    x = np.array([0.5, -1.0, 2.0])
    value, (g, ga) = SCALED.forward_gradient(x, 1.5, seed=seed)
    v, va = fwdad.random.direction(seed, 0, (4,))[:3], fwdad.random.direction(seed, 0, (4,))[3]
    slope = np.dot(3.0 * x, v) + np.sum(x * x) * va
    np.testing.assert_allclose(g, slope * v, rtol=1e-13)
    assert ga == pytest.approx(slope * va, rel=1e-13)


@pytest.mark.slow                                   # Numba compiles np.linalg.solve (3-5 s)
def test_a_run_time_error_of_a_prepared_call_names_the_users_line():
    m, v = np.eye(2), np.ones(2)
    assert SOLVE.jvp((m, v), (np.ones((2, 2)), None)) == SOLVE.jvp((m, v), (np.ones((2, 2)), None))
    with pytest.raises(ExecutionError, match=rf"test_callpath.py:{solve.__code__.co_firstlineno + 1}\b"
                       r"(.|\n)*singular"):
        SOLVE.jvp((np.zeros((2, 2)), v), (np.ones((2, 2)), None))


def test_source_follows_the_last_prepared_call():
    x = np.array([0.5, -1.0])
    for dtype in ("float64", "float32", "float64"):
        SCALED.jvp((x.astype(dtype), 1.5), (np.ones(2, dtype), None))
    assert "float64" in SCALED.source.splitlines()[0] and "float32" not in SCALED.source.splitlines()[0]


def test_a_rule_given_after_a_prepared_call_is_used():
    def cube(x):
        return x * x * x

    def cube_rule(x, dx):
        return x * x * x, 100.0 * dx

    f = fwdad.forward_grad(cube)
    assert f.jvp((2.0,), (1.0,)) == f.jvp((2.0,), (1.0,)) == (8.0, 12.0)
    fwdad.defjvp(cube, cube_rule)
    assert f.jvp((2.0,), (1.0,)) == (8.0, 100.0)


def test_jvp_and_gradients_type_the_primal_without_compiling_it():
    f = fwdad.forward_grad(pair)
    f.jvp((1.5, 2.0), (1.0, None))
    f.value_and_grad(1.5, 2.0)
    assert f.unit.primal.signatures == [] and f.unit.numba_typings == 1
    assert f(1.5, 2.0) == pair(1.5, 2.0)


def test_verbose_reports_the_time_of_every_stage(capsys):
    def cubic(x, n):
        return x * x * x + n

    f = fwdad.forward_grad(cubic, verbose=True)
    f(1.5, 2)
    f.jvp((1.5, 2), (1.0, None))
    f(1.5, 2)                                  # compiled: no second report
    lines = [line for line in capsys.readouterr().out.splitlines() if line.endswith(" s")]
    stages = ["parse and fence cubic", "normalize cubic", "Numba compile and first run of the primal cubic",
              "typing cubic (float64, int64)", "activity cubic (active [0], scalar mode)",
              "tangent pass cubic (scalar mode)", "codegen cubic_jvp", "Numba compile and first run of cubic_jvp"]
    assert [line.split(": ")[1] for line in lines if "parse cubic" not in line] == stages
    assert all(float(line.rsplit(": ", 1)[1][:-2]) >= 0 for line in lines)
