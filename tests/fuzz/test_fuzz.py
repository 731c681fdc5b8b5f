"""Differential fuzzing (issue 9): random valid programs, each compiled by fwdad and checked.

Oracles, for every program (tests/fuzz/generator.py) at a few random points:
  (a) the compiled primal `f(*args)` and `f.jvp(...)[0]` equal plain CPython (NaN/inf alike),
      and leave the arguments exactly as CPython leaves them (unchanged unless the program
      writes into them); f.jvp leaves the tangents alone unless the program writes into an
      argument (found by running CPython on read-only copies);
  (b) the JVP along a random direction equals central finite differences (a point where the
      differences at h and h/10 disagree is near a kink or a jump, and is skipped);
  (c) with JAX installed, for programs that never write into an array, the value and JVP equal
      `jax.jvp` of the same source run on jax.numpy;
  (d) for a scalar or array output, f.jacobian (vector mode) applied to the direction equals
      the JVP.
Then (a) again at one point with a NaN or an infinity in an argument.
A program that plain `numba.njit` cannot compile either, or where plain Numba and CPython
disagree the same way fwdad does, is outside the common subset and is skipped (not a bug).

Profiles:
  pytest tests/fuzz/test_fuzz.py                 fast: a fixed sequence of 60 smaller programs and one of 12
                                            of the "user" flavor (issue 13's forms) (~3 min on 2 cores);
                                            --fuzz-shrink minimizes a failure (minutes)
  pytest tests/fuzz/test_fuzz.py -m fuzz_long --fuzz-examples=N [--fuzz-seed=S] [--fuzz-jobs=J]
                                            [--fuzz-size=full|fast] [--fuzz-report=FILE]
                                            [--fuzz-flavor=user]  (the forms of issue 13, often)
      long: full-size (or fast-size) programs in chunks of 200, each chunk in a fresh process
      (Numba never frees compiled code); failures are collected and reported, not minimized. --fuzz-shrink instead
      runs in this process and stops at the first failure to minimize it.
"""
import ast
import concurrent.futures
import copy
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, event, given, note, reject, seed, settings, strategies as st

import fwdad
from fuzz.generator import ARRAY, FLOAT, MATRIX, N, jax_source, programs
from helpers import PROGRAMS, TESTS, central_difference

try:
    import jax
    jax.config.update("jax_enable_x64", True)
except ImportError:          # the JAX oracle is optional
    jax = None

FAST_EXAMPLES = 60
USER_FORMS_EXAMPLES = 12      # the "user" flavor (issue 13's forms), about twice as slow per program
SMOKE_EXAMPLES, SMOKE_USER_FORMS = 6, 2       # the default profile's share (about 40 s of 150 s)
FAST_SIZE = dict(max_functions=2, max_statements=3, max_depth=1, expression_depth=2)   # compile faster
# Constructs left out of generated programs while the fwdad bug they trigger is open; each is
# pinned by a strict xfail in tests/fuzz/test_fuzz_regressions.py. Remove an entry once fixed.
AVOID = frozenset()           # constructs left out while a bug they trigger is open (none now)
# fwdad's documented refusals (docs/subset.md, docs/errors.md): a program that meets one, with
# the error at the program's own line and a "What to do", is skipped, not failed
LIMITATIONS = ("inside a condition or comparison",       # a call writing into its argument
               "is wrapped by a decorator",               # functools.wraps: refused, never dropped
               "a Python list holding values that carry a tangent",   # use a tuple or an array
               "fwdad's derivative rules take scalars and arrays, not the tuple")    # max(t), sum(t)
PRIMAL_TOLERANCE = dict(rtol=1e-9, atol=1e-11)
JAX_TOLERANCE = dict(rtol=1e-9, atol=1e-11)
STEPS = (1e-4, 1e-5)          # the central differences' two step sizes
LARGE = 1e8                   # values beyond this are not finite-differenced
MODULE_DIR = tempfile.mkdtemp(prefix="fwdad-fuzz-")


class FuzzFailure(AssertionError):
    """An oracle disagrees with fwdad: the message holds the program and the inputs."""


class NotComparable(Exception):
    """This point cannot be judged: CPython overflows, or Numba itself differs from CPython."""


class Unusable(Exception):
    """This program cannot be judged: plain Numba cannot compile it either."""


# ---- loading the generated source -----------------------------------------------------------------
def load_module(source, prefix="fwdad_fuzz"):
    """Import `source` from a real file (fwdad reads functions' source), once per distinct text."""
    name = f"{prefix}_{hashlib.sha256(source.encode()).hexdigest()[:16]}"
    if name not in sys.modules:
        path = os.path.join(MODULE_DIR, name + ".py")
        with open(path, "w") as out:
            out.write(source)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


class TwoArgumentLog(ast.NodeTransformer):
    """math.log(x, b) -> math.log(x) / math.log(b): Numba has only the one-argument form."""

    def visit_Call(self, node):
        self.generic_visit(node)
        if ast.unparse(node.func) == "math.log" and len(node.args) == 2:
            return ast.BinOp(*(ast.Call(node.func, [a], []) for a in node.args[:1]), ast.Div(),
                             ast.Call(node.func, [node.args[1]], []))
        return node


NJIT = ast.parse("numba.njit(error_model='numpy')", mode="eval").body


class EveryFunctionJitted(ast.NodeTransformer):
    """Every module-level function compiled by numba.njit (its own @numba.njit included); a
    decorator factory stays Python, and the wrapper it makes is jitted, without functools.wraps
    (with it, Numba reads the wrapped function's signature and cannot compile `*args`)."""

    def visit_Module(self, node):
        for function in node.body:
            if isinstance(function, ast.FunctionDef):
                self.jit(function)
        return node

    def jit(self, function):
        wrappers = [n for n in function.body if isinstance(n, ast.FunctionDef)]
        for wrapper in wrappers:
            wrapper.decorator_list = [NJIT]
        if not wrappers:
            kept = [d for d in function.decorator_list if ast.unparse(d) != "numba.njit"]
            function.decorator_list = kept + [NJIT]


def plain_numba(source, entry):
    """The entry function with every function of `source` compiled by plain numba.njit."""
    namespace = {"__name__": "fwdad_fuzz_plain", "numba": numba}
    tree = EveryFunctionJitted().visit(TwoArgumentLog().visit(ast.parse(source)))
    exec(compile(ast.fix_missing_locations(tree), "<fuzz plain numba>", "exec"), namespace)
    return namespace[entry]


# ---- values -----------------------------------------------------------------------------------------
def draw_arguments(kinds, rng):
    out = []
    for kind in kinds:
        if kind == FLOAT:
            out.append(float(rng.uniform(-2.0, 2.0)))
        elif kind == ARRAY:
            out.append(rng.uniform(-2.0, 2.0, N))
        elif kind == MATRIX:
            out.append(rng.uniform(-2.0, 2.0, (N, N)))
        else:
            out.append(int(rng.integers(0, 6)))
    return out


def with_special_value(args, rng):
    """`args` with one float, or one element of an array, replaced by NaN, inf or -inf."""
    floats = [i for i, a in enumerate(args) if not isinstance(a, int)]
    if floats:
        i = floats[rng.integers(len(floats))]
        value = (np.nan, np.inf, -np.inf)[rng.integers(3)]
        if isinstance(args[i], np.ndarray):
            args[i].flat[rng.integers(args[i].size)] = value
        else:
            args[i] = float(value)
    return args


def draw_tangents(args, rng):
    return [None if isinstance(a, int) else
            (rng.normal(size=np.shape(a)) if isinstance(a, np.ndarray) else float(rng.normal()))
            for a in args]


def leaves(tree):
    if isinstance(tree, tuple):
        return [leaf for item in tree for leaf in leaves(item)]
    return [tree]


def is_float_leaf(value):
    return isinstance(value, (float, np.floating)) or (isinstance(value, np.ndarray) and value.dtype.kind == "f")


def same_structure(a, b):
    if isinstance(a, tuple) or isinstance(b, tuple):
        return (isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b)
                and all(same_structure(x, y) for x, y in zip(a, b)))
    return np.shape(a) == np.shape(b)


def differences(actual, expected, rtol, atol):
    """Descriptions of the leaves of `actual` that differ from `expected` (NaN equals NaN)."""
    if not same_structure(actual, expected):
        return [f"structure: got {describe(actual)}, expected {describe(expected)}"]
    out = []
    for k, (a, e) in enumerate(zip(leaves(actual), leaves(expected))):
        if e is None or a is None:
            continue
        a64, e64 = np.asarray(a, np.float64), np.asarray(e, np.float64)
        if not np.allclose(a64, e64, rtol=rtol, atol=atol, equal_nan=True):
            out.append(f"leaf {k}: got {a64!r}, expected {e64!r}")
    return out


def describe(tree):
    if isinstance(tree, tuple):
        return "(" + ", ".join(describe(t) for t in tree) + ")"
    return f"{type(tree).__name__}{list(np.shape(tree)) if np.ndim(tree) else ''}"


def largest(tree):
    values = [np.max(np.abs(np.asarray(v, np.float64))) for v in leaves(tree)
              if v is not None and np.size(v) and is_float_leaf(v)]
    return max(values, default=0.0)


def finite(tree):
    return all(np.all(np.isfinite(np.asarray(v, np.float64))) for v in leaves(tree) if v is not None)


# ---- the oracles ------------------------------------------------------------------------------------
@dataclass
class Stats:
    """What one program's check did (summed over a run for the report)."""
    programs: int = 0
    points: int = 0
    fd_checked: int = 0
    special: int = 0
    vector_checked: int = 0
    kinks: int = 0
    jax_checked: int = 0
    skipped: dict = field(default_factory=dict)
    user_forms: int = 0           # programs checked that hold one of the forms of issue 13
    forms: dict = field(default_factory=dict)     # "form:<name>" -> programs checked that hold it

    def skip(self, why):
        self.skipped[why] = self.skipped.get(why, 0) + 1

    def add(self, other):
        for name in ("programs", "points", "fd_checked", "vector_checked", "special", "kinks", "jax_checked",
                     "user_forms"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for why, count in other.skipped.items():
            self.skipped[why] = self.skipped.get(why, 0) + count
        for form, count in other.forms.items():
            self.forms[form] = self.forms.get(form, 0) + count


class Checker:
    """Runs the oracles on one program: source text, entry function, its parameters' kinds.

    `jax_comparable`: the program never writes into an array, so JAX can run it too.
    """

    def __init__(self, source, entry, kinds, jax_comparable=False):
        self.source, self.entry, self.kinds = source, entry, list(kinds)
        self.jax_comparable = jax_comparable and jax is not None
        self.jax_function = None
        self.module = load_module(source)
        self.py = getattr(self.module, entry)
        self.stats = Stats(programs=1)
        self.ff = self.compiled("@fwdad.forward_grad", lambda: fwdad.forward_grad(self.py))

    def fail(self, what, args=None, tangents=None, details=()):
        text = [f"fuzz oracle failed: {what}", "--- program ---", self.source.rstrip(),
                f"--- entry: {self.entry}{tuple(self.kinds)}"]
        if args is not None:
            text.append(f"--- args: {fmt(args)}")
        if tangents is not None:
            text.append(f"--- tangents: {fmt(tangents)}")
        text += list(details)
        raise FuzzFailure("\n".join(text))

    def run_python(self, args, special=False):
        """CPython's result and the arguments after the call; NotComparable if CPython overflows,
        or raises ValueError with NaN and infinite arguments (math.floor(nan)) or after an
        overflow to inf (math.sin(inf): 'math domain error')."""
        args = copy.deepcopy(args)
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = self.py(*args)
        except numba.core.errors.NumbaError:
            raise Unusable("an @numba.njit function of the program does not compile") from None
        except (OverflowError, ZeroDivisionError, ValueError) as error:
            if isinstance(error, ValueError) and not (special or "math domain error" in str(error)):
                self.fail("generator bug: CPython cannot run the program", args,
                          details=[traceback.format_exc(limit=-3)])
            raise NotComparable(f"CPython raises {type(error).__name__}") from None
        except Exception:                   # noqa: BLE001 - the generator made an invalid program
            self.fail("generator bug: CPython cannot run the program", args,
                      details=[traceback.format_exc(limit=-3)])
        return value, args

    def writes_arguments(self, args):
        """Does the program write into an argument at this point (even the value it had)?"""
        frozen = copy.deepcopy(args)
        for a in frozen:
            if isinstance(a, np.ndarray):
                a.setflags(write=False)
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.py(*frozen)
        except ValueError as error:
            return "read-only" in str(error)
        except numba.core.errors.NumbaError as error:      # an @numba.njit function writes into it
            return "readonly" in str(error)
        except Exception:                   # noqa: BLE001 - run_python judged the call already,
            return True                     # so only the read-only arguments can make it raise
        return False                        # (Numba crashes on `np.swapaxes(A, 0, 1)[i] *= a` of a read-only A)

    def compiled(self, what, call, args=None):
        """Run fwdad; a program Numba itself cannot compile, or one that fwdad refuses with a
        documented error (LIMITATIONS) at the program's line, is skipped, and so is a point
        `args` where plain Numba raises the same error (its svd on a NaN); any other error fails."""
        try:
            return call()
        except (fwdad.DifferentiationError, fwdad.UnsupportedSyntaxError) as error:
            known = [why for why in LIMITATIONS if why in str(error)]
            if not (known and self.at_program_line(error)):
                self.fail(f"{what} raised {type(error).__name__} on a valid program",
                          details=[traceback.format_exc(limit=-6)])
            raise Unusable(f"fwdad refuses it: {known[0]}") from None
        except Exception as error:          # noqa: BLE001 - every error is judged below
            if self.numba_cannot_compile():
                raise Unusable("plain Numba cannot compile it") from None
            if args is not None and self.numba_raises(type(error), args):
                raise NotComparable(f"plain Numba raises {type(error).__name__} too") from None
            self.fail(f"{what} raised {type(error).__name__} on a program plain Numba compiles",
                      details=[traceback.format_exc(limit=-6)])

    def at_program_line(self, error):
        """Does the message start at a line of this program and say what to do?"""
        return str(error).startswith(self.module.__file__ + ":") and "What to do:" in str(error)

    def numba_cannot_compile(self):
        try:
            plain_numba(self.source, self.entry)(*draw_arguments(self.kinds, np.random.default_rng(0)))
        except Exception:                   # noqa: BLE001
            return True
        return False

    def numba_raises(self, error_type, args):
        try:
            plain_numba(self.source, self.entry)(*copy.deepcopy(args))
        except error_type:
            return True
        except Exception:                   # noqa: BLE001
            return False
        return False

    def numba_agrees_with(self, value, args):
        """Does plain Numba give `value` too (then the difference from CPython is Numba's)?"""
        try:
            plain = plain_numba(self.source, self.entry)(*copy.deepcopy(args))
        except Exception:                   # noqa: BLE001
            return False
        return not differences(value, plain, **PRIMAL_TOLERANCE)

    def check(self, seed_value, points=3, args=None, special=True):
        """The oracles at `points` random points (or at `args`), then the primal oracle at one
        point with a NaN or an infinity in an argument; returns Stats."""
        rng = np.random.default_rng(seed_value)
        for _ in range(points if args is None else 1):
            point = draw_arguments(self.kinds, rng) if args is None else list(args)
            tangents = draw_tangents(point, rng)
            try:
                self.check_point(point, tangents)
            except NotComparable as why:
                self.stats.skip(str(why))
        if special and args is None:
            point = with_special_value(draw_arguments(self.kinds, rng), rng)
            try:
                self.check_point(point, draw_tangents(point, rng), special=True)
            except NotComparable as why:
                self.stats.skip(f"special point: {why}")
        return self.stats

    def check_point(self, args, tangents, special=False):
        expected, args_after = self.run_python(args, special)
        self.stats.points += 1
        tangent = self.check_primal(args, tangents, expected, args_after)
        if special:
            self.stats.special += 1
            return
        if not finite(expected) or largest(expected) > LARGE:
            raise NotComparable("result too large or not finite for differences")
        self.check_differences(args, tangents, tangent)
        self.check_vector_mode(args, tangents, tangent)
        if self.jax_comparable:
            self.check_jax(args, tangents, tangent)

    def check_primal(self, args, tangents, expected, args_after):
        """Oracle (a): values and argument side effects of f(...) and f.jvp(...) equal CPython's.

        Returns the JVP's tangent.
        """
        primal_args = copy.deepcopy(args)
        value = self.compiled("the compiled primal", lambda: self.ff(*primal_args), args)
        jvp_args, jvp_tangents = copy.deepcopy(args), copy.deepcopy(tangents)
        jvp_value, tangent = self.compiled("f.jvp", lambda: self.ff.jvp(jvp_args, jvp_tangents), args)
        for what, got, after in (("f(*args)", value, primal_args), ("f.jvp(...)[0]", jvp_value, jvp_args)):
            diff = differences(got, expected, **PRIMAL_TOLERANCE)
            if diff:
                if self.numba_agrees_with(got, args):
                    raise NotComparable("plain Numba differs from CPython too")
                self.fail(f"{what} differs from CPython", args, tangents, diff)
            diff = differences(tuple(after), tuple(args_after), **PRIMAL_TOLERANCE)
            if diff:
                self.fail(f"{what} leaves its arguments different from CPython's", args, tangents,
                          ["--- arguments after the call:"] + diff)
        if differences(tuple(jvp_tangents), tuple(tangents), rtol=0.0, atol=0.0) and \
                not self.writes_arguments(args):
            self.fail("f.jvp modified a tangent although the program writes into no argument",
                      args, tangents)
        return tangent

    def check_differences(self, args, tangents, tangent):
        """Oracle (b): the JVP equals central differences, unless the point is near a kink."""
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                coarse, fine = (central_difference(self.py, args, tangents, h) for h in STEPS)
        except (OverflowError, ZeroDivisionError, ValueError):
            raise NotComparable("CPython raises near the point") from None
        if not same_structure(tangent, fine):
            self.fail("the JVP's structure differs from the output's", args, tangents,
                      [f"tangent {describe(tangent)}, output {describe(fine)}"])
        problems = []
        for k, (t, c, f) in enumerate(zip(leaves(tangent), leaves(coarse), leaves(fine))):
            if f is None:
                continue
            t, c, f = (np.asarray(v, np.float64) for v in (t, c, f))
            if not (np.all(np.isfinite(c)) and np.all(np.isfinite(f))):
                raise NotComparable("differences not finite")
            scale = max(1.0, np.max(np.abs(f), initial=0.0), np.max(np.abs(c), initial=0.0))
            noise = np.max(np.abs(c - f), initial=0.0)
            if noise > 1e-6 * scale:
                self.stats.kinks += 1
                raise NotComparable("near a kink")
            error = np.max(np.abs(t - f), initial=0.0)
            if not error <= 1e-6 * scale + 10 * noise:
                problems.append(f"leaf {k}: JVP {t!r}, central difference {f!r} (h={STEPS[1]}), "
                                f"{c!r} (h={STEPS[0]})")
        if problems:
            self.fail("the JVP differs from central differences", args, tangents, problems)
        self.stats.fd_checked += 1

    def check_vector_mode(self, args, tangents, tangent):
        """Oracle (d): the Jacobian from vector mode (every direction in one pass), applied to
        the direction, equals the JVP. Tuple outputs have no Jacobian and are left out."""
        if isinstance(tangent, tuple):
            return
        jacobian = self.compiled("f.jacobian", lambda: self.ff.jacobian(*copy.deepcopy(args)))
        product = sum((np.tensordot(j, t, axes=np.ndim(t)) for j, t in zip(jacobian, tangents)
                       if j is not None and t is not None), np.zeros(np.shape(tangent)))
        diff = differences(np.asarray(product, np.float64), np.asarray(tangent, np.float64), **PRIMAL_TOLERANCE)
        if diff:
            self.fail("the Jacobian (vector mode) times the direction differs from the JVP", args, tangents, diff)
        self.stats.vector_checked += 1

    def check_jax(self, args, tangents, tangent):
        """Oracle (c): the JVP equals jax.jvp of the same source run on jax.numpy."""
        if self.jax_function is None:
            namespace = {}
            exec(compile(jax_source(self.source), "<fuzz jax>", "exec"), namespace)
            self.jax_function = namespace[self.entry]
        active = [i for i, a in enumerate(args) if not isinstance(a, int)]

        def partial(*floats):
            full = list(args)
            for i, value in zip(active, floats):
                full[i] = value
            return self.jax_function(*full)

        try:
            _, jax_tangent = jax.jvp(partial, tuple(args[i] for i in active), tuple(tangents[i] for i in active))
        except Exception as error:          # noqa: BLE001 - JAX rejecting a program is not fwdad's bug
            self.stats.skip(f"jax.jvp raises {type(error).__name__}")
            return
        jax_leaves = [None if t is None else np.asarray(j)
                      for t, j in zip(leaves(tangent), jax.tree_util.tree_leaves(jax_tangent))]
        diff = differences(tangent, rebuild(tangent, jax_leaves), **JAX_TOLERANCE)
        if diff:
            self.fail("the JVP differs from jax.jvp", args, tangents, diff)
        self.stats.jax_checked += 1


def rebuild(tree, flat):
    """`flat` (a list of leaves) in the tuple structure of `tree`."""
    flat = list(flat)

    def build(node):
        if isinstance(node, tuple):
            return tuple(build(n) for n in node)
        return flat.pop(0)
    return build(tree)


def fmt(values):
    return "(" + ", ".join(np.array2string(v, precision=17, separator=", ") if isinstance(v, np.ndarray)
                           else repr(v) for v in values) + ")"


def check_program(program, seed_value):
    """Every oracle on a generated Program at a few random points; returns Stats."""
    kinds = [k for _, k in program.entry.params]
    stats = Checker(program.source, program.entry.name, kinds, program.jax_compatible).check(seed_value)
    stats.forms = {f: 1 for f in program.features if f.startswith("form:")}
    stats.user_forms = int(bool(stats.forms))
    return stats


def check_source(source, entry, kinds, seed_value=0, args=None, jax_comparable=False, points=3):
    """Every oracle on hand-written source (the regression tests); raises FuzzFailure."""
    return Checker(source, entry, kinds, jax_comparable).check(seed_value, points, args)


# ---- the profiles ------------------------------------------------------------------------------------
def fuzz(examples, run_seed=None, shrink=False, collect=False, program_options=None):
    """Check `examples` generated programs; returns (Stats, failure messages).

    run_seed None: hypothesis's derandomized sequence (the same on every machine). shrink: on a
    failure, minimize it (each step compiles a program, so this can take minutes). collect:
    record failures and go on instead of stopping at the first.
    """
    total, failures = Stats(), []
    options = dict(avoid=AVOID, **(program_options or {}))
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])

    @settings(max_examples=examples, deadline=None, database=None, derandomize=run_seed is None,
              phases=phases, suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(program=programs(**options), seed_value=st.integers(0, 2 ** 32 - 1))
    def run(program, seed_value):
        note(program.source)
        try:
            stats = check_program(program, seed_value)
        except Unusable as why:
            event(f"skipped program: {why}")
            total.skip(f"program: {why}")
            reject()
        except FuzzFailure as failure:
            total.programs += 1
            if not collect:
                raise
            failures.append(str(failure))
            return
        total.add(stats)

    if run_seed is not None:
        run = seed(run_seed)(run)
    run()
    return total, failures


def summary(total, failures, elapsed, label):
    lines = [f"{label}: {total.programs} programs, {total.points} points, {total.fd_checked} checked "
             f"against central differences, {total.vector_checked} against vector mode, {total.jax_checked} "
             f"against jax.jvp, {total.special} with "
             f"NaN/inf arguments against CPython, {total.kinks} points near kinks skipped, "
             f"{len(failures)} failures, {elapsed:.0f} s"]
    if total.forms:
        lines.append(f"  {total.user_forms} of the programs checked hold forms of issue 13: " +
                     ", ".join(f"{form[5:]} {count}" for form, count in sorted(total.forms.items())))
    lines += [f"  skipped {count:6d}  {why}" for why, count in sorted(total.skipped.items(), key=lambda kv: -kv[1])]
    kinds = {}
    for failure in failures:
        first = failure.split("\n")[0].split("] ")[-1]
        kinds[first] = kinds.get(first, 0) + 1
    lines += [f"  failed  {count:6d}  {kind}" for kind, count in sorted(kinds.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines)


DECORATED = """
import functools
import numba
import numpy as np


def doubled(fn):
    @functools.wraps(fn)
    def wrapper(*args):
        return 2.0 * fn(*args)
    return wrapper


@numba.njit
def g(a):
    return a * a


@doubled
def h(x, a):
    return np.sum(x) * a


def f(x, a):
    return h(x, g(a))
"""


PLAIN = """
import numpy as np


def f(x, a):
    return np.sum(x) * a
"""


@pytest.mark.parametrize("source, expected", [(PLAIN, 30.0), (DECORATED, 180.0)], ids=["plain", "decorated"])
def test_plain_numba_compiles_what_cpython_runs(source, expected):
    """The "plain Numba cannot compile it" oracle must compile what CPython runs, with or without
    decorators and `import numba`; else it would excuse every error of fwdad."""
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert plain_numba(source, "f")(x, 3.0) == load_module(source).f(x, 3.0) == expected


@pytest.mark.parametrize("examples", [pytest.param(SMOKE_EXAMPLES, id="smoke"),
                                      pytest.param(FAST_EXAMPLES, id="fast", marks=pytest.mark.slow)])
def test_fuzz_fast(request, examples):
    """A fixed sequence of smaller programs (the full sequence, about two minutes on 2 cores, is
    in the slow profile; its first programs in the default one); --fuzz-shrink minimizes a failure."""
    start = time.time()
    total, _ = fuzz(examples, shrink=request.config.getoption("--fuzz-shrink"),
                    program_options=FAST_SIZE)
    print("\n" + summary(total, [], time.time() - start, "fuzz fast"))
    assert total.fd_checked > examples // 2        # the oracles did run


@pytest.mark.parametrize("examples", [pytest.param(SMOKE_USER_FORMS, id="smoke"),
                                      pytest.param(USER_FORMS_EXAMPLES, id="fast", marks=pytest.mark.slow)])
def test_fuzz_fast_user_forms(request, examples):
    """A fixed sequence of smaller programs of the "user" flavor: lists and tuples, matrices and
    writes through views, builtins on arrays, norms with ord, arange/linspace/np.array of active
    scalars, decorated helpers (issue 13). The full sequence is in the slow profile."""
    start = time.time()
    total, _ = fuzz(examples, shrink=request.config.getoption("--fuzz-shrink"),
                    program_options=dict(FAST_SIZE, flavor="user"))
    print("\n" + summary(total, [], time.time() - start, "fuzz fast, user forms"))
    assert total.user_forms >= examples // 2      # the new forms were drawn and checked


# Numba never frees compiled code (a few MB per program), so the long profile runs its programs
# in chunks, each in a fresh Python process.
CHUNK = 200
CHILD = """
import dataclasses, json, sys, warnings
sys.path[:0] = {paths!r}
warnings.simplefilter("ignore")
import test_fuzz
total, failures = test_fuzz.fuzz({examples}, run_seed={seed}, collect=True, program_options={options!r})
with open({out!r}, "w") as out:
    json.dump(dict(stats=dataclasses.asdict(total), failures=failures), out)
"""


def fuzz_chunk(examples, chunk_seed, directory, options=None):
    """Run `examples` programs in a child process; (Stats, failures, chunk_seed)."""
    out = os.path.join(directory, f"chunk-{chunk_seed}.json")
    code = CHILD.format(paths=[os.path.dirname(os.path.abspath(__file__)), TESTS, PROGRAMS], examples=examples,
                        seed=chunk_seed, out=out, options=options)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0 or not os.path.exists(out):
        return Stats(), [f"fuzz chunk {chunk_seed} crashed (exit {done.returncode}):\n"
                         f"{done.stderr[-4000:]}"], chunk_seed
    with open(out) as result:
        data = json.load(result)
    return Stats(**data["stats"]), data["failures"], chunk_seed


def fuzz_in_chunks(examples, run_seed, jobs=1, options=None, progress=None):
    """`examples` programs in chunks of CHUNK, `jobs` child processes at a time; progress(total,
    failures) after each chunk (a long run stopped early keeps what it found)."""
    sizes = [min(CHUNK, examples - start) for start in range(0, examples, CHUNK)]
    seeds = [run_seed * 100_000 + k for k in range(len(sizes))]
    total, failures = Stats(), []
    with tempfile.TemporaryDirectory(prefix="fwdad-fuzz-chunks-") as directory, \
            concurrent.futures.ThreadPoolExecutor(max(1, jobs)) as pool:
        chunks = [pool.submit(fuzz_chunk, size, chunk_seed, directory, options)
                  for size, chunk_seed in zip(sizes, seeds)]
        for chunk in concurrent.futures.as_completed(chunks):
            stats, found, chunk_seed = chunk.result()
            total.add(stats)
            failures += [f"[chunk seed {chunk_seed}] {text}" for text in found]
            if progress:
                progress(total, failures)
    return total, failures


@pytest.mark.fuzz_long
def test_fuzz_long(request):
    """pytest -m fuzz_long --fuzz-examples=N [--fuzz-seed=S] [--fuzz-jobs=J] [--fuzz-size=fast|full]
    [--fuzz-flavor=user|mixed|loops|vector]
    [--fuzz-report=FILE].

    Failures are collected, not minimized; the report is rewritten after every chunk. To minimize
    the first failure of a chunk, rerun that chunk in this process: --fuzz-shrink --fuzz-seed=<chunk
    seed> --fuzz-examples=200.
    """
    option = request.config.getoption
    start = time.time()
    options = dict(FAST_SIZE if option("--fuzz-size") == "fast" else {})
    if option("--fuzz-flavor"):
        options["flavor"] = option("--fuzz-flavor")
    label = (f"fuzz long (seed {option('--fuzz-seed')}, {option('--fuzz-size')}-size programs, "
             f"flavor {option('--fuzz-flavor') or 'drawn'})")

    def report(total, failures):
        text = summary(total, failures, time.time() - start, label)
        if option("--fuzz-report"):
            with open(option("--fuzz-report"), "w") as out:
                out.write(text + "\n" + "".join(f"\n===== failure {k}\n{f}\n" for k, f in enumerate(failures)))
        return text

    if option("--fuzz-shrink"):
        total, failures = fuzz(option("--fuzz-examples"), run_seed=option("--fuzz-seed"), shrink=True,
                               program_options=options)
    else:
        total, failures = fuzz_in_chunks(option("--fuzz-examples"), option("--fuzz-seed"), option("--fuzz-jobs"),
                                         options, progress=report)
    print("\n" + report(total, failures))
    assert not failures, f"{len(failures)} fuzz failures; the first:\n{failures[0]}"
