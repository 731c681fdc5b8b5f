"""The API's edges an outside trial found (issue 13, brief H9): huge chunk/directions, fgd's
user gradient of the wrong structure, big-endian arrays, keyword arguments, batch_jvp's bare
in_axes, fgd stopping at the first non-finite loss, and warnings attributed to the user's line.
Each test function is compiled once, at module level."""
import warnings

import numba
import numpy as np
import pytest

import fwdad
from fwdad import api
from fwdad.drivers import gradients
from helpers import PROGRAMS
from fwdad.errors import OptionError, user_stacklevel
from fwdad.optim import NonFiniteLossError


def energy(x, w, a, n):
    s = 0.0
    for i in range(n):
        s += a * np.sum(x * x) + np.sum(w)
    return s


def two(a, b):
    return a * a * b + np.sin(b)


def vec(x):
    return x * x


def uses_seed(x, seed):
    return x * x * seed


def log_loss(x):
    return np.log(x)


def quad(w):
    return np.sum(w * w)


ENERGY = fwdad.forward_grad(energy)
TWO = fwdad.forward_grad(two)
VEC = fwdad.forward_grad(vec)
USES_SEED = fwdad.forward_grad(uses_seed)
LOG_LOSS = fwdad.forward_grad(log_loss)
QUAD = fwdad.forward_grad(quad)


# ---- C1: a huge chunk or directions runs in bounded memory ----------------------------------
def test_chunk_larger_than_the_active_scalars_means_all_of_them():
    x, w = np.array([0.5, -1.0, 2.0]), np.array([1.0, 2.0])
    assert gradients.chunk_size((x, w, 0.5, 2), [0, 1, 2], 10 ** 9) == 6
    value, grads = ENERGY.value_and_grad(x, w, 0.5, 2, chunk=10 ** 9)    # was: killed by OOM
    expected = ENERGY.value_and_grad(x, w, 0.5, 2)
    assert value == expected[0]
    for got, want in zip(grads[:3], expected[1][:3]):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_direction_passes_cover_every_direction_in_bounded_passes():
    passes = gradients.direction_passes(10 ** 12, 5)
    assert passes[0] == (0, gradients.DIRECTION_ENTRIES // 5)
    assert sum(count for _, count in passes) == 10 ** 12
    assert max(count for _, count in passes) * 5 <= gradients.DIRECTION_ENTRIES
    assert gradients.direction_passes(3, 10 ** 9) == [(0, 1), (1, 1), (2, 1)]


def test_forward_gradient_in_several_passes_equals_one_pass(monkeypatch):
    x, w = np.array([0.5, -1.0, 2.0]), np.array([1.0, 2.0])
    one = ENERGY.forward_gradient(x, w, 0.5, 2, seed=3, directions=7)
    monkeypatch.setattr(gradients, "DIRECTION_ENTRIES", 12)                 # 2 directions per pass
    assert gradients.direction_passes(7, 6) == [(0, 2), (2, 2), (4, 2), (6, 1)]
    many = ENERGY.forward_gradient(x, w, 0.5, 2, seed=3, directions=7)
    assert many[0] == one[0]
    for got, want in zip(many[1][:3], one[1][:3]):
        np.testing.assert_allclose(got, want, rtol=1e-12)


# ---- keyword arguments -----------------------------------------------------------------------
def test_value_and_grad_jacobian_and_forward_gradient_take_keywords():
    value, grads = TWO.value_and_grad(b=2.0, a=3.0)                     # was: TypeError
    assert value == TWO(3.0, 2.0)
    np.testing.assert_allclose(grads, (12.0, 9.0 + np.cos(2.0)), rtol=1e-12)
    assert TWO.jacobian(3.0, b=2.0, chunk=1) == TWO.value_and_grad(3.0, 2.0)[1]
    assert TWO.forward_gradient(b=2.0, a=3.0, seed=5) == TWO.forward_gradient(3.0, 2.0, seed=5)


def test_a_parameter_named_like_an_option_must_be_passed_by_position():
    with pytest.raises(OptionError, match="parameter named 'seed'(.|\n)*positionally"):
        USES_SEED.forward_gradient(2.0, seed=3.0)
    value, grads = USES_SEED.forward_gradient(2.0, 3.0, seed=1)      # by position: fine
    assert value == 12.0 and len(grads) == 2


# ---- big-endian arrays -----------------------------------------------------------------------
BIG = np.arange(3.0).astype(">f8")


@pytest.mark.parametrize("call", [
    lambda: VEC(BIG), lambda: VEC.jvp((BIG,), (np.ones(3, ">f8"),)), lambda: VEC.jacobian(BIG),
    lambda: QUAD.value_and_grad(BIG), lambda: VEC.batch_jvp((BIG,), (np.ones(3),))],
    ids=["primal", "jvp", "jacobian", "value_and_grad", "batch_jvp"])
def test_non_native_byte_order_is_refused_naming_the_argument(call):
    with pytest.raises(OptionError, match=r"argument 'x'.*byte order(.|\n)*newbyteorder\('='\)"
                       if call.__code__.co_names[0] == "VEC" else r"argument 'w'.*byte order"):
        call()


def test_big_endian_after_native_is_not_run_with_the_native_code():
    native = np.arange(3.0)
    assert VEC.jvp((native,), (np.ones(3),))[0].tolist() == [0.0, 1.0, 4.0]
    with pytest.raises(OptionError, match="byte order"):                # same dtype.num
        VEC.jvp((BIG,), (np.ones(3),))


def test_fgd_refuses_big_endian_params():
    with pytest.raises(OptionError, match=r"'params'.*byte order"):     # was: NumbaValueError
        fwdad.fgd(QUAD, BIG, lr=0.1, steps=1)


# ---- batch_jvp's bare in_axes ----------------------------------------------------------------
def test_batch_jvp_bare_zero_means_the_default_and_other_ints_are_refused():
    x, t = np.array([1.0, 2.0]), np.array([1.0, 1.0])
    default = TWO.batch_jvp((x, 3.0), (t, 0.0))
    zero = TWO.batch_jvp((x, 3.0), (t, 0.0), in_axes=0)
    for got, want in zip(zero, default):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(OptionError, match="in_axes"):
        TWO.batch_jvp((x, 3.0), (t, 0.0), in_axes=1)


# ---- fgd with the user's compiled gradient ---------------------------------------------------
@numba.njit
def log_gradient(x):
    return np.log(x), 1.0 / x


@numba.njit
def quad_good(w):
    return np.sum(w * w), 2.0 * w


@numba.njit
def quad_too_long(w):
    return np.sum(w * w), np.zeros(w.size + 5)


@numba.njit
def quad_swapped(w):
    return 2.0 * w, np.sum(w * w)


@numba.njit
def quad_scalar(w):
    return np.sum(w * w), 1.0


@numba.njit
def quad_single(w):
    return (np.sum(w * w),)


@numba.njit
def quad_float32(w):
    return np.sum(w * w), (2.0 * w).astype(np.float32)


def quad_python(w):
    return np.sum(w * w), 2.0 * w


@pytest.mark.parametrize("gradient, message", [
    (quad_too_long, r"array of shape \(3,\) and dtype float64, got an array of shape \(8,\)"),
    (quad_swapped, "are value and gradients swapped"),
    (quad_scalar, r"array of shape \(3,\).*got 1.0"),
    (quad_single, "returning a pair"),
    (quad_float32, "dtype float32"),
    (quad_python, "decorate it with @numba.njit"),
])
def test_fgd_checks_the_structure_of_the_users_gradient(gradient, message):
    with pytest.raises(OptionError, match=r"fgd: gradient must be(.|\n)*" + message):
        fwdad.fgd(QUAD, np.ones(3), lr=0.1, steps=20, gradient=gradient)


def test_fgd_refuses_a_gradient_that_does_not_type_on_fns_arguments():
    with pytest.raises(OptionError, match="gradient must be callable on fn's arguments, got "
                       "TypeError calling it on the initial parameters: too many arguments"):
        fwdad.fgd(TWO, (1.0, 2.0), lr=0.1, steps=2, gradient=quad_good)


def test_fgd_with_a_correct_users_gradient_runs():
    result = fwdad.fgd(QUAD, np.ones(3), lr=0.1, steps=5, gradient=quad_good)
    np.testing.assert_allclose(result.params, 0.8 ** 5 * np.ones(3))


# ---- fgd stops at the first non-finite loss --------------------------------------------------
def test_fgd_stops_at_the_first_nonfinite_loss_with_the_parameters_that_produced_it():
    # x <- x - 1/x from 2: 1.5, 0.8333, -0.3667 whose log is nan at step 3
    with pytest.raises(NonFiniteLossError, match="step 3 is nan.*stopped there") as stopped:
        fwdad.fgd(LOG_LOSS, 2.0, lr=1.0, steps=200_000, gradient=log_gradient, trajectory=True)
    result = stopped.value.result
    assert stopped.value.step == 3 and result.steps == 4           # was: tens of thousands
    assert np.isnan(result.losses[-1]) and np.isfinite(result.losses[:-1]).all()
    x3 = 1.5 - 1 / 1.5
    x3 -= 1 / x3
    assert result.params == pytest.approx(x3) and result.params < 0
    np.testing.assert_allclose(result.trajectory[-1], [x3])


def test_on_nonfinite_warn_goes_on_and_warns_at_the_users_line():
    with pytest.warns(RuntimeWarning, match="step 3 is nan") as caught:
        result = fwdad.fgd(LOG_LOSS, 2.0, lr=1.0, steps=6, gradient=log_gradient, on_nonfinite="warn")
    assert result.steps == 6
    assert caught[0].filename == __file__                            # was: fwdad/optim.py


def test_user_stacklevel_skips_fwdad_frames():
    def warn_here():
        warnings.warn("here", UserWarning, stacklevel=user_stacklevel())
    with pytest.warns(UserWarning) as caught:
        warn_here()
    assert caught[0].filename == __file__


# ---- fgd with more directions than fit in one step's buffers ---------------------------------
@pytest.mark.slow                     # two loops compiled (~9 s)
def test_fgd_draws_directions_one_at_a_time_when_they_do_not_fit(monkeypatch):
    vector = fwdad.fgd(QUAD, np.ones(3), lr=0.01, steps=3, directions=4, seed=2)
    monkeypatch.setattr(gradients, "DIRECTION_ENTRIES", 6)          # 4 directions x 3 parameters > 6
    sequential = fwdad.fgd(QUAD, np.ones(3), lr=0.01, steps=3, directions=4, seed=2)
    np.testing.assert_allclose(sequential.params, vector.params, rtol=1e-12)
    np.testing.assert_allclose(sequential.losses, vector.losses, rtol=1e-12)


def test_fgd_on_cuda_refuses_directions_that_do_not_fit_naming_the_memory():
    from fwdad.optim import refuse_unbounded_directions
    refuse_unbounded_directions(1000, 3)
    with pytest.raises(OptionError, match=r"directions must be at most 11184810 on target='cuda'"
                       r".*about 2.24e\+03 GiB"):
        refuse_unbounded_directions(10 ** 11, 3)


@pytest.mark.slow                     # a fresh interpreter with the CUDA simulator
def test_cuda_forward_gradient_in_several_passes_equals_one_pass():
    import os
    import subprocess
    import sys
    pytest.importorskip("numba.cuda")
    code = (
        "import numpy as np, fwdad\n"
        "from fwdad.drivers import gradients\n"
        "from cuda_programs import quadratic\n"
        "f = fwdad.forward_grad(quadratic, target='cuda')\n"
        "x = np.arange(6.0)\n"
        "one = f.forward_gradient(x, 0.5, seed=4, directions=5)\n"
        "gradients.DIRECTION_ENTRIES = 14\n"                               # 2 directions per pass
        "many = f.forward_gradient(x, 0.5, seed=4, directions=5)\n"
        "print(float(np.abs(one[1][0] - many[1][0]).max()), abs(one[1][1] - many[1][1]), one[0] == many[0])\n")
    environment = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONWARNINGS="ignore")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                         cwd=PROGRAMS, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    worst_array, worst_scalar, same_value = out.stdout.split()
    assert float(worst_array) < 1e-12 and float(worst_scalar) < 1e-12 and same_value == "True"


def test_cache_warning_points_at_the_users_line(monkeypatch, tmp_path):
    import os

    from fwdad import cache
    from fwdad.errors import CacheWarning
    unsafe = tmp_path / "shared"
    unsafe.mkdir()
    os.chmod(unsafe, 0o777)                                    # world-writable: refused
    monkeypatch.setenv("FWDAD_CACHE_DIR", str(unsafe))
    monkeypatch.setattr(cache, "_REFUSED", set())
    monkeypatch.setattr(api, "_COMPILERS", {})
    with pytest.warns(CacheWarning, match="does not use the cache directory") as caught:
        fwdad.forward_grad(energy, cache=True)
    assert caught[0].filename == __file__                    # was: fwdad/api.py (compiler_for)
