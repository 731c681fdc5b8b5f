"""API properties (issue 13): every spelling of wrt means the same arguments, and every numeric
option of jvp, forward_gradient, value_and_grad, jacobian, batch_jvp and fgd refuses each bad
value (zero, negative, fractional, NaN, inf, huge, bool, str) with an error naming the option,
and accepts good ones (NumPy integers included).

The functions are compiled once, at module level; hypothesis only varies the options, and the
good values are chosen so that they never change the generated code (no recompiles).
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fwdad
from fwdad.errors import OptionError


def mixed(a, x, b):
    return a * a * np.sum(x * x) + 3.0 * b + a * b * x[0]


def vector(a, x, b):
    return a * x * x + b


def rosenbrock(x, y):
    return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2


NAMES = ("a", "x", "b")
A, X, B = 0.7, np.array([0.5, -1.5, 2.0]), 1.3
F = fwdad.forward_grad(mixed)
V = fwdad.forward_grad(vector)
R = fwdad.forward_grad(rosenbrock)
FEW = settings(max_examples=25, deadline=None)


# ---- wrt ------------------------------------------------------------------------------------------
@st.composite
def wrt_spellings(draw):
    """(the positions meant, one spelling: names, positions or negatives, in any order)."""
    chosen = draw(st.lists(st.integers(0, 2), min_size=1, max_size=3, unique=True))
    spelled = [draw(st.sampled_from([p, p - 3, NAMES[p], np.int64(p)])) for p in chosen]
    spelled = draw(st.permutations(spelled))
    if len(spelled) == 1 and draw(st.booleans()):
        return tuple(sorted(chosen)), spelled[0]                # a bare int or name
    return tuple(sorted(chosen)), draw(st.sampled_from([tuple, list]))(spelled)


@FEW
@given(wrt_spellings())
def test_every_spelling_of_wrt_means_the_same_arguments(case):
    meant, wrt = case
    assert fwdad.forward_grad(mixed, wrt=wrt).wrt == meant


BY_WRT = {}


@pytest.fixture(scope="module")
def full_gradient():
    return F.value_and_grad(A, X, B)[1]


@pytest.mark.slow
@settings(max_examples=10, deadline=None)
@given(wrt_spellings())
def test_the_gradient_with_wrt_is_the_full_gradient_restricted(full_gradient, case):
    meant, wrt = case
    if meant not in BY_WRT:                         # one compile per set of arguments
        BY_WRT[meant] = fwdad.forward_grad(mixed, wrt=wrt)
    _, grads = BY_WRT[meant].value_and_grad(A, X, B)
    for i in range(3):
        if i in meant:
            np.testing.assert_allclose(grads[i], full_gradient[i], rtol=1e-13)
        else:
            assert grads[i] is None


@FEW
@given(st.one_of(st.integers(3, 10 ** 30), st.integers(-10 ** 30, -4), st.booleans(), st.floats(),
                 st.text(max_size=3).filter(lambda s: s not in NAMES), st.just(()), st.just((0, "a"))))
def test_bad_wrt_is_refused_naming_wrt(wrt):
    with pytest.raises(OptionError, match=r"forward_grad\(mixed\): wrt must be"):
        fwdad.forward_grad(mixed, wrt=wrt)


# ---- bad values of each kind of option --------------------------------------------------------------
NOT_NUMBERS = st.one_of(st.booleans(), st.text(max_size=3), st.just([1]), st.just(np.bool_(True)))
NOT_FINITE = st.sampled_from([math.nan, math.inf, -math.inf, np.float64("nan")])
FRACTIONS = st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: v != int(v))
AS_FLOATS = st.integers(-5, 5).map(float)          # 2.0 is not an integer option's value either


def bad_counts(minimum):
    """Bad values of an integer option >= minimum."""
    return st.one_of(st.integers(max_value=minimum - 1), st.integers(min_value=2 ** 63),
                     st.integers(-2 ** 63, minimum - 1).map(np.int64), FRACTIONS, AS_FLOATS, NOT_FINITE,
                     NOT_NUMBERS)


BAD = {
    "count": bad_counts(1),
    "steps": bad_counts(0),
    "seed": st.one_of(st.integers(max_value=-1), st.integers(min_value=2 ** 64), FRACTIONS, AS_FLOATS,
                      NOT_FINITE, NOT_NUMBERS),
    "positive": st.one_of(st.floats(max_value=0.0), NOT_FINITE, NOT_NUMBERS),
    "nonnegative": st.one_of(st.floats(max_value=-1e-300), NOT_FINITE, NOT_NUMBERS),
    "unit": st.one_of(st.floats(max_value=-1e-300), st.floats(min_value=1.0), NOT_FINITE, NOT_NUMBERS),
    "choice": st.one_of(st.text(max_size=5), st.integers(), st.none(), st.booleans()),
}
CHOICES = {"distribution": ("normal", "rademacher"), "optimizer": ("sgd", "momentum", "adam"),
           "on_nonfinite": ("raise", "warn", "continue")}


def call_fgd(**options):
    settings = dict(dict(lr=1e-3, steps=3, progress=False), **options)
    return fwdad.fgd(R, (-1.0, 0.0), **settings)


CALLS = {            # entry point: (call with one option, {option: kind})
    "forward_gradient": (lambda **o: F.forward_gradient(A, X, B, **o),
                         {"seed": "seed", "directions": "count", "distribution": "choice"}),
    "value_and_grad": (lambda **o: F.value_and_grad(A, X, B, **o), {"chunk": "count"}),
    "jacobian": (lambda **o: V.jacobian(A, X, B, **o), {"chunk": "count"}),
    "fgd": (call_fgd, {"lr": "positive", "steps": "steps", "seed": "seed", "directions": "count",
                       "every": "count", "batch_size": "count", "clip": "positive", "eps": "positive",
                       "decay": "nonnegative", "momentum": "unit", "optimizer": "choice",
                       "distribution": "choice", "on_nonfinite": "choice"}),
}
CASES = [(entry, name, kind) for entry, (_, table) in CALLS.items() for name, kind in table.items()]


@pytest.mark.parametrize("entry, name, kind", CASES)
def test_each_bad_value_is_refused_naming_the_option(entry, name, kind):
    call = CALLS[entry][0]

    @settings(max_examples=15, deadline=None)
    @given(BAD[kind])
    def refused(value):
        if kind == "choice" and value in CHOICES.get(name, ()):
            return
        with pytest.raises(OptionError, match=f"{name} must be"):
            call(**{name: value})
    refused()


@pytest.mark.parametrize("entry, name", [("fgd", "lr"), ("fgd", "steps"), ("fgd", "seed"), ("fgd", "directions"),
                                         ("fgd", "decay"), ("fgd", "momentum"), ("fgd", "eps"),
                                         ("forward_gradient", "seed"), ("forward_gradient", "directions")])
def test_none_is_refused_where_an_option_has_no_off_value(entry, name):
    with pytest.raises(OptionError, match=f"{name} must be"):
        CALLS[entry][0](**{name: None})


@FEW
@given(st.tuples(BAD["unit"], st.floats(0.0, 0.99)) | st.tuples(st.floats(0.0, 0.99), BAD["unit"]))
def test_bad_betas_are_refused(betas):
    with pytest.raises(OptionError, match=r"betas\[[01]\] must be"):
        call_fgd(optimizer="adam", betas=betas)


@pytest.mark.parametrize("betas", [0.9, (0.9,), (0.9, 0.99, 0.5), "ab"])
def test_betas_must_be_a_pair(betas):
    with pytest.raises(OptionError, match="betas must be"):
        call_fgd(optimizer="adam", betas=betas)


# ---- good values work ------------------------------------------------------------------------------
INTEGER_TYPES = st.sampled_from([int, np.int64, np.int32, np.uint64, np.uint8])


@FEW
@given(st.integers(0, 2 ** 64 - 1), st.integers(2, 6), INTEGER_TYPES)
def test_good_seeds_and_directions_work(seed, directions, kind):
    value, grads = F.forward_gradient(A, X, B, seed=np.uint64(seed) if kind is np.uint64 else seed,
                                      directions=kind(directions))
    assert value == pytest.approx(mixed(A, X, B)) and grads[1].shape == X.shape
    again = F.forward_gradient(A, X, B, seed=seed, directions=directions)[1]
    np.testing.assert_array_equal(grads[1], again[1])        # NumPy integers mean the same


@FEW
@given(st.integers(1, 40), INTEGER_TYPES)
def test_any_good_chunk_gives_the_same_gradient_and_jacobian(chunk, kind):
    reference = F.value_and_grad(A, X, B)[1]
    grads = F.value_and_grad(A, X, B, chunk=kind(chunk))[1]
    np.testing.assert_allclose(grads[1], reference[1], rtol=1e-14)
    jac = V.jacobian(A, X, B, chunk=kind(chunk))
    np.testing.assert_allclose(jac[1], np.diag(2 * A * X), rtol=1e-14)


@FEW
@given(lr=st.floats(1e-6, 1e-3), decay=st.floats(0.0, 1.0), seed=st.integers(0, 2 ** 64 - 1),
       steps=st.integers(0, 6), every=st.none() | st.integers(1, 7), directions=st.integers(2, 4),
       momentum=st.floats(0.0, 0.99), kind=INTEGER_TYPES)
def test_good_fgd_options_work(lr, decay, seed, steps, every, directions, momentum, kind):
    result = call_fgd(lr=lr, decay=decay, seed=kind(seed) if kind is np.uint64 else seed, steps=kind(steps),
                      every=every, directions=kind(directions), momentum=momentum, optimizer="momentum")
    assert result.steps == steps and result.losses.shape == (steps,) and np.all(np.isfinite(result.losses))


# ---- batch_jvp and jvp -------------------------------------------------------------------------------
S = fwdad.forward_grad(rosenbrock)
XS, YS = np.linspace(-1.0, 1.0, 5), np.linspace(0.0, 2.0, 5)


@FEW
@given(st.one_of(st.sampled_from([1, -1, 0.0, False, True, "0", np.float64(0.0)]), st.integers(1, 5),
                 st.tuples(st.sampled_from([1, 0.0, False, "x"]), st.just(0)), st.just((0,)), st.just((0, 0, 0))))
def test_bad_in_axes_are_refused_naming_in_axes(in_axes):
    with pytest.raises(OptionError, match="batch_jvp: in_axes must be"):
        S.batch_jvp((XS, YS), (np.ones(5), None), in_axes=in_axes)


@pytest.mark.parametrize("in_axes", [None, 0, np.int64(0), (0, 0), [0, np.int32(0)]])
def test_good_in_axes_work(in_axes):
    values, tangents = S.batch_jvp((XS, YS), (np.ones(5), None), in_axes=in_axes)
    np.testing.assert_allclose(values, [rosenbrock(x, y) for x, y in zip(XS, YS)], rtol=1e-14)


@pytest.mark.parametrize("primals, tangents, name", [
    ((1.0, 2.0), None, "tangents"), ((1.0, 2.0), 1.0, "tangents"), (np.ones(2), (1.0, 0.0), "primals"),
    (None, (1.0, 0.0), "primals"), ((1.0, 2.0), np.ones(2), "tangents")])
def test_jvp_and_batch_jvp_refuse_primals_and_tangents_that_are_not_tuples(primals, tangents, name):
    with pytest.raises(OptionError, match=f"rosenbrock.jvp: {name} must be a tuple"):
        S.jvp(primals, tangents)
    with pytest.raises(OptionError, match=f"rosenbrock.batch_jvp: {name} must be a tuple"):
        S.batch_jvp(primals, tangents)
