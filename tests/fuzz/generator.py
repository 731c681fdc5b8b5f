"""Random valid programs in fwdad's subset, as Python source text: a hypothesis strategy.

A program is a module of 1-3 functions; a later function may call the earlier ones and the
last one is the entry point. Parameters are float scalars, float64 arrays of length N and
ints; results are a float, an array of length N or a tuple. Bodies mix expressions (with
math and NumPy calls), if/elif/else, for and while loops with break/continue, element reads
and writes, early returns and tuple unpacking, drawn from the small weighted grammar below.

Every program is valid by construction, so CPython runs it without an exception:
- operations stay in their domains: log and sqrt of `e * e + 1.0` or `abs(e) + 0.5`,
  division by `e * e + 1.0`, float exponents only on positive bases, exp of a bounded value;
- indices stay in bounds: constants in [-N, N), loop variables known to lie in [0, N) and
  `(int expression) % N` otherwise;
- loops terminate (while loops count, and check their counter first) and values carried
  around a loop are updated through bounded or contracting forms, so results stay finite;
- a variable is visible only in the block that defines it (and the blocks nested in it), and
  keeps one kind (float, int or array) for its whole life, as Numba's typing wants.

The forms that users write and an earlier grammar never drew (issue 13) are in the grammar
too, each recorded in Program.features as "form:<name>": Python lists and tuples of active
floats (`t = [a, b * 2.0, 1.0]`, read, written and unpacked), N x N matrices with writes through
views (`A.T[i, j] = e`, `np.transpose(A)`, `np.swapaxes(A, 0, 1)`, `x.reshape(2, 2)`, stepped
slices `x[::2][k]`, rows and columns kept in a variable, views returned by a helper or passed
to one that writes into them), builtins on arrays (`max(x)`, `min(x)`, `sum(x)`, `abs(x)`,
`len(x)`), norms with an `ord`, `np.arange`/`np.linspace` with active bounds, `np.array` of
active scalars, and helpers decorated with `@numba.njit` or a `functools.wraps` decorator.
The "user" flavor draws them; the other flavors never do, so their programs are the same
as before these forms were added.

The user flavor also draws the stencil time loops of issue 14 ("form:time_loop", "form:stencil",
"form:stencil_2d", and the steps of STENCIL_STEPS): inside loops, slice updates of an array from overlapping
slices of itself or of another array (`x[1:-1] = x[1:-1] + r * (x[2:] - 2.0 * x[1:-1] + x[:-2])`,
`x[1:] = x[:-1]`, `x[k:] = ...` with a start that moves from step to step, `A[1:-1, 1:-1] = ...`),
with coefficients in [0, 0.25] so that every step contracts or stays bounded; and chains of
constant factors (`c * (a - b) ** 2`, `-0.5 * a ** 3`, "form:scaled_float", "form:scaled_array")
that fwdad/transform/scale.py folds.

Shrinking (hypothesis) moves every choice towards the first, simplest production.
"""
import ast
import re
from dataclasses import dataclass, field

from hypothesis import strategies as st

N = 4                                          # the length of every array
FLOAT, INT, ARRAY = "float", "int", "array"
MATRIX = "matrix"                              # an N x N float64 array
LIST, TUPLE = "list", "tuple"                  # a Python list or tuple of SEQUENCE_LENGTH floats
SEQUENCE_LENGTH = 3
FLOAT_CONSTANTS = ("0.5", "2.0", "1.5", "0.25", "3.0", "-0.75", "1.0", "-2.0")
PARAMETER_NAMES = {FLOAT: "abcd", ARRAY: "xyzu", INT: "nmpq", MATRIX: "ABCD"}
LOCAL_PREFIX = {FLOAT: "s", ARRAY: "w", INT: "j", MATRIX: "M", LIST: "t", TUPLE: "t"}

LOG_BASE = "math.log({e} * {e} + 1.0, 2.0)"
# Constructs that the `avoid` argument of programs() can leave out, each while a known fwdad bug
# with that construct is open (see tests/fuzz/test_fuzz_regressions.py).
AVOIDABLE = {
    "log_base_in_test": "math.log(x, base) inside an if or while test",
    "inactive_call_argument": "len(x) or x.shape[0] as an argument of a call to a generated function",
    "in_place_self_operand": "an augmented assignment whose operand is its target (a *= a)",
    "dot_method": "the method form a.dot(b) of a dot product (np.dot(a, b) stays)",
    "in_place_alias_operand": "w *= v where v is another name of the array w (v = w before)",
    "transpose_function_view_write": "a write through np.transpose(A) or np.swapaxes(A, 0, 1), or through a "
                                     "name or argument bound to one (A.T and A.transpose() stay)",
}
TRANSPOSE_FUNCTIONS = ("np.transpose(", "np.swapaxes(")

# Templates: {e} {f} are float subexpressions, {s} a small float one, {a} {b} arrays, {t} a
# bounded float, {n} an int, {c} a constant, {x} an array variable, {m} math or np, {q} a test.
FLOAT_FORMS = {
    "from_int": ["float({n})", "{n} * 0.5"],
    "arithmetic": ["{e} + {f}", "{e} - {f}", "{e} * {f}"],
    "division": ["{e} / ({f} * {f} + 1.0)", "{e} / (abs({f}) + 0.5)", "{e} / 2.0", "{e} / -3.0",
                 "{e} % 1.5", "{e} % ({f} * {f} + 0.5)"],
    "negate": ["-{e}"],
    "power": ["{e} ** 2", "{e} ** 3", "({e} * {e} + 1.0) ** 1.5", "(abs({e}) + 0.5) ** 0.5",
              "(abs({e}) + 0.5) ** -1.5", "(abs({e}) + 0.5) ** {t}", "1.5 ** {t}"],
    "math_call": ["{m}.sin({e})", "{m}.cos({e})", "{m}.tanh({e})", "math.atan({e})", "{m}.exp({t})",
                  "{m}.log({e} * {e} + 1.0)", "math.log(abs({e}) + 0.5)", "{m}.sqrt({e} * {e} + 1.0)",
                  "math.sqrt(abs({e}) + 0.5)", "math.log1p({e} * {e})", "math.atan2({e}, {f} ** 2 + 0.5)",
                  "math.hypot({e}, {f})", "math.erf({e})", "math.expm1({t})", "math.asinh({e})",
                  "math.acosh({e} * {e} + 1.5)", "math.asin({t} * 0.9)", "math.atanh({t} * 0.9)",
                  LOG_BASE, "math.pow(abs({e}) + 0.5, 1.3)", "math.pow(abs({e}) + 0.5, {t})",
                  "math.fabs({e})", "math.copysign({e}, {f})", "math.log2({e} * {e} + 1.0)",
                  "math.log10(abs({e}) + 0.5)", "math.cosh({t})", "math.sinh({e} / ({e} * {e} + 1.0))",
                  "math.erfc({e})", "np.float64({e})", "np.cbrt({e} * {e} + 1.0)",
                  "np.arctan2({e}, {f})", "np.logaddexp({e}, {t})"],
    "builtin": ["abs({e})", "min({e}, {f})", "max({e}, {f})", "max({e}, {f}, {c})"],
    "ternary": ["{e} if {q} else {f}"],
    # piecewise constant: zero tangent, and jumps that the finite differences must skip
    "truncate": ["float(int({e}))", "float(math.floor({e}))", "float(math.ceil({e}))", "{e} // 0.5",
                 "float(math.trunc({e}))", "np.floor({e})", "np.sign({e}) * {f}"],
}
BOUNDED_FORMS = ["math.sin({e})", "math.tanh({e})", "math.cos({e})", "{e} / ({e} * {e} + 1.0)"]
REDUCTION_FORMS = ["np.sum({a})", "np.mean({a})", "np.max({a})", "np.min({a})", "np.dot({a}, {b})",
                   "({a}) @ ({b})", "np.sum(np.outer({a}, {b}))", "np.sum({x}{p} {o} {y}{r})",
                   "np.max(np.sin({x}{p}) {o} {y}{r})", "np.min({x}{p} {o} {y}{r})",
                   "({a}).sum()", "({a}).mean()", "({a}).max()", "({a}).min()", "({a}).dot({b})",
                   "np.prod(np.cos({a}))", "np.linalg.norm({a})", "np.amax({a})", "np.amin({a})",
                   "np.sum({x}[1:3] * {y}[-2:])", "np.dot({x}[::-1], {y})"]
ARRAY_FORMS = {
    "arithmetic": ["{a} + {b}", "{a} - {b}", "{a} * {b}"],
    "with_scalar": ["{a} + {s}", "{s} - {a}", "{a} * {s}", "{s} * {a}"],
    "division": ["{a} / ({b} * {b} + 1.0)", "{a} / ({s} ** 2 + 1.0)"],
    "negate": ["-{a}", "{a} ** 2"],
    "ufunc": ["np.sin({a})", "np.cos({a})", "np.tanh({a})", "np.arctan({a})", "np.exp(np.sin({a}))",
              "np.log({a} * {a} + 1.0)", "np.sqrt(np.abs({a}) + 0.5)", "np.abs({a})", "np.square({a})",
              "np.cumsum({a})", "np.arcsinh({a})", "np.hypot({a}, {b})", "abs({a})", "np.exp2(np.sin({a}))",
              "np.log1p({a} * {a})", "np.expm1(np.tanh({a}))", "np.reciprocal({a} * {a} + 1.0)",
              "np.cbrt({a} * {a} + 0.5)", "(np.abs({a}) + 0.5) ** {b}", "np.power(np.abs({a}) + 0.5, {s})",
              "np.floor({a})", "np.sign({a}) * {b}", "np.log2({a} * {a} + 1.0)", "np.arctan2({a}, {b})",
              "np.fmax({a}, {b})", "np.fmin({a}, {c})", "({a}).cumsum()", "np.negative({a})",
              "np.logaddexp({a}, np.sin({b}))", "{a} % 1.5"],
    "select": ["np.maximum({a}, {c})", "np.minimum({a}, {s})", "np.maximum({a}, {b})",
               "np.clip({a}, -1.0, 1.0)", "np.where({a} > {s}, {b}, {a})"],
    "reorder": ["{x}[::-1]", "np.concatenate(({x}[1:], {x}[:1]))", "np.outer({a}, {b}) @ {x}", "{x}.copy()",
                "np.hstack(({a}[:2], {b}[2:]))", "np.ravel({a})", "({a}).reshape(4)", "np.copy({a})",
                "np.dot(np.outer({a}, {b}), {x})", "{x}[np.array([3, 0, 2, 1])]"],
    "fill": ["np.full(4, {s})", "np.full_like({x}, {s})", "np.linspace({s}, {f}, 4)",
             "np.where({a} > {s}, {s}, {b})", "np.zeros(4) + {s}", "np.ones_like({x}) * {s}"],
}
RETURN_KINDS = ((FLOAT,), (ARRAY,), (FLOAT, FLOAT), (FLOAT, ARRAY), (ARRAY, FLOAT), (FLOAT, INT))
MATRIX_RETURN_KINDS = ((MATRIX,), (FLOAT, MATRIX))

# ---- the forms users write (issue 13); {A} is a matrix variable, {M} {P} matrix expressions,
# {i} {j} indices in [-N, N), {k} an index into a view of N // 2 elements, {g} a sequence variable
BUILTIN_ON_ARRAY_FORMS = ["max({a})", "min({a})", "sum({a})", "np.sum(abs({a}))", "float(len({x})) * {e}",
                          "max({x}) - min({a})"]
NORM_ORD_FORMS = ["np.linalg.norm({a}, 1)", "np.linalg.norm({a}, np.inf)", "np.linalg.norm({a}, -np.inf)",
                  "np.linalg.norm({a}, ord=2)", "np.linalg.norm({a}, 3)", "np.linalg.norm({a}, ord=1)",
                  "np.linalg.norm({M}, 1)", "np.linalg.norm({M}, np.inf)", "np.linalg.norm({M}, -1)",
                  "np.linalg.norm({M}, 2)", "np.linalg.norm({M})"]
MATRIX_FLOAT_FORMS = ["np.sum({M})", "{A}[{i}, {j}]", "np.trace({M})", "np.sum({M} @ {a})", "{a} @ {M} @ {b}",
                      "np.sum({A}.T * {P})", "{A}.T[{i}, {j}]"]
SEQUENCE_FLOAT_FORMS = ["{g}[{k3}]", "{g}[{k3}] * {e}", "max({g})", "min({g})", "sum({g})"]
# an array of length N from active scalars: arange's length is ceil(3.5) = 4 whatever the rounding
ACTIVE_BOUND_FORMS = ["np.arange({s}, {s} + 3.5, 1.0)", "np.linspace({s}, {s} + {f} * {f}, 4)",
                      "np.linspace({e}, {f}, 4)", "np.array([{e}, {f}, {c}, {s}])",
                      "np.array(({e}, 1.0, {s}, {f}))"]
ARRAY_FROM_MATRIX_FORMS = ["{M} @ {a}", "{A}.T @ {a}", "{A}[{i}]", "{A}[:, {j}]", "np.sum({M}, axis=0)",
                           "np.dot({a}, {M})", "np.swapaxes({A}, 0, 1)[{i}]", "np.transpose({M}) @ {a}"]
MATRIX_FORMS = {
    "arithmetic": ["{M} + {P}", "{M} * {P}", "{M} - {P}.T", "{M} * {s}", "{s} - {M}"],
    "ufunc": ["np.sin({M})", "np.tanh({M})", "np.exp(np.cos({M}))", "{M} ** 2", "np.abs({M})"],
    "product": ["{M} @ {P} * 0.25", "np.outer({a}, {b})", "np.outer({a}, {b}).T", "np.dot({M}, {P}) * 0.25"],
    "view": ["{A}.T", "np.transpose({A})", "np.swapaxes({A}, 0, 1)", "{A}.transpose()"],
    "fill": ["np.eye(4) * {s}", "np.zeros((4, 4)) + {s}", "np.ones((4, 4)) * {s}", "np.full((4, 4), {s})"],
}
# views that share the memory of {x} (an array) or {A} (a matrix), of length N
ARRAY_VIEW_FORMS = ["{x}[::-1]", "{A}[{i}]", "{A}[:, {j}]", "{A}.T[{i}]", "np.transpose({A})[{i}]"]
CONTIGUOUS_ARRAY_VIEW_FORMS = ["{C}.reshape(16)[4:8]", "np.reshape({C}, 16)[-4:]"]
# writes through a view; {v} an array, {A} a matrix, {C} a C-contiguous matrix, {y} a C-contiguous array
VIEW_WRITE_FORMS = {
    ARRAY: ["{v}[::2][{k}] = {e}", "{v}[::-1][{i}] = {e}", "{v}[1::2] *= {e}", "{v}[::-1][{i}] += {e}",
            "{v}[::2][{k}] += {e}", "{v}[::-2] = {x}[:2]"],
    MATRIX: ["{A}[{i}, {j}] = {e}", "{A}.T[{i}, {j}] = {e}", "{A}.T[{i}] = {x}",
             "np.transpose({A})[{i}, {j}] += {e}", "np.swapaxes({A}, 0, 1)[{i}] *= {e}", "{A}.T[:, {j}] += {x}",
             "{A}[{i}] = {x}", "{A}.transpose()[{i}, {j}] = {e}"],
    "contiguous": ["{y}.reshape(2, 2)[{k}, {k}] = {e}", "np.reshape({y}, (2, 2))[{k}] = {x}[:2]",
                   "{C}.reshape(16)[{n16}] = {e}", "{C}.reshape(16)[4:8] += {x}"],
}
DECORATORS = {           # name: (source, whether the wrapper changes the value)
    "njit": None,
    "passed_through": ("def passed_through(fn):\n    @functools.wraps(fn)\n    def wrapper(*args):\n"
                       "        return fn(*args)\n    return wrapper", False),
    "doubled": ("def doubled(fn):\n    @functools.wraps(fn)\n    def wrapper(*args):\n"
                "        return 2.0 * fn(*args)\n    return wrapper", True),
}

# ---- stencil time loops (issue 14): slice updates of an array from overlapping slices of itself
# or of another array, inside loops; {v} the array written, {x} another array (or the same one),
# {A} {B} matrices, {r} a coefficient in [0, 0.25] (so that every form is stable: heat, upwind and
# convex combinations contract), {k} a slice start in [0, 3) that may change from step to step.
STENCIL_COEFFICIENTS = ["0.25", "0.1", "0.2 * math.tanh({e}) ** 2", "0.1 * (1.0 + math.sin({e}))",
                        "0.25 / ({e} * {e} + 1.0)"]
STENCIL_FORMS = {
    ARRAY: ["{v}[1:-1] = {v}[1:-1] + {r} * ({v}[2:] - 2.0 * {v}[1:-1] + {v}[:-2])",
            "{v}[1:] = {v}[1:] - {r} * ({v}[1:] - {v}[:-1])",
            "{v}[:-1] = {v}[:-1] + {r} * ({v}[1:] - {v}[:-1])",
            "{v}[1:-1] = 0.5 * {v}[:-2] + {r} * {x}[1:-1]",
            "{v}[1:-1] = {x}[1:-1] * {r} + 0.5 * {v}[:-2]",
            "{v}[1:-1] += {r} * ({v}[2:] - 2.0 * {v}[1:-1] + {v}[:-2])",
            "{v}[1:-1] = {v}[1:-1] + {r} * np.tanh({x}[2:] - {x}[:-2])",
            "{v}[1:-1] = {v}[1:-1] - {r} * np.tanh({v}[1:-1]) ** 3",
            "{v}[1:] = {v}[:-1]",
            "{v}[:-1] = 0.5 * ({v}[1:] + {v}[:-1])",
            "{v}[{k}:] = {v}[{k}:] + {r} * ({x}[:4 - {k}] - {v}[{k}:])",
            "{v}[1:-1] = {v}[1:-1] - {r} * ({v}[1:-1] - {x}[1:-1]) - 0.5 * {r} * np.sin({v}[1:-1]) ** 2",
            "{v}[1:] = {v}[1:] * 0.5 + {r} * {v}[:0:-1]", "{v}[1:] = 0.5 * {v}[1:] + {r} * {v}[0]"],
    MATRIX: ["{A}[1:-1, 1:-1] = {A}[1:-1, 1:-1] + {r} * ({A}[2:, 1:-1] + {A}[:-2, 1:-1] + {A}[1:-1, 2:] + "
             "{A}[1:-1, :-2] - 4.0 * {A}[1:-1, 1:-1])",
             "{A}[1:, :] = {A}[1:, :] - {r} * ({A}[1:, :] - {A}[:-1, :])",
             "{A}[:, 1:] = 0.5 * {A}[:, :-1] + {r} * {B}[:, 1:]",
             "{A}[1:-1, {j}] = {A}[1:-1, {j}] + {r} * ({A}[2:, {j}] - 2.0 * {A}[1:-1, {j}] + {A}[:-2, {j}])",
             "{A}[1:-1, 1:-1] += {r} * np.tanh({A}[2:, 2:] - {A}[:-2, :-2])",
             "{A}[1:, {j}] = 0.5 * {A}[1:, {j}] + {r} * {A}[:-1, {j}]",
             "{A}[1:-1, 1:-1] = {A}[1:-1, 1:-1] * 0.5 + {r} * {x}[1:-1]"],       # a row broadcast
}
# steps of several statements, {w} a fresh name: a double buffer (the step is computed into a
# copy, then copied back by a slice store); a view kept in a name, then the name rebound; constant
# scalings of a value read before a write into the array it was read from, used after the write
STENCIL_STEPS = {
    "double_buffer": ["{w} = {v}.copy()",
                      "{w}[1:-1] = {v}[1:-1] + {r} * ({v}[2:] - 2.0 * {v}[1:-1] + {v}[:-2])",
                      "{v}[1:-1] = {w}[1:-1]"],
    "view_rebound": ["{w} = {v}[1:-1]", "{w} = {w} * {r} + 0.5 * {w}", "{v}[1:-1] = {w} * 0.5",
                     "{v}[0] = 0.1 * np.sum({w})"],
    "view_read_after_write": ["{w} = {v}[1:-1]", "{v}[1:-1] = {w} * {r} + 0.5 * {v}[2:]", "{v}[0] = 0.5 * {w}[0]"],
    "scaled_across_write": ["{w} = 2.0 * {v}[{i}]", "{v}[{i}] = math.tanh({e})",
                            "{v}[{j}] = 0.125 * ({w} * 3.0) + 0.25 * {v}[{j}]"],
    "scaled_across_slice_write": ["{w} = 2.0 * {v}", "{v}[1:] = np.tanh({v}[:-1])",
                                  "{v}[:-1] = 0.125 * ({w}[1:] * 3.0) + 0.25 * {v}[:-1]"],
}
# chains of constant factors (what fwdad/transform/scale.py folds)
SCALED_FLOAT_FORMS = ["{c} * ({e} - {f}) ** 2", "-0.5 * {e} ** 3", "100.0 * ({f} - {e} * {e}) ** 2 + (1.0 - {e}) ** 2",
                      "2.0 * ({e} * 3.0)", "{e} * {e} * 0.5", "0.25 * (2.0 * {e} + {f}) * 4.0", "-({e} * -2.0) / 4.0",
                      "3.0 * {e} ** 2 * 0.5", "{e} * {e}"]
SCALED_ARRAY_FORMS = ["0.5 * ({a} - {b}) ** 2", "-0.25 * {a} ** 3", "2.0 * ({a} * 3.0) - {b}", "{a} * {a} * 0.5",
                      "-({a} * -2.0) / 4.0", "100.0 * ({b} - {a} * {a}) ** 2 + (1.0 - {a}) ** 2"]

# Per flavor, how often each production is chosen. "vector" programs use whole-array NumPy
# expressions and never write into arrays (the JAX oracle runs them); "loops" programs work
# element by element; "mixed" programs do both; "user" programs mix them with the forms of
# issue 13. The first three draw none of those forms, so that their programs (and the fast
# profile's fixed sequence) stay what they were; decorated: the percentage of functions with a
# decorator.
NO_USER_FORMS = dict(matrix_param=0, matrix_return=0, sequence=0, view_write=0, user_expr=0, decorated=0,
                     stencil=0)
WEIGHTS = {
    "loops":  dict(array_expr=1, element_write=4, buffer=3, loop=5, reduction=1, array_param=2, **NO_USER_FORMS),
    "vector": dict(array_expr=5, element_write=0, buffer=0, loop=2, reduction=4, array_param=3, **NO_USER_FORMS),
    "mixed":  dict(array_expr=3, element_write=2, buffer=2, loop=3, reduction=3, array_param=3, **NO_USER_FORMS),
    "user":   dict(array_expr=3, element_write=2, buffer=1, loop=2, reduction=2, array_param=3,
                   matrix_param=2, matrix_return=2, sequence=3, view_write=4, user_expr=4, decorated=10,
                   stencil=5),
}


@dataclass
class Function:
    name: str
    params: list                   # [(name, kind)]
    returns: tuple                 # kinds of the results; one kind means a bare value


@dataclass
class Program:
    source: str
    functions: list
    flavor: str
    features: set = field(default_factory=set)

    @property
    def entry(self):
        return self.functions[-1]

    @property
    def jax_compatible(self):
        """No writes into arrays, so the same source runs on immutable jax.numpy arrays; and no
        np.arange with active bounds, whose tangent jnp.arange drops (it needs concrete bounds)."""
        return not self.features & {"element_write", "array_in_place", "active_arange"}


class Scope:
    """The variables visible in a block: name -> kind, plus facts the grammar needs."""

    def __init__(self, variables, returns, bounded=(), carried=(), loop_depth=0, parent=None):
        self.variables = dict(variables)
        self.returns = returns
        self.parent = parent
        self.bounded = set(bounded)       # int variables known to lie in [0, N)
        self.carried = set(carried)       # variables that live across the innermost loop
        self.loop_depth = loop_depth

    def child(self, loop=False):
        carried = set(self.variables) if loop else self.carried
        return Scope(self.variables, self.returns, self.bounded, carried,
                     self.loop_depth + (1 if loop else 0), parent=self)

    def of(self, kind):
        return sorted(name for name, k in self.variables.items() if k == kind)


def indent(lines):
    return ["    " + line for line in lines]


def parens(text):
    return f"({text})"


class Builder:
    """Draws one program; each method is one nonterminal of the grammar."""

    def __init__(self, draw, flavor, max_functions=3, max_statements=5, max_depth=2, expression_depth=3,
                 avoid=frozenset()):
        self.draw, self.flavor = draw, flavor
        self.max_functions, self.max_statements, self.max_depth = max_functions, max_statements, max_depth
        self.expression_depth = expression_depth       # of an assigned value
        self.operand_depth = expression_depth - 1      # of an operand, a test part, a returned value
        self.avoid = frozenset(avoid)
        unknown = self.avoid - set(AVOIDABLE)
        assert not unknown, f"unknown constructs to avoid: {unknown}"
        self.weights = WEIGHTS[flavor]
        self.functions = []
        self.features = set()
        self.decorators = []             # the names of DECORATORS the module defines
        self.counter = 0
        self.in_test = False             # drawing an if/while test

    # ---- choices -------------------------------------------------------------------------------
    def choose(self, options):
        """One of the values in `options` [(weight, value)], zero weights left out."""
        options = [(w, v) for w, v in options if w > 0]
        k = self.draw(st.integers(0, sum(w for w, _ in options) - 1))
        for weight, value in options:
            if k < weight:
                return value
            k -= weight
        raise AssertionError("unreachable")

    def one_of(self, values):
        return self.draw(st.sampled_from(values))

    def chance(self, percent):
        return self.draw(st.integers(0, 99)) < percent

    def sometimes(self, form, percent_per_weight=1):
        """True with the flavor's weight of `form` times `percent_per_weight` percent; no draw at
        all where the weight is 0, so that flavors without the form keep their sequence of draws."""
        weight = self.weights[form]
        return bool(weight) and self.chance(weight * percent_per_weight)

    def fresh(self, prefix):
        self.counter += 1
        return f"{prefix}{self.counter}"

    # ---- the module ----------------------------------------------------------------------------
    def program(self):
        count = self.draw(st.integers(1, self.max_functions))
        texts = [self.function(f"f{k}", entry=k == count - 1) for k in range(count)]
        imports = ["import functools"] * bool(self.decorators) + ["import math"]
        imports += ["import numba"] * bool(self.decorators) + ["import numpy as np"]
        texts = [DECORATORS[d][0] for d in self.decorators if DECORATORS[d]] + texts
        source = "\n".join(imports) + "\n\n\n" + "\n\n\n".join(texts) + "\n"
        source = ast.unparse(ast.parse(source)) + "\n"       # minimal parentheses, one style
        return Program(source, self.functions, self.flavor, self.features)

    def function(self, name, entry):
        params = self.parameters(entry)
        if self.weights["matrix_return"]:
            returns = self.choose([(2, kinds) for kinds in RETURN_KINDS] +
                                  [(self.weights["matrix_return"], kinds) for kinds in MATRIX_RETURN_KINDS])
        else:
            returns = self.one_of(RETURN_KINDS)
        self.counter = 0
        self.parameters_of_current = {p for p, _ in params}
        self.called = set()
        self.aliases = {}                       # array name -> the name it is another name of
        self.view_base = {}                     # a view's name -> the array whose memory it shares
        # arrays known to be C-contiguous (so that reshape gives a view in NumPy and Numba alike)
        self.contiguous = {p for p, kind in params if entry and kind in (ARRAY, MATRIX)}
        scope = Scope(params, returns)
        body = []
        if not scope.of(FLOAT):                 # an accumulator that inner blocks can export to
            body.append("s0 = 0.0")
            scope.variables["s0"] = FLOAT
        body += self.block(scope, self.draw(st.integers(1, self.max_statements)), depth=0)
        body += self.call_the_uncalled(scope)
        body += [self.return_statement(scope)]
        self.functions.append(Function(name, params, returns))
        signature = ", ".join(p for p, _ in params)
        return "\n".join(self.decorator(entry, returns) + [f"def {name}({signature}):"] + indent(body))

    def decorator(self, entry, returns):
        """[] or ["@numba.njit"] or a functools.wraps decorator: the wrapper is what is called."""
        if not self.sometimes("decorated"):
            return []
        changes_value = len(returns) == 1
        names = [d for d in DECORATORS if (d != "njit" or not entry) and (not DECORATORS[d] or
                                                                          changes_value or not DECORATORS[d][1])]
        # fwdad refuses functools.wraps wrappers (WrappedFunctionError): drawn less, so that most
        # decorated programs are checked
        chosen = self.choose([(3 if name == "njit" else 1, name) for name in names])
        self.features.add(f"form:decorated_{chosen}")
        if chosen not in self.decorators:
            self.decorators.append(chosen)
        return ["@numba.njit" if chosen == "njit" else f"@{chosen}"]

    def parameters(self, entry):
        count = self.draw(st.integers(1, 4))
        kinds = [self.choose([(3, FLOAT), (self.weights["array_param"], ARRAY), (1, INT),
                              (self.weights["matrix_param"], MATRIX)])
                 for _ in range(count)]
        if MATRIX in kinds:
            self.features.add("form:matrix")
        if entry and kinds.count(INT) == count:
            kinds[0] = FLOAT                    # something to differentiate
        names, used = [], {kind: 0 for kind in PARAMETER_NAMES}
        for kind in kinds:
            names.append((PARAMETER_NAMES[kind][used[kind]], kind))
            used[kind] += 1
        return names

    # ---- statements ----------------------------------------------------------------------------
    def block(self, scope, count, depth):
        lines = []
        for _ in range(count):
            lines += self.statement(scope, depth)
        if scope.parent is not None:
            lines += self.export(scope)
        return lines or ["pass"]

    def export(self, scope):
        """Fold a block's own variables into a float of the enclosing block, so they matter."""
        terms = self.live_terms(scope, scope.parent.variables)
        targets = scope.parent.of(FLOAT)
        if not terms or not targets or not self.chance(85):
            return []
        target = self.one_of(targets)
        if target in scope.carried:
            forms = ["{v} = 0.5 * {v} + math.sin({e})", "{v} += math.tanh({e})"]
        else:
            forms = ["{v} += {e}", "{v} = 0.5 * {v} + {e}"]
        return [self.one_of(forms).format(v=target, e=" + ".join(terms))]

    def live_terms(self, scope, exclude):
        """Float terms of the variables of `scope` not in `exclude`: the parameters (they may have
        been updated) and the six most recent locals."""
        names = [n for n, k in scope.variables.items() if n not in exclude and k != INT]
        parameters = sorted(n for n in names if n in self.parameters_of_current)
        local = sorted((n for n in names if n not in self.parameters_of_current), key=lambda n: int(n[1:]))
        term = {FLOAT: "{}", ARRAY: "np.sum({})", MATRIX: "np.sum({})", LIST: "{}[-1]", TUPLE: "{}[-1]"}
        return [term[scope.variables[n]].format(n) for n in parameters + local[-6:]]

    def statement(self, scope, depth):
        w = self.weights
        deeper = depth < self.max_depth
        nested = 3 if deeper else 0
        in_loop = scope.loop_depth > 0
        arrays = bool(scope.of(ARRAY))
        kind = self.choose([
            (6, "assign_float"),
            (w["array_expr"] if arrays else 0, "assign_array"),
            (4, "update_float"),
            (w["element_write"] if arrays else 0, "element_write"),
            (w["buffer"], "buffer"),
            (w["array_expr"] // 2 if arrays and self.flavor != "vector" else 0, "update_array"),
            (nested, "if"),
            (w["loop"] if deeper else 0, "for"),
            (1 if deeper else 0, "while"),
            (2 if arrays and deeper else 0, "for_each"),
            (2, "unpack"),
            (3 if in_loop else 0, "break_or_continue"),
            (1 if depth > 0 else 0, "early_return"),
            (2 if self.callees_writing_arrays(scope) else 0, "call_statement"),
            (w["sequence"], "sequence"),
            (w["sequence"] if self.sequences(scope) else 0, "sequence_update"),
            (w["matrix_param"] if arrays or scope.of(MATRIX) else 0, "assign_matrix"),
            (w["view_write"] if arrays or scope.of(MATRIX) else 0, "assign_view"),
            (2 * w["view_write"] if arrays or scope.of(MATRIX) else 0, "view_write"),
            (w["stencil"] if in_loop and (arrays or scope.of(MATRIX)) else 0, "stencil"),
            (2 * w["stencil"] if deeper and (arrays or scope.of(MATRIX)) else 0, "time_loop"),
        ])
        return getattr(self, "s_" + kind)(scope, depth)

    def s_assign_float(self, scope, depth):
        name = self.fresh("s")
        value = self.float_expr(scope, self.expression_depth)
        scope.variables[name] = FLOAT
        return [f"{name} = {value}"]

    def s_assign_array(self, scope, depth):
        name = self.fresh("w")
        if self.chance(8):
            value = self.one_of(scope.of(ARRAY))                 # an alias
            self.aliases[name] = self.aliases.get(value, value)
        else:
            value = self.array_expr(scope, self.expression_depth)
        scope.variables[name] = ARRAY
        return [f"{name} = {value}"]

    def s_update_float(self, scope, depth):
        """Rebind or update an existing float; across a loop only through bounded forms."""
        if not scope.of(FLOAT):
            return self.s_assign_float(scope, depth)
        name = self.one_of(scope.of(FLOAT))
        if name in scope.carried:
            forms = ["{v} = 0.5 * {v} + math.sin({e})", "{v} += math.tanh({e})", "{v} *= math.cos({e})",
                     "{v} = math.tanh({e})", "{v} /= {e} * {e} + 1.0", "{v} -= 0.25 * {v}"]
        else:
            forms = ["{v} = {e}", "{v} += {e}", "{v} -= {e}", "{v} *= {e}", "{v} /= {e} * {e} + 1.0",
                     "{v} **= 2"]
        value = lambda: self.operand(name, self.float_expr(scope, self.operand_depth))      # noqa: E731
        return [self.fill(self.one_of(forms), v=lambda: name, e=value)]

    def operand(self, target, value):
        """`value` as the operand of `target op= value`, kept apart from `target` if asked to."""
        if value == target and "in_place_self_operand" in self.avoid:
            return f"{value} * 1.0"
        root = lambda n: self.aliases.get(n, n)          # noqa: E731
        if value != target and root(value) == root(target) and "in_place_alias_operand" in self.avoid:
            return f"{value} * 1.0"
        return value

    def s_update_array(self, scope, depth):
        """An in-place update of a whole array (`w += ...`): it writes through aliases."""
        name = self.one_of(scope.of(ARRAY))
        self.features.add("array_in_place")
        if name in scope.carried:
            forms = ["{v} += np.sin({e})", "{v} *= np.cos({e})", "{v} *= 0.5"]
        else:
            forms = ["{v} += {e}", "{v} -= {e}", "{v} *= {e}", "{v} /= {e} * {e} + 1.0"]
        value = lambda: self.operand(name, self.array_expr(scope, self.operand_depth))      # noqa: E731
        return [self.fill(self.one_of(forms), v=lambda: name, e=value)]

    def s_element_write(self, scope, depth):
        name = self.one_of(scope.of(ARRAY))
        self.features.add("element_write")
        if name in scope.carried:
            forms = ["{v}[{i}] = math.tanh({e})", "{v}[{i}] += math.sin({e})", "{v}[{i}] *= math.cos({e})",
                     "{v}[{i}] = 0.5 * {v}[{i}] + math.sin({e})", "{v}[1:] = np.sin({x}[:-1])"]
        else:
            forms = ["{v}[{i}] = {e}", "{v}[{i}] += {e}", "{v}[{i}] -= {e}", "{v}[{i}] *= {e}",
                     "{v}[{i}] /= {e} * {e} + 1.0", "{v}[{i}] **= 2", "{v}[:] = {x} * 0.5",
                     "{v}[1:3] = {x}[:2] * {e}", "{v}[::2] = {e}", "{v}[-2:] += {x}[:2]"]
        return [self.fill(self.one_of(forms), v=lambda: name, i=lambda: self.index(scope),
                          e=lambda: self.float_expr(scope, self.operand_depth),
                          x=lambda: self.one_of(scope.of(ARRAY)))]

    def s_buffer(self, scope, depth):
        """A new array: zeros, ones, a copy, or np.empty filled at once by a loop."""
        name = self.fresh("w")
        arrays = scope.of(ARRAY)
        like = self.one_of(arrays) if arrays else None
        forms = [f"np.zeros({N})", f"np.ones({N})", "empty_n"]
        if like:
            forms += [f"np.zeros_like({like})", f"np.ones_like({like})", f"{like}.copy()", "empty"]
        form = self.one_of(forms)
        self.features.add("buffer")
        if form not in ("empty", "empty_n"):
            scope.variables[name] = ARRAY
            return [f"{name} = {form}"]
        loop = self.fresh("i")
        inner = scope.child(loop=True)
        inner.variables[loop] = INT
        inner.bounded.add(loop)
        fill = self.float_expr(inner, self.operand_depth)
        self.features.add("element_write")
        scope.variables[name] = ARRAY
        allocation = f"np.empty_like({like})" if form == "empty" else f"np.empty({N})"
        return [f"{name} = {allocation}", f"for {loop} in range(len({name})):", f"    {name}[{loop}] = {fill}"]

    def s_if(self, scope, depth):
        lines = [f"if {self.condition(scope, 2)}:"]
        lines += indent(self.block(scope.child(), self.draw(st.integers(1, 3)), depth + 1))
        for _ in range(self.choose([(3, 0), (2, 1), (1, 2)])):
            lines += [f"elif {self.condition(scope, 2)}:"]
            lines += indent(self.block(scope.child(), self.draw(st.integers(1, 2)), depth + 1))
        if self.chance(60):
            lines += ["else:"] + indent(self.block(scope.child(), self.draw(st.integers(1, 2)), depth + 1))
        return lines

    def s_for(self, scope, depth):
        loop = self.fresh("i")
        inner = scope.child(loop=True)
        inner.variables[loop] = INT
        ints = scope.of(INT)
        arrays = scope.of(ARRAY)
        bounded = [f"range({N})", "range(1, 3)", f"range({N - 1}, -1, -1)", f"range(0, {N}, 2)"]
        if arrays:
            bounded.append(f"range(len({self.one_of(arrays)}))")
        unbounded = [f"range({i})" for i in ints] + [f"range({i}, 0, -1)" for i in ints]
        unbounded += ["range(2, 7, 3)"]
        if self.chance(70):
            header = self.one_of(bounded)
            inner.bounded.add(loop)
        else:
            header = self.one_of(unbounded)
        body = self.block(inner, self.draw(st.integers(1, 3)), depth + 1)
        return [f"for {loop} in {header}:"] + indent(body)

    def s_for_each(self, scope, depth):
        """for v in x / for i, v in enumerate(x) / for p, q in zip(x, y)."""
        arrays = scope.of(ARRAY)
        inner = scope.child(loop=True)
        first = self.one_of(arrays)
        form = self.choose([(2, "plain"), (1, "enumerate"), (1, "zip")])
        v = self.fresh("v")
        inner.variables[v] = FLOAT
        if form == "plain":
            header = f"for {v} in {first}:"
        elif form == "enumerate":
            i = self.fresh("i")
            inner.variables[i] = INT
            inner.bounded.add(i)
            header = f"for {i}, {v} in enumerate({first}):"
        else:
            v2 = self.fresh("v")
            inner.variables[v2] = FLOAT
            header = f"for {v}, {v2} in zip({first}, {self.one_of(arrays)}):"
        return [header] + indent(self.block(inner, self.draw(st.integers(1, 3)), depth + 1))

    def s_while(self, scope, depth):
        """A while loop bounded by a counter that is checked before anything can `continue`."""
        counter = self.fresh("k")
        limit = self.draw(st.integers(1, 5))
        scope.variables[counter] = INT
        inner = scope.child(loop=True)
        if self.chance(50):
            head = [f"while {counter} < {limit} and {self.condition(scope, 1)}:", f"    {counter} += 1"]
        else:
            head = ["while True:", f"    {counter} += 1", f"    if {counter} > {limit}:", "        break"]
        body = self.block(inner, self.draw(st.integers(1, 3)), depth + 1)
        return [f"{counter} = 0"] + head + indent(body)

    def s_unpack(self, scope, depth):
        floats = [n for n in scope.of(FLOAT) if n not in scope.carried or not scope.loop_depth]
        callees = [f for f in self.functions if f.returns[0] in (FLOAT, ARRAY) and len(f.returns) == 2]
        form = self.choose([(3, "pair"), (2 if len(floats) >= 2 else 0, "swap"),
                            (3 if callees else 0, "call")])
        if form == "swap":
            p, q = self.draw(st.permutations(floats))[:2]
            return [f"{p}, {q} = {q}, {p}"]
        if form == "pair":
            p, q = self.fresh("s"), self.fresh("s")
            value = f"{self.float_expr(scope, self.operand_depth)}, {self.float_expr(scope, self.operand_depth)}"
            scope.variables[p] = scope.variables[q] = FLOAT
            return [f"{p}, {q} = {value}"]
        callee = self.one_of(callees)
        names = [self.fresh(LOCAL_PREFIX[k]) for k in callee.returns]
        call = self.call(scope, callee)
        for name, kind in zip(names, callee.returns):
            scope.variables[name] = kind
        return [f"{', '.join(names)} = {call}"]

    def s_break_or_continue(self, scope, depth):
        return [f"if {self.condition(scope, 1)}:", "    " + self.one_of(["break", "continue"])]

    def s_early_return(self, scope, depth):
        return [f"if {self.condition(scope, 1)}:", "    " + self.return_statement(scope)]

    def callees_writing_arrays(self, scope):
        if not (scope.of(ARRAY) or scope.of(MATRIX)):
            return []
        return [f for f in self.functions if any(k in (ARRAY, MATRIX) for _, k in f.params)]

    def s_call_statement(self, scope, depth):
        """A call whose result is dropped: it matters only through the arrays it writes into."""
        callee = self.one_of(self.callees_writing_arrays(scope))
        return [self.call(scope, callee, plain_arrays=True)]

    # ---- the forms users write (issue 13) -----------------------------------------------------
    def sequences(self, scope):
        return scope.of(LIST) + scope.of(TUPLE)

    def s_sequence(self, scope, depth):
        """t = [e, f, c] or t = (e, f, c): a Python list or tuple of active floats."""
        kind = self.choose([(2, TUPLE), (1, LIST)])
        name = self.fresh(LOCAL_PREFIX[kind])
        items = [self.float_expr(scope, self.operand_depth) for _ in range(SEQUENCE_LENGTH - 1)]
        items.insert(self.draw(st.integers(0, SEQUENCE_LENGTH - 1)), self.one_of(FLOAT_CONSTANTS))
        scope.variables[name] = kind
        self.features.add(f"form:{kind}")
        text = ", ".join(items)
        return [f"{name} = [{text}]" if kind == LIST else f"{name} = ({text})"]

    def s_sequence_update(self, scope, depth):
        """t[k] = e (a list), or s1, s2, s3 = t (a tuple or a list)."""
        name = self.one_of(self.sequences(scope))
        if scope.variables[name] == LIST and self.chance(70):
            index = self.sequence_index(scope)
            value = self.float_expr(scope, self.operand_depth)
            if self.is_carried(scope, name):
                return [f"{name}[{index}] = math.tanh({value})"]
            return [f"{name}[{index}] {self.one_of(['=', '+=', '*='])} {value}"]
        targets = [self.fresh("s") for _ in range(SEQUENCE_LENGTH)]
        scope.variables.update((t, FLOAT) for t in targets)
        self.features.add("form:sequence_unpack")
        return [f"{', '.join(targets)} = {name}"]

    def sequence_index(self, scope):
        if scope.of(INT) and self.chance(30):
            return parens(f"{self.int_expr(scope)} % {SEQUENCE_LENGTH}")
        return str(self.draw(st.integers(-SEQUENCE_LENGTH, SEQUENCE_LENGTH - 1)))

    def s_assign_matrix(self, scope, depth):
        """A new N x N matrix: a fresh one, a copy, or (through matrix_expr) a view of another."""
        name = self.fresh(LOCAL_PREFIX[MATRIX])
        matrices = scope.of(MATRIX)
        if matrices and self.chance(20):
            value = f"{self.one_of(matrices)}.copy()"
        else:
            value = self.matrix_expr(scope, self.expression_depth)
        core = value[1:-1] if value.startswith("(") else value
        fresh = core.startswith(("np.outer(", "np.eye(", "np.zeros(", "np.ones(", "np.full(")) or \
            core.endswith(".copy()")
        if fresh and not core.endswith(".T"):
            self.contiguous.add(name)
        self.note_view(name, value, scope)
        scope.variables[name] = MATRIX
        return [f"{name} = {value}"]

    def note_view(self, name, value, scope):
        """Remember that `name` shares the memory of the array `value` starts with, if it does."""
        base = re.match(r"\(?(?:np\.(?:transpose|swapaxes|reshape)\()?(\w+)", value)
        if base and base.group(1) in scope.variables and scope.variables[base.group(1)] in (ARRAY, MATRIX):
            root = base.group(1)
            self.view_base[name] = self.view_base.get(root, root)

    def s_assign_view(self, scope, depth):
        """w = A.T[i], w = x[::-1], V = A.T, ...: a name for a view, written through later."""
        arrays, matrices = scope.of(ARRAY), scope.of(MATRIX)
        contiguous = sorted(self.contiguous & set(matrices))
        kind = self.choose([(2 if matrices else 0, MATRIX), (3, ARRAY)])
        if kind == MATRIX:
            form = self.one_of(self.writable_views(MATRIX_FORMS["view"]) + ["{A}"])
        else:
            forms = [f for f in self.writable_views(ARRAY_VIEW_FORMS) if "{A}" not in f or matrices]
            forms = [f for f in forms if "{x}" not in f or arrays]
            form = self.one_of(forms + (CONTIGUOUS_ARRAY_VIEW_FORMS if contiguous else []))
        makers = self.makers(scope, self.operand_depth)
        makers.update(C=lambda: self.one_of(contiguous))
        value = self.fill(form, **makers)
        name = self.fresh(LOCAL_PREFIX[kind])
        self.note_view(name, value, scope)
        scope.variables[name] = kind
        self.features.add("form:view_variable")
        return [f"{name} = {value}"]

    def is_carried(self, scope, name):
        return name in scope.carried or self.view_base.get(name) in scope.carried

    def s_view_write(self, scope, depth):
        """A write through a view: A.T[i, j] = e, np.swapaxes(A, 0, 1)[i] *= e, x[::2][k] = e, ..."""
        arrays, matrices = scope.of(ARRAY), scope.of(MATRIX)
        contiguous = sorted(self.contiguous & set(scope.variables))
        contiguous_arrays = [n for n in contiguous if scope.variables[n] == ARRAY]
        contiguous_matrices = [n for n in contiguous if scope.variables[n] == MATRIX]
        forms = []
        if arrays:
            forms += VIEW_WRITE_FORMS[ARRAY]
        if matrices:
            forms += [f for f in self.writable_views(VIEW_WRITE_FORMS[MATRIX]) if "{x}" not in f or arrays]
        if arrays:
            forms += [f for f in VIEW_WRITE_FORMS["contiguous"] if
                      ("{y}" not in f or contiguous_arrays) and ("{C}" not in f or contiguous_matrices)]
        form = self.one_of(forms)
        target = {"v": lambda: self.one_of(arrays), "A": lambda: self.one_of(matrices),
                  "y": lambda: self.one_of(contiguous_arrays), "C": lambda: self.one_of(contiguous_matrices)}
        name = target[re.match(r"(?:np\.\w+\()?\{(\w)\}", form).group(1)]()
        carried = self.is_carried(scope, name)
        if carried:                     # values written again and again across a loop stay bounded
            form = re.sub(r" (\*=|\+=) ", " = ", form)
        makers = self.makers(scope, self.operand_depth)
        e, x = makers["e"], makers["x"]
        makers.update(v=lambda: name, A=lambda: name, y=lambda: name, C=lambda: name,
                      e=(lambda: f"math.tanh({e()})") if carried else e,
                      x=(lambda: f"np.tanh({x()})") if carried else x)
        self.features.update({"element_write", "form:view_write"})
        return [self.fill(form, **makers)]

    def s_stencil(self, scope, depth):
        """A stencil step inside a loop: a slice of an array (or of a matrix) set from overlapping
        slices of itself or of another array (heat, upwind, shifts, a start that moves with the
        loop, 2-D diffusion), or a step of several statements (STENCIL_STEPS)."""
        arrays, matrices = scope.of(ARRAY), scope.of(MATRIX)
        forms = (STENCIL_FORMS[ARRAY] + list(STENCIL_STEPS) if arrays else []) + \
            (STENCIL_FORMS[MATRIX] if matrices else [])
        form = self.one_of([f for f in forms if "{x}" not in f or arrays])
        makers = self.makers(scope, self.operand_depth)
        makers.update(v=lambda: self.one_of(arrays), A=lambda: self.one_of(matrices),
                      B=lambda: self.one_of(matrices), r=lambda: self.stencil_coefficient(scope),
                      k=lambda: self.slice_start(scope))
        self.features.update({"element_write", "form:stencil_2d" if form in STENCIL_FORMS[MATRIX] else "form:stencil"})
        if form in STENCIL_STEPS:
            self.features.add(f"form:{form}")
            makers["w"] = lambda: self.fresh("w")
            return self.fill("\n".join(STENCIL_STEPS[form]), **makers).split("\n")
        return [self.fill(form, **makers)]

    def stencil_coefficient(self, scope):
        """A coefficient in [0, 0.25], a constant or an active value."""
        form = self.one_of(STENCIL_COEFFICIENTS)
        return parens(self.fill(form, e=lambda: self.float_expr(scope, self.operand_depth - 1)))

    def slice_start(self, scope):
        """A slice start in [0, 3): it may change from one step of the loop to the next."""
        bounded = sorted(scope.bounded & set(scope.variables))
        start = self.one_of(bounded) if bounded and self.chance(70) else self.int_expr(scope, lengths=False)
        return parens(f"{start} % 3")

    def s_time_loop(self, scope, depth):
        """for i in range(S): mostly stencil steps -- a time loop of slice updates (issue 14)."""
        loop = self.fresh("i")
        steps = self.draw(st.integers(2, 6))
        inner = scope.child(loop=True)
        inner.variables[loop] = INT
        if steps <= N:
            inner.bounded.add(loop)
        body = []
        for _ in range(self.draw(st.integers(1, 3))):
            body += self.s_stencil(inner, depth + 1) if self.chance(70) else self.statement(inner, depth + 1)
        body += self.export(inner)
        self.features.add("form:time_loop")
        return [f"for {loop} in range({steps}):"] + indent(body)

    def matrix_expr(self, scope, depth):
        """An N x N float matrix."""
        matrices = scope.of(MATRIX)
        self.features.add("form:matrix")
        if not matrices:
            return self.fill("np.outer({a}, {b})", **self.makers(scope, depth - 1))
        leaf = depth <= 0
        callees = [f for f in self.functions if f.returns == (MATRIX,)]
        kind = self.choose([(4, "variable"), (0 if leaf else 3, "arithmetic"), (0 if leaf else 2, "ufunc"),
                            (0 if leaf else 1, "product"), (0 if leaf else 2, "view"), (0 if leaf else 1, "fill"),
                            (0 if leaf or not callees else 2, "call")])
        if kind == "variable":
            return self.one_of(matrices)
        if kind == "call":
            return self.call(scope, self.one_of(callees))
        forms = self.writable_views(MATRIX_FORMS[kind]) if kind == "view" else MATRIX_FORMS[kind]
        return parens(self.fill(self.one_of(forms), **self.makers(scope, depth)))

    def user_float(self, scope, depth):
        """A float from the forms users write: builtins on arrays, norms with an ord, matrices."""
        kind = self.choose([(3 if scope.of(ARRAY) else 0, "builtin"), (2, "norm"), (2, "matrix"),
                            (2 if self.weights["stencil"] else 0, "scaled")])
        forms = {"builtin": BUILTIN_ON_ARRAY_FORMS, "norm": NORM_ORD_FORMS, "matrix": MATRIX_FLOAT_FORMS,
                 "scaled": SCALED_FLOAT_FORMS}[kind]
        if not scope.of(MATRIX):
            forms = [f for f in forms if "{A}" not in f]
        if not scope.of(ARRAY):
            forms = [f for f in forms if "{x}" not in f]
        self.features.add(f"form:{kind}_float")
        return parens(self.fill(self.one_of(forms), **self.makers(scope, depth)))

    def user_array(self, scope, depth):
        """An array from active scalar bounds or elements (arange, linspace, np.array), or from matrices."""
        kind = self.choose([(3, "active_bounds"), (2, "from_matrix"), (2 if self.weights["stencil"] else 0, "scaled")])
        forms = {"active_bounds": ACTIVE_BOUND_FORMS, "from_matrix": ARRAY_FROM_MATRIX_FORMS,
                 "scaled": SCALED_ARRAY_FORMS}[kind]
        if not scope.of(MATRIX):
            forms = [f for f in forms if "{A}" not in f]
        form = self.one_of(forms)
        self.features.add(f"form:{kind}" if kind != "scaled" else "form:scaled_array")
        if form.startswith("np.arange("):
            self.features.add("active_arange")
        return parens(self.fill(form, **self.makers(scope, depth)))

    def view_argument(self, scope, kind):
        """A view to pass to a helper (which may write into it), or None."""
        arrays, matrices = scope.of(ARRAY), scope.of(MATRIX)
        if kind == MATRIX and matrices:
            forms = self.writable_views(MATRIX_FORMS["view"])
        elif kind == ARRAY and (arrays or matrices):
            forms = [f for f in self.writable_views(ARRAY_VIEW_FORMS)
                     if ("{A}" not in f or matrices) and ("{x}" not in f or arrays)]
        else:
            return None
        self.features.add("form:view_argument")
        return self.fill(self.one_of(forms), **self.makers(scope, 0))

    def writable_views(self, forms):
        """`forms` less the views through np.transpose/np.swapaxes while that bug is avoided."""
        if "transpose_function_view_write" not in self.avoid:
            return forms
        return [f for f in forms if not f.startswith(TRANSPOSE_FUNCTIONS)]

    def return_statement(self, scope):
        """Return values of the function's kinds; the first also adds up the live locals; a later
        array or matrix may be a view of a parameter (the caller may write into it)."""
        parts = [self.expression(scope, kind, self.operand_depth) for kind in scope.returns]
        for k, kind in enumerate(scope.returns[1:], 1):
            if kind in (ARRAY, MATRIX) and self.sometimes("view_write", percent_per_weight=10):
                parts[k] = self.view_argument(scope, kind) or parts[k]
        terms = self.live_terms(scope, ())
        if terms and scope.returns[0] != INT:
            parts[0] = f"{parens(parts[0])} + ({' + '.join(terms)})"
        return "return " + ", ".join(parts)

    # ---- expressions ---------------------------------------------------------------------------
    def expression(self, scope, kind, depth):
        if kind == FLOAT:
            return self.float_expr(scope, depth)
        if kind == ARRAY:
            return self.array_expr(scope, depth)
        if kind == MATRIX:
            return self.matrix_expr(scope, depth)
        return self.int_expr(scope)

    def float_expr(self, scope, depth):
        floats, arrays = scope.of(FLOAT), scope.of(ARRAY)
        leaf = depth <= 0
        callees = [f for f in self.functions if f.returns == (FLOAT,)]
        kind = self.choose([
            (6 if floats else 0, "variable"),
            (1 if floats or arrays else 3, "constant"),
            (4 if arrays else 0, "element"),
            (1 if scope.of(INT) else 0, "from_int"),
            (0 if leaf else 6, "arithmetic"),
            (0 if leaf else 2, "division"),
            (0 if leaf else 1, "negate"),
            (0 if leaf else 2, "power"),
            (0 if leaf else 4, "math_call"),
            (0 if leaf else 2, "builtin"),
            (0 if leaf else 1, "ternary"),
            (0 if leaf or not arrays else self.weights["reduction"], "reduction"),
            (0 if leaf or not callees else 2, "call"),
            (0 if leaf else 1, "truncate"),
            (0 if leaf else self.weights["user_expr"], "user_float"),
            (2 * self.weights["sequence"] if self.sequences(scope) else 0, "sequence"),
        ])
        if kind == "variable":
            return self.one_of(floats)
        if kind == "user_float":
            return self.user_float(scope, depth)
        if kind == "sequence":
            form = self.one_of(SEQUENCE_FLOAT_FORMS[:1] if leaf else SEQUENCE_FLOAT_FORMS)
            return parens(self.fill(form, **self.makers(scope, depth)))
        if kind == "constant":
            return self.one_of(FLOAT_CONSTANTS)
        if kind == "element":
            if not leaf and self.chance(10):
                return f"{parens(self.array_expr(scope, depth - 1))}[{self.index(scope)}]"
            return f"{self.one_of(arrays)}[{self.index(scope)}]"
        if kind == "reduction":
            return self.reduction(scope, depth)
        if kind == "call":
            return self.call(scope, self.one_of(callees))
        forms = FLOAT_FORMS[kind]
        if kind == "math_call" and self.in_test and "log_base_in_test" in self.avoid:
            forms = [f for f in forms if f != LOG_BASE]
        return parens(self.fill(self.one_of(forms), **self.makers(scope, depth)))

    def makers(self, scope, depth):
        """How to draw each placeholder of a template: {e} {f} floats, {a} {b} arrays, ..."""
        return dict(e=lambda: self.float_expr(scope, depth - 1), f=lambda: self.float_expr(scope, depth - 1),
                    s=lambda: self.float_expr(scope, min(depth - 1, 1)),
                    a=lambda: self.array_expr(scope, depth - 1), b=lambda: self.array_expr(scope, depth - 1),
                    t=lambda: self.bounded_float(scope, depth - 1), n=lambda: self.int_expr(scope),
                    c=lambda: self.one_of(FLOAT_CONSTANTS), x=lambda: self.one_of(scope.of(ARRAY)),
                    m=lambda: self.one_of(["math", "np"]) if self.chance(30) else "math",
                    q=lambda: self.condition(scope, depth - 1),
                    M=lambda: self.matrix_expr(scope, depth - 1), P=lambda: self.matrix_expr(scope, depth - 1),
                    A=lambda: self.one_of(scope.of(MATRIX)), i=lambda: self.index(scope),
                    j=lambda: self.index(scope), k=lambda: str(self.draw(st.integers(-N // 2, N // 2 - 1))),
                    n16=lambda: str(self.draw(st.integers(-N * N, N * N - 1))),
                    g=lambda: self.one_of(self.sequences(scope)), k3=lambda: self.sequence_index(scope))

    def fill(self, template, **makers):
        """`template` with each distinct {placeholder} drawn once, in order of appearance."""
        values = {}
        for name in re.findall(r"\{(\w+)\}", template):
            if name not in values:
                values[name] = makers[name]()
        return template.format(**values)

    def bounded_float(self, scope, depth):
        return self.fill(self.one_of(BOUNDED_FORMS), e=lambda: self.float_expr(scope, depth))

    def reduction(self, scope, depth):
        """A float from arrays: sum/mean/max/min, dot products and reductions of slices."""
        forms = REDUCTION_FORMS
        if "dot_method" in self.avoid:
            forms = [f for f in forms if ").dot(" not in f]
        form = self.one_of(forms)
        first, second = self.one_of([("[1:]", "[:-1]"), ("[::2]", "[1::2]"), ("[:2]", "[2:]")])
        makers = self.makers(scope, depth)
        makers.update(y=lambda: self.one_of(scope.of(ARRAY)), p=lambda: first, r=lambda: second,
                      o=lambda: self.one_of(["-", "*", "+"]))
        return self.fill(form, **makers)

    def array_expr(self, scope, depth):
        arrays = scope.of(ARRAY)
        leaf = depth <= 0
        if not arrays:
            if not leaf and self.sometimes("user_expr", percent_per_weight=10):
                return self.user_array(scope, depth)
            return self.one_of([f"np.ones({N})", f"np.zeros({N})"])
        callees = [f for f in self.functions if f.returns == (ARRAY,)]
        kind = self.choose([
            (4, "variable"),
            (0 if leaf else 5, "arithmetic"),
            (0 if leaf else 2, "with_scalar"),
            (0 if leaf else 1, "division"),
            (0 if leaf else 1, "negate"),
            (0 if leaf else 4, "ufunc"),
            (0 if leaf else 2, "select"),
            (0 if leaf else 1, "reorder"),
            (0 if leaf else 1, "fill"),
            (0 if leaf or not callees else 2, "call"),
            (0 if leaf else self.weights["user_expr"], "user_array"),
        ])
        if kind == "variable":
            return self.one_of(arrays)
        if kind == "call":
            return self.call(scope, self.one_of(callees))
        if kind == "user_array":
            return self.user_array(scope, depth)
        return parens(self.fill(self.one_of(ARRAY_FORMS[kind]), **self.makers(scope, depth)))

    def int_expr(self, scope, lengths=True):
        ints, arrays = scope.of(INT), scope.of(ARRAY)
        kind = self.choose([(3, "constant"), (3 if ints else 0, "variable"),
                            (1 if arrays and lengths else 0, "length"), (1 if ints else 0, "arithmetic")])
        if kind == "constant":
            return str(self.draw(st.integers(0, 3)))
        if kind == "variable":
            return self.one_of(ints)
        if kind == "length":
            return self.one_of([f"len({self.one_of(arrays)})", f"{self.one_of(arrays)}.shape[0]"])
        return parens(f"{self.one_of(ints)} {self.one_of(['+', '-', '*'])} {self.draw(st.integers(1, 2))}")

    def index(self, scope):
        """An index that is in bounds for an array of length N."""
        bounded = sorted(scope.bounded & set(scope.variables))
        kind = self.choose([(3, "constant"), (4 if bounded else 0, "loop"), (2 if scope.of(INT) else 0, "modulo")])
        if kind == "constant":
            return str(self.draw(st.integers(-N, N - 1)))
        if kind == "loop":
            i = self.one_of(bounded)
            return self.one_of([i, f"-1 - {i}", f"{i} - 1", f"{N - 1} - {i}", f"({i} + 1) % {N}"])
        return parens(f"{self.int_expr(scope)} % {N}")

    def condition(self, scope, depth):
        outer, self.in_test = self.in_test, True
        try:
            return self.test(scope, depth)
        finally:
            self.in_test = outer

    def test(self, scope, depth):
        kind = self.choose([(5, "compare"), (1 if scope.of(INT) else 0, "parity"),
                            (0 if depth <= 0 else 1, "and_or"), (0 if depth <= 0 else 1, "not")])
        if kind == "compare":
            op = self.one_of(["<", ">", "<=", ">="])
            return f"{self.float_expr(scope, 1)} {op} {self.float_expr(scope, 1)}"
        if kind == "parity":
            return f"{self.one_of(scope.of(INT))} % 2 == {self.draw(st.integers(0, 1))}"
        if kind == "and_or":
            return parens(f"{self.condition(scope, depth - 1)} {self.one_of(['and', 'or'])} "
                          f"{self.condition(scope, depth - 1)}")
        return f"not {parens(self.condition(scope, depth - 1))}"

    def call_the_uncalled(self, scope):
        """Calls of the earlier functions this one has not called yet, so that their code matters."""
        lines = []
        for callee in self.functions:
            if callee.name not in self.called:
                names = [self.fresh(LOCAL_PREFIX[k]) for k in callee.returns]
                lines.append(f"{', '.join(names)} = {self.call(scope, callee)}")
                scope.variables.update(zip(names, callee.returns))
        return lines

    def call(self, scope, callee, plain_arrays=False):
        """A call of an earlier function with arguments of the kinds it takes."""
        self.called.add(callee.name)
        args = []
        for _, kind in callee.params:
            view = None
            if kind in (ARRAY, MATRIX) and self.sometimes("view_write", percent_per_weight=10):
                view = self.view_argument(scope, kind)
            if view:
                args.append(view)
            elif kind == ARRAY and (plain_arrays or self.chance(60)):
                args.append(self.one_of(scope.of(ARRAY)) if scope.of(ARRAY) else f"np.ones({N})")
            elif kind == MATRIX and scope.of(MATRIX) and (plain_arrays or self.chance(60)):
                args.append(self.one_of(scope.of(MATRIX)))
            elif kind == INT:
                args.append(self.int_expr(scope, lengths="inactive_call_argument" not in self.avoid))
            else:
                args.append(self.expression(scope, kind, 1))
        return f"{callee.name}({', '.join(args)})"


@st.composite
def programs(draw, flavor=None, max_functions=3, max_statements=5, max_depth=2, expression_depth=3,
             avoid=frozenset()):
    """A random valid Program.

    flavor: "loops", "vector" or "mixed" (drawn if None), or "user" (the forms of issue 13
    often: lists, matrices and views written through, builtins, norms with ord, decorated
    helpers); max_functions: functions in the
    module; max_statements: top-level statements per function; max_depth: nesting of if/for/
    while blocks; expression_depth: nesting of operations in an assigned value; avoid: names
    from AVOIDABLE.
    """
    if flavor is None:
        flavor = draw(st.sampled_from(["mixed", "loops", "vector"]))
    return Builder(draw, flavor, max_functions, max_statements, max_depth, expression_depth,
                   avoid).program()


# ---- the same program on jax.numpy ------------------------------------------------------------
JAX_MATH = {"fabs": "abs", "atan": "arctan", "atan2": "arctan2", "asin": "arcsin", "acos": "arccos",
            "asinh": "arcsinh", "acosh": "arccosh", "atanh": "arctanh", "pow": "power"}


class ToJax(ast.NodeTransformer):
    """np.* -> jnp.*, math.* -> jnp.*, float(e) -> e * 1.0, x.copy() kept (jnp arrays have it)."""

    def visit_Call(self, node):
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Name) and func.id == "float":
            return ast.BinOp(node.args[0], ast.Mult(), ast.Constant(1.0))
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "math":
            if func.attr == "log" and len(node.args) == 2:
                log = lambda a: ast.Call(ast.Attribute(ast.Name("jnp", ast.Load()), "log", ast.Load()), [a], [])  # noqa: E731
                return ast.BinOp(log(node.args[0]), ast.Div(), log(node.args[1]))
            if func.attr in ("erf", "erfc"):
                node.func = ast.Attribute(ast.Name("jax_special", ast.Load()), func.attr, ast.Load())
                return node
            func.attr = JAX_MATH.get(func.attr, func.attr)
            func.value.id = "jnp"
        return node

    def visit_Name(self, node):
        if node.id == "np":
            node.id = "jnp"
        return node

    def visit_FunctionDef(self, node):
        """@numba.njit left out: JAX traces the Python function."""
        self.generic_visit(node)
        node.decorator_list = [d for d in node.decorator_list if ast.unparse(d) != "numba.njit"]
        return node


def jax_source(source):
    """The module `source` with jax.numpy in place of numpy and math (for jax.jvp)."""
    tree = ToJax().visit(ast.parse(source))
    header = "import functools\nimport jax.numpy as jnp\nimport jax.scipy.special as jax_special\n"
    body = [n for n in tree.body if not isinstance(n, ast.Import)]
    return header + ast.unparse(ast.fix_missing_locations(ast.Module(body, []))) + "\n"
