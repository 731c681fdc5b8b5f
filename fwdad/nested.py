"""Callees whose code depends on the argument types at the call, and the generated wrappers that
make fwdad differentiate its own tangent code (second derivatives: fwdad/second_order.py).

`g.tangent_njit(...)` called inside a function fwdad differentiates becomes a call of g's
tangent code for the call's pattern of None tangents (`TypedCallee`), differentiated like any
helper: the inner tangents are ordinary variables of the inner code, so an outer perturbation
is never confused with an inner one. `fwdad_runtime.norm_ord_jvp` (an overload stub in tangent
code) is read the same way, through the helper it runs for its argument types.
"""
from numba.core import types

from . import codegen

NONE_TYPES = (types.NoneType, types.Omitted)


def generated_function(source, name, namespace):
    """The plain Python function `name` of generated `source`, readable by fwdad (linecache)."""
    return codegen.compile_source(source, name, namespace, lambda function: function)


# ---- callees whose code depends on the argument types --------------------------------------------
class TypedCallee:
    """A function Numba compiles as it is (an @overload stub) but whose code depends on the
    argument types at the call: `stub.fwdad_typed(arg_types)` names the readable function that
    runs for them and the argument positions it takes. fwdad differentiates a one-line wrapper
    `def stub(a0, a1, a2, a3): return implementation(a0, a1, a3)` per argument types.

    Two kinds: `g.tangent_njit` called inside differentiated code (its derivative is that of g's
    tangent code: forward over forward) and fwdad_runtime.norm_ord_jvp in tangent code."""

    def __init__(self, compiler, stub):
        self.compiler, self.stub = compiler, stub
        self.choose = stub.fwdad_typed
        self.wrappers = {}
        digest = getattr(stub, "fwdad_digest", None)
        self.digest = f"typed {digest() if digest is not None else stub.__qualname__}"

    def is_current(self):
        current = getattr(self.stub, "fwdad_is_current", None)
        return current() if current is not None else True

    def dispatcher(self, target):
        return self.stub

    def wrapper_unit(self, arg_types):
        key = tuple(types.unliteral(t) for t in arg_types)
        if key not in self.wrappers:
            implementation, positions = self.choose(key)
            name = self.stub.__name__
            params = [f"a{i}" for i in range(len(arg_types))]
            call = ", ".join(params[i] for i in positions)
            source = f"def {name}({', '.join(params)}):\n    return implementation({call})\n"
            function = generated_function(source, name, {"implementation": implementation})
            self.wrappers[key] = self.compiler.unit(function)
        return self.wrappers[key]

    def specialization(self, arg_types, active, mode):
        return self.wrapper_unit(arg_types).specialization(arg_types, active, mode)

    def written_parameters(self, arg_types):
        return self.wrapper_unit(arg_types).written_parameters()


def tangent_njit_implementation(forward):
    """fwdad_typed of `forward.tangent_njit`: its specialization's JVP for the call's types
    (the primals, then the tangents that are not None)."""
    n = len(forward.parameters)

    def choose(arg_types):
        primal_types = tuple(arg_types[:n])
        active = tuple(i for i, t in enumerate(arg_types[n:]) if not isinstance(t, NONE_TYPES))
        spec = forward.unit.specialization(primal_types, active, "plain")    # unfused: read again
        return spec.jvp, tuple(range(n)) + tuple(n + i for i in active)
    return choose
