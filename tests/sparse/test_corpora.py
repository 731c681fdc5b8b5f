"""The detected pattern holds every nonzero of the dense Jacobian, at several random points, for
every program of the scalar and array corpora and for the fuzzer's programs (never a miss)."""
import os
import tempfile
import importlib.util
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fwdad
import corpus_arrays
import corpus_scalar
from fuzz.generator import ARRAY, FLOAT, INT, MATRIX, N, programs

CASES = corpus_scalar.CASES + corpus_arrays.CASES
FAST = {"if_elif_else", "masks_and_integer_indices"}     # the rest: -m slow (a minute or more each
                                                        # for a few, on a shared 2-core machine)


def is_float(value):
    return isinstance(value, (float, np.floating)) or (isinstance(value, np.ndarray) and value.dtype.kind == "f")


def moved(args, rng):
    """The same arguments with new float values (integer arguments, which a pattern may depend
    on, kept)."""
    out = []
    for a in args:
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            out.append((a + rng.normal(size=a.shape) * 0.3).astype(a.dtype))
        elif isinstance(a, (float, np.floating)):
            out.append(type(a)(a + rng.normal() * 0.3))
        else:
            out.append(a)
    return out


def dense_nonzeros(f, args):
    value = f(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    rows = int(np.size(value))
    parts = f.jacobian(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    return np.hstack([np.reshape(p, (rows, -1)) for p in parts if p is not None]) != 0


def pattern_or_refusal(f, args, local=False, find="sparsity"):
    """f.sparsity(*args) (or the method `find`: hessian_sparsity), None where it refuses."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return getattr(f, find)(*[a.copy() if isinstance(a, np.ndarray) else a for a in args], local=local)
        except fwdad.FwdadError:
            return None               # a refusal (a tuple output, a jump out of an active branch...)


def check_program(f, args, points=3, seed=0, find="sparsity", nonzeros=None):
    """'refused', 'unchecked' (no dense Jacobian to compare with), or 'checked'; fails on a miss.
    `find` and `nonzeros` (f, args -> boolean matrix) check another pattern (the Hessian's)."""
    nonzeros = nonzeros or dense_nonzeros
    pattern = pattern_or_refusal(f, args, find=find)
    if pattern is None:
        return "refused"
    rng, checked = np.random.default_rng(seed), False
    for index in range(points):
        point = args if index == 0 else moved(args, rng)
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                nonzero = nonzeros(f, point)
        except (fwdad.FwdadError, ZeroDivisionError, ValueError, OverflowError):
            continue
        missed = nonzero & ~pattern.toarray()
        assert not missed.any(), f"pattern misses {np.argwhere(missed)[:5].tolist()} at {point}"
        if index == 0:
            local = pattern_or_refusal(f, point, local=True, find=find)
            assert local is not None and not (nonzero & ~local.toarray()).any()
        checked = True
    return "checked" if checked else "unchecked"


def corpus_case(function, make_args):
    return check_program(fwdad.forward_grad(function), make_args(np.random.default_rng(20261130)))


@pytest.mark.parametrize("function, make_args", [c for c in CASES if c[0].__name__ in FAST],
                         ids=[f.__name__ for f, _ in CASES if f.__name__ in FAST])
def test_corpus_fast(function, make_args):
    assert corpus_case(function, make_args) == "checked"


@pytest.mark.slow
@pytest.mark.parametrize("function, make_args", CASES, ids=[f.__name__ for f, _ in CASES])
def test_corpus_all(function, make_args):
    corpus_case(function, make_args)


# ---- the fuzzer's programs ---------------------------------------------------------------------------
def load(source):
    handle, path = tempfile.mkstemp(suffix=".py", prefix="fwdad_sparse_fuzz_")
    with os.fdopen(handle, "w") as out:
        out.write(source)
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        os.unlink(path)
        raise
    return module


def arguments(params, rng):
    make = {FLOAT: lambda: float(rng.normal()), ARRAY: lambda: rng.normal(size=N),
            MATRIX: lambda: rng.normal(size=(N, N)), INT: lambda: int(rng.integers(1, 4))}
    return [make[kind]() for _, kind in params]


def fuzz_outcome(program, check, wanted=lambda value: True):
    """check(forward_grad(entry), args) for a drawn program, or None where the program does not
    fit: other argument kinds or several returns, CPython cannot run it, or `wanted` rejects the
    value it returns (the Hessian tests keep scalar outputs)."""
    if any(kind not in (FLOAT, ARRAY, INT, MATRIX) for _, kind in program.entry.params) or \
            len(program.entry.returns) != 1:
        return None
    module = None
    try:
        module = load(program.source)
        function = getattr(module, program.entry.name)
        args = arguments(program.entry.params, np.random.default_rng(0))
        try:
            with np.errstate(all="ignore"):
                value = function(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
        except Exception:             # noqa: BLE001 - CPython cannot run it at this point
            return None
        return check(fwdad.forward_grad(function), args) if wanted(value) else None
    except SyntaxError:
        return None
    finally:
        if module is not None:
            os.unlink(module.__file__)


OUTCOMES = {}


@pytest.mark.slow
@settings(max_examples=60, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(program=programs(max_functions=2, max_statements=4, max_depth=2, expression_depth=2))
def test_fuzz_programs(program):
    outcome = fuzz_outcome(program, check_program)
    if outcome is not None:
        OUTCOMES[outcome] = OUTCOMES.get(outcome, 0) + 1


def test_fuzz_outcomes_reported():
    """Runs after test_fuzz_programs (file order): most drawn programs get a pattern (printed)."""
    if OUTCOMES:
        print(f"\nsparsity over fuzz programs: {OUTCOMES}")
        assert OUTCOMES.get("checked", 0) >= sum(OUTCOMES.values()) // 3
