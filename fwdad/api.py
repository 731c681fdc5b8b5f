"""The public API: @forward_grad, ForwardFunction, jvp and defjvp."""
import functools
import inspect
import weakref

from numba.core.errors import NumbaError

from . import execution, options, second_order
from .arguments import (arg_type, check_tangent, differentiated, fast_key, is_float, placed,
                        primals_and_tangents, refuse_foreign_byte_order, refuse_foreign_byte_order_inside,
                        tangent_conversion, type_key, zero_like)
from .compiler import USER_RULES, Compiler, generated_source, numba_error
from .device import host_like
from .drivers.batch import batch_jvp
from .drivers.embed import tangent_njit
from .drivers.gradients import exact_gradient_driver
from .errors import FwdadError, OptionError, TangentMismatchError
from .execution import flush_caches, with_cache_recovery
from .frontend.fence import fence
from .frontend.parse import parse, python_function
from .prepared import PreparedExact, PreparedGradient, PreparedJvp
from .random import DISTRIBUTIONS
from .targets import target_named

_COMPILERS = {}


def compiler_for(cache, verbose=False):
    key = (bool(cache), bool(verbose))
    if key not in _COMPILERS:
        _COMPILERS[key] = Compiler(cache=cache, verbose=verbose)
    return _COMPILERS[key]


def forward_grad(func=None, *, target="cpu", wrt=None, cache=False, verbose=False):
    """Make `func` differentiable in forward mode; usable as @forward_grad or @forward_grad(...)."""
    if func is None:
        return lambda f: ForwardFunction(f, target=target, wrt=wrt, cache=cache, verbose=verbose)
    return ForwardFunction(func, target=target, wrt=wrt, cache=cache, verbose=verbose)


class ForwardFunction:
    """A function compiled by fwdad: call it for the primal, or ask for JVPs and gradients."""

    def __init__(self, func, target="cpu", wrt=None, cache=False, verbose=False):
        self.backend = target_named(target)         # refuses an unknown target
        self.py_func = python_function(func)
        functools.update_wrapper(self, self.py_func)
        with compiler_for(cache, verbose).timed(f"parse and fence {self.py_func.__name__}"):
            parsed = parse(self.py_func)             # errors in the source surface at decoration
            fence(parsed.tree, parsed.filename)
        self._parsed = parsed                        # the source as decorated: never read again
        self.parameters = [a.arg for a in parsed.tree.args.args]
        self.arity = len(self.parameters)
        self.signature = inspect.signature(self.py_func)
        self.target, self.cache, self.verbose = target, cache, verbose
        self.wrt = options.positions(f"forward_grad({self.py_func.__name__})", wrt, self.parameters)
        self._compiler = compiler_for(cache, verbose)
        self._unit = None
        self._last = None
        self._dispatch = {}
        self._prepared = {}          # (method, options, type keys) -> a call prepared for them
        self._primal_types = set()   # verbose=True: the type keys the primal was called with
        self._tangent_njit = None

    def __repr__(self):
        return f"<fwdad.ForwardFunction {self.__name__} target={self.target!r}>"

    def is_current(self):
        """Whether the globals this function reads are as when it was compiled (True before its
        first compile): fwdad.jvp makes a new ForwardFunction when they changed."""
        return self._unit is None or self._unit.is_current()

    @property
    def unit(self):
        if self._unit is None:
            self._unit = self._compiler.unit(self.py_func, parsed=self._parsed)
        return self._unit

    def _arguments(self, args, kwargs):
        if kwargs or len(args) != len(self.parameters):
            try:
                bound = self.signature.bind(*args, **kwargs)
            except TypeError as error:
                raise TypeError(f"{self.__name__}(): {error}") from None
            bound.apply_defaults()
            args = bound.args
        return tuple(args)

    # ---- the primal ----------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        args = self._arguments(args, kwargs)
        unit = self.unit
        refuse_foreign_byte_order_inside(self.__name__, self.parameters, args)
        try:
            if self.verbose and type_key(args) not in self._primal_types:   # its first call compiles
                self._primal_types.add(type_key(args))
                with self._compiler.timed(f"Numba compile and first run of the primal {self.__name__}"):
                    return with_cache_recovery(unit.primal, args, lambda: flush_caches(unit))
            return with_cache_recovery(unit.primal, args, lambda: flush_caches(unit))
        except NumbaError as error:
            refuse_foreign_byte_order(self.__name__, self.parameters, args)
            raise numba_error(error, [unit.module], f"Numba cannot compile {self.__name__}") from None

    # ---- JVP -----------------------------------------------------------------------------------
    def specialization(self, args, active, mode="scalar"):
        """The compiled specialization for these arguments (looked up by a cheap key per call)."""
        refuse_foreign_byte_order(self.__name__, self.parameters, args)     # before Numba types them
        key = (tuple(fast_key(a) for a in args), tuple(active), mode)
        spec = self._dispatch.get(key)
        if spec is None:
            arg_types = tuple(arg_type(a) for a in args)
            spec = self._dispatch[key] = self.unit.specialization(arg_types, active, mode)
        self._last = spec
        return spec

    def jvp(self, primals, tangents):
        """(f(*primals), the directional derivative of f at primals along tangents).

        One tangent per positional argument, None for the ones not differentiated.
        """
        both = primals + tangents if type(primals) is tuple and type(tangents) is tuple else None
        key = self.call_key("jvp", (), both, 2)
        prepared = self._prepared.get(key)
        if prepared is not None and self.py_func not in USER_RULES:
            self._last = prepared.spec
            result = prepared(primals, tangents)
            if result is not None:
                return result
        primals, tangents, active, checked = self.tangent_arguments("jvp", primals, tangents)
        rule = USER_RULES.get(self.py_func)
        if rule is not None:                       # the user's own rule wins, here too
            full = [zero_like(p) if t is None else c for p, t, c in
                    zip(primals, tangents, placed(active, checked, len(primals)))]
            return self._compiler.unit(rule, primal_only=True).primal(*primals, *full)
        spec = self.specialization(primals, active)
        conversions = [(i, tangent_conversion(primals[i], tangents[i])) for i in active]
        return self.keep(key, PreparedJvp(self, spec, key and key[-1], conversions), primals, checked)

    def call_key(self, method, options, values, per_parameter=1):
        """The key of a prepared call: the method, its options and the type key of the values;
        None (prepared every time) unless the values are a tuple of `per_parameter` values per
        parameter (the primals, then the tangents) of types with a fingerprint (arguments.type_key)."""
        if type(values) is not tuple or len(values) != per_parameter * self.arity:
            return None
        key = type_key(values)
        return None if key is None else (method, options, key)

    def keep(self, key, prepared, *args):
        """prepared.run(*args), the first call (it compiles); kept for later calls with `key`
        once it returned (a key of None: prepared again next time)."""
        result = prepared.run(*args)
        if key is not None:
            self._prepared[key] = prepared
        return result

    def tangent_arguments(self, method, primals, tangents):
        """(primals, tangents, active positions, their tangents in the primals' dtypes), checked."""
        who = f"{self.__name__}.{method}"
        primals, tangents = primals_and_tangents(who, primals, tangents)
        if len(tangents) != len(primals):
            raise TangentMismatchError(
                f"{who} got {len(primals)} primals but {len(tangents)} tangents.\n"
                "What to do: pass one tangent per argument, None for the ones not differentiated.")
        primals = self._arguments(primals, {})
        tangents = tangents + (None,) * (len(primals) - len(tangents))
        active = [i for i, t in enumerate(tangents) if t is not None]
        checked = [check_tangent(self.__name__, self.parameters[i], i, primals[i], tangents[i]) for i in active]
        return primals, tangents, active, checked

    def jvp2(self, primals, tangents):
        """(f, f'[v], f''[v, v]) at primals along v = tangents: Taylor order 2 in one pass, fwdad
        differentiating its own tangent code (docs/second-order.md)."""
        primals, _, active, checked = self.tangent_arguments("jvp2", primals, tangents)
        return second_order.jvp2(self, primals, active, checked)

    def hvp(self, args, v):
        """H . v for scalar f, over the differentiated arguments (wrt, else every float one); one
        outer direction per input scalar (reverse over forward would need one pass)."""
        args = tuple(args)
        _, _, given, checked = self.tangent_arguments("hvp", args, v)
        return second_order.hvp(self, args, self.active_positions(args), given, checked)

    def hessian(self, *args, sparse=False, sparsity=None, **kwargs):
        """The Hessian of scalar f: H[i][j] of shape args[i].shape + args[j].shape (None for
        arguments not differentiated); sparse=True or a pattern as sparsity=: one scipy.sparse CSR
        matrix over the flattened differentiated arguments, from a colored outer pass."""
        args = self.option_arguments(f"{self.__name__}.hessian", args, kwargs, ("sparse", "sparsity"))
        return second_order.hessian(self, args, self.active_positions(args), sparse, sparsity)

    def run(self, spec, dispatcher, args):
        """dispatcher(*args): compiled code around the specialization `spec` (a tangent function
        or a driver), with errors at the user's line (fwdad.execution); `spec` becomes the one
        whose code .source shows."""
        self._last = spec
        return execution.run(spec, dispatcher, args, self.py_func)

    def batch_jvp(self, primals, tangents, in_axes=None):
        """(values, tangents) of many instances at once; see fwdad.batch (one GPU thread each on
        target="cuda", one core each on target="parallel")."""
        return batch_jvp(self, primals, tangents, in_axes)

    # ---- gradients -----------------------------------------------------------------------------
    def active_positions(self, args):
        """The differentiated positions of a call: wrt (each a float argument), else every float."""
        if self.wrt is None:
            positions = [i for i, a in enumerate(args) if is_float(a)]
        else:
            positions = list(self.wrt)
            for i in positions:
                if not is_float(args[i]):
                    raise TangentMismatchError(
                        f"{self.__name__}: wrt names argument {self.parameters[i]!r}, which is "
                        f"{type(args[i]).__name__}, not a float or float array.\nWhat to do: pass "
                        "a float value for it, or leave it out of wrt.")
        if not positions:
            raise FwdadError(f"{self.__name__} has no float argument to differentiate.\nWhat to "
                             "do: pass floats (e.g. 1.0 rather than 1) or float arrays.")
        return positions

    def _exact_driver(self, args, active, jacobian):
        """(the value_and_grad or jacobian driver for these arguments, the specialization it runs)."""
        vector = self.specialization(args, active, "vector")
        scalar = self.specialization(args, active)
        return exact_gradient_driver(self.backend, scalar, vector, jacobian)

    def option_arguments(self, who, args, kwargs, option_names):
        """The call's arguments (positional and keyword, as the primal takes them); a parameter
        named like one of the method's options must be passed positionally, else the keyword
        would be ambiguous."""
        for name in option_names:
            if name in self.parameters and self.parameters.index(name) >= len(args):
                raise OptionError(
                    f"{who}: {self.__name__} has a parameter named {name!r}, which is also an "
                    f"option of this method, and it was not passed by position.\nWhat to do: pass "
                    f"{name!r} positionally (the keyword {name}= sets the option).")
        return self._arguments(args, kwargs)

    def forward_gradient(self, *args, seed=0, directions=1, distribution="normal", **kwargs):
        """(f(*args), g) with g = (1/K) sum_k (grad f . v_k) v_k, v_k drawn from `seed`.

        grads has one entry per argument (None for the inactive ones).
        """
        simple = not kwargs and type(directions) is int and type(distribution) is str
        key = self.call_key("forward_gradient", (directions, distribution), args) if simple else None
        prepared = self._prepared.get(key)
        if prepared is not None:
            self._last = prepared.spec
            result = prepared(args, seed)
            if result is not None:
                return result
        who = f"{self.__name__}.forward_gradient"
        args = self.option_arguments(who, args, kwargs, ("seed", "directions", "distribution"))
        seed, directions = options.seed(who, seed), options.integer(who, "directions", directions, 1)
        distribution = options.choice(who, "distribution", distribution, tuple(DISTRIBUTIONS))
        active = self.active_positions(args)
        spec, gradient = self.backend.forward_gradient(self, args, active, directions, distribution)
        return self.keep(key, PreparedGradient(key and key[-1], spec, gradient), args, seed)

    def cuda_jvp(self, *args, active=None):
        """The CUDA device function computing (value, tangent) for arguments like `args`.

        Call it from your own @cuda.jit kernels as jvp(*args, *tangents_of_active_args);
        `active` lists the differentiated positions (default: every float argument).
        """
        args = tuple(host_like(a) for a in self._arguments(args, {}))
        active = differentiated(args, active, self.parameters, f"{self.__name__}.cuda_jvp")
        return self.specialization(args, active).device_jvp

    @property
    def tangent_njit(self):
        """Callable from your @numba.njit code: tangent_njit(*primals, *tangents) -> (value, tangent),
        one tangent per parameter (None for the inactive ones), as f.jvp. See docs/api.md."""
        if self._tangent_njit is None:
            self._tangent_njit = tangent_njit(self)
        return self._tangent_njit

    @property
    def primal_njit(self):
        """The compiled primal as a Numba dispatcher, callable from your @numba.njit code."""
        return self.unit.primal

    def cuda_primal(self):
        """The CUDA device function of the primal (callable from your @cuda.jit kernels)."""
        return self.unit.dispatcher(device=True)

    def value_and_grad(self, *args, chunk=None, **kwargs):
        """(f(*args), exact gradient) by forward mode, `chunk` directions per pass."""
        return self.exact("value_and_grad", args, kwargs, chunk, False)

    def exact(self, method, args, kwargs, chunk, jacobian):
        """value_and_grad or the dense jacobian, prepared once per type signature and chunk."""
        simple = not kwargs and (chunk is None or type(chunk) is int)
        key = self.call_key(method, (chunk,), args) if simple else None
        prepared = self._prepared.get(key)
        if prepared is not None:
            self._last = prepared.spec
            result = prepared(args)
            if result is not None:
                return result
        who = f"{self.__name__}.{method}"
        args = self.option_arguments(who, args, kwargs, ("chunk",))
        chunk = options.optional_integer(who, "chunk", chunk, 1)
        active = self.active_positions(args)
        driver, spec = self._exact_driver(args, active, jacobian)
        prepared = PreparedExact(self, args, key and key[-1], active, driver, spec, chunk, jacobian)
        return self.keep(key, prepared, args)

    def jacobian(self, *args, chunk=None, sparse=False, sparsity=None, **kwargs):
        """The Jacobian of f's (scalar or array) output with respect to each active argument.

        One entry per argument (None for the inactive ones), of shape output.shape + arg.shape.
        sparse=True (or a pattern as sparsity=): one scipy.sparse.csr_array per argument instead,
        output elements x argument elements, from a colored compressed pass (fwdad.sparse).
        """
        who = f"{self.__name__}.jacobian"
        if options.flag(who, "sparse", sparse) or sparsity is not None:
            if chunk is not None:
                raise OptionError(f"{who}: chunk={chunk!r} applies to the dense Jacobian; the sparse one "
                                  "runs one pass with a direction per color.\nWhat to do: leave chunk out.")
            from .sparse import sparse_jacobian
            return sparse_jacobian(self, *args, sparsity=sparsity, **kwargs)
        return self.exact("jacobian", args, kwargs, chunk, True)

    def sparsity(self, *args, local=False, **kwargs):
        """The sparsity pattern of the Jacobian, found from the code (a fwdad.sparse.Sparsity);
        local=True: the pattern at this point only (the branches taken here)."""
        from .sparse import jacobian_sparsity
        local = options.flag(f"{self.__name__}.sparsity", "local", local)
        return jacobian_sparsity(self, *args, local=local, **kwargs)

    def hessian_sparsity(self, *args, local=False, **kwargs):
        """The sparsity pattern of scalar f's Hessian, found from the code (a
        fwdad.sparse.HessianSparsity, star-colored); f.hessian(..., sparse=True) uses it."""
        from .sparse.hessian import hessian_sparsity
        local = options.flag(f"{self.__name__}.hessian_sparsity", "local", local)
        return hessian_sparsity(self, *args, local=local, **kwargs)

    @property
    def source(self):
        """The generated tangent code of the most recent specialization, with its callees'."""
        if self._last is None:
            raise FwdadError(
                f"{self.__name__} has no tangent code yet: fwdad generates it for the argument "
                f"types of a call.\nWhat to do: call {self.__name__}.jvp(...) first, or use "
                f"{self.__name__}.source_for(*args).")
        return generated_source(self._last)

    def source_for(self, *args, active=None):
        """The generated tangent code for these arguments (all float arguments active by default)."""
        args = self._arguments(args, {})
        spec = self.specialization(args, differentiated(args, active, self.parameters, f"{self.__name__}.source_for"))
        spec.jvp
        return generated_source(spec)




_WRAPPED = weakref.WeakKeyDictionary()


def as_forward(fn):
    """A ForwardFunction for `fn` (itself if it already is one), made once per function and
    again when a global it reads changed (each fwdad.jvp call sees the current globals)."""
    if isinstance(fn, ForwardFunction):
        return fn
    key = python_function(fn)
    wrapped = _WRAPPED.get(key)
    if wrapped is None or not wrapped.is_current():
        _WRAPPED[key] = ForwardFunction(key)
    return _WRAPPED[key]


def jvp(fn, primals, tangents):
    """Functional form: (fn(*primals), J·tangents), compiling `fn` with fwdad on first use."""
    return as_forward(fn).jvp(primals, tangents)


def check_rule(func, rule):
    """Refuse what fwdad.defjvp cannot use: a non-function, a lambda (calls to it cannot be found
    by name, a rule's source cannot be read) or a rule that does not take (*primals, *tangents)."""
    for role, obj in (("function", func), ("rule", rule)):
        if not callable(obj):
            raise OptionError(f"fwdad.defjvp: the {role} {obj!r} is not callable.\n"
                              "What to do: call fwdad.defjvp(func, rule) with two functions.")
        if getattr(python_function(obj), "__name__", "") == "<lambda>":
            raise OptionError(f"fwdad.defjvp: the {role} is a lambda; fwdad needs a function defined "
                              "with `def`.\nWhat to do: define it with `def` and pass it by name.")
    try:
        count = len(inspect.signature(python_function(func)).parameters)
        signature = inspect.signature(python_function(rule))
    except (TypeError, ValueError):
        return                       # a built-in without a signature: Numba reports a wrong call
    try:
        signature.bind(*range(2 * count))
    except TypeError:
        raise OptionError(f"fwdad.defjvp: the rule {getattr(rule, '__name__', rule)} cannot be called "
                          f"with {getattr(func, '__name__', func)}'s arguments followed by their tangents.\n"
                          "What to do: write the rule as rule(*primals, *tangents), e.g. "
                          "`def rule(x, dx)` for f(x).") from None


def defjvp(func, rule=None):
    """Give `func` a tangent rule: rule(*primals, *tangents) -> (value, tangent).

    Inactive arguments get a zero tangent (None for ints). The rule is compiled like any fwdad
    function and takes precedence over `func`'s own source. Usable as a decorator:
    `@fwdad.defjvp(func)` above the rule.
    """
    if rule is None:
        return lambda r: defjvp(func, r)
    check_rule(func, rule)
    USER_RULES[func] = rule
    USER_RULES[python_function(func)] = rule
    return rule
