"""Calling fwdad from your own @numba.njit code: `f.tangent_njit` and `f.primal_njit`.

`f.tangent_njit(*primals, *tangents)` takes one tangent per parameter, exactly like `f.jvp`,
with None for the ones not differentiated, and returns (value, tangent). It is a Numba-callable
function: inside compiled code Numba's types pick (and fwdad generates, on first use) the
tangent code specialized for them, so a simulation loop calls value + JVP with no Python in
between.
"""
import keyword
import re

from numba.core import types
from numba.extending import overload

from ..codegen import NUMBA_OPTIONS, compile_source
from ..nested import tangent_njit_implementation


def as_is(function):
    return function


def tangent_njit(forward):
    """A function callable from @numba.njit code computing (value, J . tangents)."""
    n = len(forward.parameters)
    params = [f"p{i}" for i in range(n)] + [f"t{i}" for i in range(n)]
    stub = compile_source(f"def stub({', '.join(params)}):\n"
                          f"    raise NotImplementedError('call this from @numba.njit code; use .jvp from Python')\n",
                          "stub", {}, as_is)
    stub.__name__ = stub.__qualname__ = identifier(forward.__name__) + "_tangent"
    stub.fwdad_typed = tangent_njit_implementation(forward)    # differentiated: nested.TypedCallee
    stub.fwdad_digest = lambda: f"tangent_njit {forward.unit.digest}"
    stub.fwdad_is_current = lambda: forward.unit.is_current()

    def implementation(*arg_types):
        primal_types = tuple(types.unliteral(t) for t in arg_types[:n])
        active = [i for i, t in enumerate(arg_types[n:]) if not isinstance(t, (types.NoneType, types.Omitted))]
        spec = forward.unit.specialization(primal_types, active)
        call = [f"p{i}" for i in range(n)] + [f"t{i}" for i in sorted(spec.active)]
        return compile_source(f"def impl({', '.join(params)}):\n    return jvp({', '.join(call)})\n", "impl",
                              {"jvp": spec.jvp}, as_is)

    typing_function = compile_source(            # Numba wants the stub's exact signature
        f"def typing_function({', '.join(params)}):\n    return implementation({', '.join(params)})\n",
        "typing_function", {"implementation": implementation}, as_is)
    overload(stub, jit_options=dict(NUMBA_OPTIONS))(typing_function)
    return stub


def primal_njit(forward):
    """The compiled primal, callable from @numba.njit code (the Numba dispatcher itself)."""
    return forward.unit.primal


def identifier(name):
    """`name` as a plain Python identifier (other characters become _), for names shown to
    users. Generated code never contains it: a function's __name__ can be any string."""
    text = re.sub(r"\W", "_", str(name)) or "function"
    if text[0].isdigit() or keyword.iskeyword(text):
        text = "_" + text
    return text if text.isidentifier() else "function"
