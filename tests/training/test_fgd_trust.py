"""Issue 13's API findings: wrt in any order, fgd options refused, runs that stop keep results.

Each test fails on the code before the fix: gradients landed on the wrong arguments with
wrt=(1, 0); directions=0 ran to zero losses (NaN on target="parallel"); Ctrl-C without a TTY
waited for the whole run and lost it; a raising callback lost every step; NaN losses ran on.
"""
import os
import re
import signal
import threading
import time
import warnings

import numpy as np
import pytest

import fwdad
from fwdad.errors import ExecutionError, OptionError
from fwdad.optim import CallbackError, FGDInterrupted, NonFiniteLossError


def mixed(a, x, b):
    """Different partial derivatives in every argument, so a misplaced gradient shows."""
    return a * a * np.sum(x * x) + 3.0 * b + a * b * x[0]


def rosenbrock(x, y):
    return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2


def long_loss(x):
    """A few microseconds per step, so a long run can be interrupted in the middle."""
    s = 0.0
    for i in range(x.size):
        s += (x[i] - 1.0) ** 2
    return s


def solve_sum(A, b):
    x = np.linalg.solve(A, b)
    return np.sum(x)


A, X, B = 0.7, np.array([0.5, -1.5, 2.0]), 1.3
FULL = fwdad.forward_grad(mixed)
FORWARD = {wrt: fwdad.forward_grad(mixed, wrt=wrt) for wrt in
           [(1, 0), ("x", "a"), (-1, 0), (2, 0, 1), ("b", -3)]}


@pytest.fixture(scope="module")
def full_gradient():
    return FULL.value_and_grad(A, X, B)[1]


@pytest.mark.parametrize("wrt", list(FORWARD))
def test_wrt_in_any_order_gives_each_argument_its_own_gradient(wrt, full_gradient):
    f = FORWARD[wrt]
    _, grads = f.value_and_grad(A, X, B)
    chosen = {p % 3 if isinstance(p, int) else ["a", "x", "b"].index(p) for p in wrt}
    for i in range(3):
        if i in chosen:
            np.testing.assert_allclose(grads[i], full_gradient[i], rtol=1e-13)
        else:
            assert grads[i] is None
    _, estimate = f.forward_gradient(A, X, B, seed=3, directions=2)
    assert [g is None for g in estimate] == [g is None for g in grads]


@pytest.mark.parametrize("wrt, words", [
    (3, "a position between -3 and 2"), (-4, "a position between -3 and 2"),
    ("c", "one of the parameter names (a, x, b)"), ((0, "a"), "a tuple of distinct parameters"),
    (True, "parameter names or integer positions"), ((0.0,), "parameter names or integer positions"),
    ((), "a parameter name or position"), ({"a": 1}, "a parameter name or position")])
def test_bad_wrt_is_refused_naming_the_option(wrt, words):
    with pytest.raises(OptionError, match=re.escape(f"forward_grad(mixed): wrt must be {words}")):
        fwdad.forward_grad(mixed, wrt=wrt)


def test_source_for_takes_active_as_wrt_does():
    assert FULL.source_for(A, X, B, active=(-1,)) == FULL.source_for(A, X, B, active=["b"])
    with pytest.raises(OptionError, match=re.escape("mixed.source_for: active must be a position between -3")):
        FULL.source_for(A, X, B, active=(3,))


@pytest.mark.parametrize("target", ["cpu", "parallel"])
@pytest.mark.parametrize("directions", [0, -2, 2.7, True])
def test_fgd_refuses_directions_that_are_not_a_positive_integer(target, directions):
    f = fwdad.forward_grad(rosenbrock, target=target)
    with pytest.raises(OptionError, match="fgd: directions must be an integer >= 1"):
        fwdad.fgd(f, (-1.0, 0.0), lr=1e-3, steps=10, directions=directions, progress=False)


@pytest.mark.parametrize("options, name", [
    (dict(lr=float("nan")), "lr"), (dict(lr=np.inf), "lr"), (dict(decay=np.nan), "decay"),
    (dict(momentum=np.inf, optimizer="momentum"), "momentum"), (dict(betas=(0.9, np.nan)), "betas\\[1\\]"),
    (dict(eps=np.inf), "eps"), (dict(seed=-1), "seed"), (dict(seed=1.5), "seed"), (dict(steps=-5), "steps"),
    (dict(every=-1), "every"), (dict(clip=np.nan), "clip"), (dict(batch_size=0), "batch_size"),
    (dict(on_nonfinite="ignore"), "on_nonfinite")])
def test_fgd_refuses_bad_numbers_naming_the_option(options, name):
    settings = dict(dict(lr=1e-3, steps=10, progress=False), **options)
    with pytest.raises(OptionError, match=f"fgd: {name} must be"):
        fwdad.fgd(rosenbrock, (-1.0, 0.0), **settings)


def test_fgd_refuses_data_that_is_not_a_tuple_and_params_of_the_wrong_arity():
    X = np.ones((8, 2))
    with pytest.raises(OptionError, match=r"(?s)fgd: data must be a tuple of data arrays.*data=\(X,\)"):
        fwdad.fgd(rosenbrock, -1.0, lr=1e-3, steps=2, data=X, progress=False)
    with pytest.raises(OptionError, match=r"rosenbrock\(x, y\) takes 2 arguments, but fgd would call it "
                                          r"with 3: 3 parameter\(s\)"):
        fwdad.fgd(rosenbrock, (1.0, 2.0, 3.0), lr=1e-3, steps=2, progress=False)
    with pytest.raises(OptionError, match="with 1: 1 parameter"):
        fwdad.fgd(rosenbrock, 1.0, lr=1e-3, steps=2, progress=False)
    with pytest.raises(OptionError, match="fgd: args must be a tuple"):
        fwdad.fgd(rosenbrock, 1.0, lr=1e-3, steps=2, args=2.0, progress=False)


def test_jvp_refuses_tangents_that_are_not_a_tuple():
    f = fwdad.forward_grad(rosenbrock)
    with pytest.raises(OptionError, match="rosenbrock.jvp: tangents must be a tuple"):
        f.jvp((1.0, 2.0), None)
    with pytest.raises(OptionError, match="rosenbrock.jvp: primals must be a tuple"):
        f.jvp(np.ones(2), (1.0, 0.0))


def test_a_linalg_error_in_the_tangent_code_names_the_users_line():
    f = fwdad.forward_grad(solve_sum)
    A = np.eye(2)
    assert f(A, np.ones(2)) == 2.0                      # the primal runs
    with pytest.raises(ExecutionError) as caught:
        f.jvp((A, np.ones(2)), (np.full((2, 2), np.nan), None))
    message = str(caught.value)
    line = solve_sum.__code__.co_firstlineno + 1
    assert message.startswith(f"{__file__}:{line}\n    x = np.linalg.solve(A, b)"), message
    assert "LinAlgError" in message and "What to do:" in message
    assert isinstance(caught.value.__cause__, np.linalg.LinAlgError)


def test_a_linalg_error_inside_fgd_names_the_users_line():
    with pytest.raises(ExecutionError, match=r"(?s)test_fgd_trust.py:\d+\n    x = np.linalg.solve\(A, b\).*"
                                             r"LinAlgError: Matrix is singular"):
        fwdad.fgd(solve_sum, np.zeros((2, 2)), args=(np.ones(2),), lr=1e-3, steps=3, progress=False)


# ---- runs that stop early keep their results ----------------------------------------------------------
def test_a_nonfinite_loss_stops_the_run_and_keeps_the_steps_done():
    with pytest.raises(NonFiniteLossError, match=r"the loss at step \d+ is inf") as caught:
        fwdad.fgd(rosenbrock, (1.0, 1.5), lr=0.01, steps=1000, progress=False)
    error = caught.value
    result, step = error.result, error.step
    assert f"the loss at step {step} is inf" in str(error) and 0 < step < result.steps < 1000
    assert result.losses.shape == (result.steps,) == result.times.shape and np.isinf(result.losses[step])
    assert np.all(np.isfinite(result.losses[:step]))
    again = fwdad.fgd(rosenbrock, (1.0, 1.5), lr=0.01, steps=step, progress=False)
    np.testing.assert_array_equal(again.losses, result.losses[:step])


def test_on_nonfinite_warn_and_continue_run_to_the_end():
    with pytest.warns(RuntimeWarning, match=r"loss at step \d+ is inf"):
        result = fwdad.fgd(rosenbrock, (1.0, 1.5), lr=0.01, steps=50, on_nonfinite="warn", progress=False)
    assert result.steps == 50 and result.losses.shape == (50,)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fwdad.fgd(rosenbrock, (1.0, 1.5), lr=0.01, steps=50, on_nonfinite="continue",
                         progress=False).steps == 50


def test_a_raising_callback_keeps_the_steps_done():
    def callback(step, params, losses):
        if step == 30:
            raise ValueError("stop here")
        return step

    with pytest.raises(CallbackError, match="the callback raised ValueError: stop here") as caught:
        fwdad.fgd(rosenbrock, (-1.0, 0.0), lr=1e-3, steps=100, every=10, callback=callback, progress=False)
    result = caught.value.result
    assert isinstance(caught.value.__cause__, ValueError)
    assert result.steps == 30 and result.history == [10, 20] and result.losses.shape == (30,)
    again = fwdad.fgd(rosenbrock, (-1.0, 0.0), lr=1e-3, steps=30, progress=False)
    assert again.params == result.params


def test_chunks_sized_by_time_do_not_change_the_result():
    one = fwdad.fgd(rosenbrock, (-1.0, 0.0), lr=1e-3, steps=500, seed=2, progress=False)
    seen = []
    chunked = fwdad.fgd(rosenbrock, (-1.0, 0.0), lr=1e-3, steps=500, seed=2, every=7, progress=False,
                        callback=lambda step, params, losses: seen.append(step))
    assert one.params == chunked.params
    np.testing.assert_array_equal(one.losses, chunked.losses)
    assert seen == list(range(7, 500, 7)) + [500]


@pytest.mark.slow
def test_ctrl_c_stops_fgd_within_a_second_whatever_every_is():
    """SIGINT from a timer thread while the compiled loop runs (every=None: one chunk before)."""
    x0 = np.zeros(2000)
    fwdad.fgd(long_loss, x0, lr=1e-4, steps=2, progress=False)              # compile outside the timing
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    start = time.perf_counter()
    timer.start()
    try:
        fwdad.fgd(long_loss, x0, lr=1e-4, steps=3_000_000, progress=False)
        error = None
    except KeyboardInterrupt as interrupt:
        error = interrupt
    finally:
        timer.join()
    seconds = time.perf_counter() - start
    assert isinstance(error, FGDInterrupted), error
    assert seconds < 1.5, seconds
    result = error.result
    assert 0 < result.steps < 3_000_000 and result.losses.shape == (result.steps,)
    again = fwdad.fgd(long_loss, x0, lr=1e-4, steps=result.steps, progress=False)
    np.testing.assert_array_equal(again.params, result.params)     # the steps done, exactly
