"""The public API: @forward_grad, ForwardFunction, jvp and defjvp."""
import functools
import inspect
import os
import traceback
import warnings
import weakref

import numba
import numpy as np
from numba.core.errors import NumbaError, NumbaPerformanceWarning

from . import options
from .compiler import USER_RULES, Compiler, numba_error
from .errors import ExecutionError, FwdadError, OptionError, TangentMismatchError, located
from .frontend.fence import fence
from .frontend.parse import parse, python_function

TARGETS = ("cpu", "parallel", "cuda")
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


def fast_key(value):
    """A cheap key that determines Numba's type of an argument (numba.typeof costs ~7 us on arrays)."""
    if isinstance(value, np.ndarray):
        flags = value.flags
        return (value.dtype.num, value.ndim, flags.c_contiguous, flags.f_contiguous, flags.writeable,
                flags.aligned, value.dtype.isnative)
    kind = type(value)
    if kind in (float, int, bool) or isinstance(value, np.generic):
        return kind
    return arg_type(value)


def refuse_foreign_byte_order(who, names, values):
    """Refuse an array in non-native byte order (np.zeros(3, '>f8')): Numba types it as a Python
    object, and a key without the byte order would reuse code compiled for native arrays."""
    for name, value in zip(names, values):
        if isinstance(value, np.ndarray) and not value.dtype.isnative:
            raise OptionError(
                f"{who}: argument {name!r} is an array of dtype {value.dtype.str!r}, in non-native "
                f"byte order, which compiled code cannot read.\nWhat to do: pass "
                f"{name}.astype({name}.dtype.newbyteorder('=')).")


def arg_type(value):
    """Numba's type for an argument, with a fast path for the common cases."""
    if isinstance(value, float):
        return numba.float64
    if isinstance(value, bool):
        return numba.boolean
    if isinstance(value, int):
        return numba.int64
    return numba.typeof(value)


class ForwardFunction:
    """A function compiled by fwdad: call it for the primal, or ask for JVPs and gradients."""

    def __init__(self, func, target="cpu", wrt=None, cache=False, verbose=False):
        if target not in TARGETS:
            raise FwdadError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
        self.py_func = python_function(func)
        functools.update_wrapper(self, self.py_func)
        parsed = parse(self.py_func)                 # errors in the source surface at decoration
        fence(parsed.tree, parsed.filename)
        self._parsed = parsed                        # the source as decorated: never read again
        self.parameters = [a.arg for a in parsed.tree.args.args]
        self.signature = inspect.signature(self.py_func)
        self.target, self.cache, self.verbose = target, cache, verbose
        self.wrt = self._positions(wrt)
        self._compiler = compiler_for(cache, verbose)
        self._unit = None
        self._last = None
        self._dispatch = {}
        self._drivers = {}
        self._warm = set()
        self._tangent_njit = None

    def __repr__(self):
        return f"<fwdad.ForwardFunction {self.__name__} target={self.target!r}>"

    def _positions(self, wrt):
        """wrt as sorted positions: names, positions or negative positions, in any order."""
        return options.positions(f"forward_grad({self.py_func.__name__})", wrt, self.parameters)

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
        try:
            return with_cache_recovery(unit.primal, args, lambda: flush_caches(unit))
        except NumbaError as error:
            refuse_foreign_byte_order(self.__name__, self.parameters, args)
            raise numba_error(error, [unit.module], f"Numba cannot compile {self.__name__}") from None

    # ---- JVP -----------------------------------------------------------------------------------
    def specialization(self, args, active, mode="scalar"):
        """The compiled specialization for these arguments (looked up by a cheap key per call)."""
        key = (tuple(fast_key(a) for a in args), tuple(active), mode)
        spec = self._dispatch.get(key)
        if spec is None:
            refuse_foreign_byte_order(self.__name__, self.parameters, args)
            arg_types = tuple(arg_type(a) for a in args)
            spec = self._dispatch[key] = self.unit.specialization(arg_types, active, mode)
        self._last = spec
        return spec

    def jvp(self, primals, tangents):
        """(f(*primals), the directional derivative of f at primals along tangents).

        One tangent per positional argument, None for the ones not differentiated.
        """
        primals, tangents = primals_and_tangents(f"{self.__name__}.jvp", primals, tangents)
        if len(tangents) != len(primals):
            raise TangentMismatchError(
                f"{self.__name__}.jvp got {len(primals)} primals but {len(tangents)} tangents.\n"
                "What to do: pass one tangent per argument, None for the ones not differentiated.")
        primals = self._arguments(primals, {})
        tangents = tangents + (None,) * (len(primals) - len(tangents))
        active = [i for i, t in enumerate(tangents) if t is not None]
        checked = [self._check_tangent(i, primals[i], tangents[i]) for i in active]
        rule = USER_RULES.get(self.py_func)
        if rule is not None:                       # the user's own rule wins, here too
            full = [zero_like(p) if t is None else c for p, t, c in
                    zip(primals, tangents, self._fill(active, checked, len(primals)))]
            return self._compiler.unit(rule, primal_only=True).primal(*primals, *full)
        spec = self.specialization(primals, active)
        return self._run(spec, spec.jvp, primals + tuple(checked))

    @staticmethod
    def _fill(active, checked, n):
        out = [None] * n
        for i, value in zip(active, checked):
            out[i] = value
        return out

    def _run(self, spec, dispatcher, args):
        try:
            if id(dispatcher) in self._warm:
                return dispatcher(*args)
            with warnings.catch_warnings():      # first call compiles: Numba's performance notes
                warnings.simplefilter("ignore", NumbaPerformanceWarning)   # are about our code
                result = with_cache_recovery(dispatcher, args, lambda: flush_caches(spec))
            self._warm.add(id(dispatcher))
            return result
        except NumbaError as error:
            raise numba_error(error, spec.modules(), f"Numba cannot compile the tangent code "
                              f"fwdad generated for {self.__name__}") from None
        except Exception as error:
            if not raised_at_run_time(error):
                raise
            raise execution_error(error, spec, self.py_func) from error

    def _check_tangent(self, i, primal, tangent):
        """The tangent for argument i, converted to the primal's dtype, or a clear error."""
        name = self.parameters[i]
        where = f"{self.__name__}.jvp: the tangent of argument {name!r} (position {i})"
        if isinstance(primal, np.ndarray):
            refuse_foreign_byte_order(f"{self.__name__}.jvp", [name], [primal])
            if primal.dtype.kind != "f":
                raise TangentMismatchError(
                    f"{where}: {name!r} is an array of {primal.dtype}, which carries no tangent.\n"
                    f"What to do: pass None as its tangent, or make {name!r} a float array "
                    "to differentiate with respect to it.")
            if not isinstance(tangent, np.ndarray) or tangent.shape != primal.shape:
                shape = getattr(tangent, "shape", type(tangent).__name__)
                raise TangentMismatchError(
                    f"{where} has shape {shape}, but the argument has shape {primal.shape}.\n"
                    "What to do: pass a tangent array of the same shape.")
            if tangent.dtype != primal.dtype:
                raise TangentMismatchError(
                    f"{where} has dtype {tangent.dtype}, but the argument has dtype {primal.dtype}.\n"
                    f"What to do: pass tangent.astype(np.{primal.dtype}).")
            return tangent
        if isinstance(primal, (float, np.floating)):
            if isinstance(tangent, np.ndarray) and tangent.ndim == 0:
                tangent = tangent[()]
            if not isinstance(tangent, (int, float, np.integer, np.floating)) or isinstance(tangent, bool):
                raise TangentMismatchError(
                    f"{where} is {type(tangent).__name__}, but the argument is a float scalar.\n"
                    "What to do: pass a float.")
            return type(primal)(tangent) if isinstance(primal, np.floating) else float(tangent)
        kind = type(primal).__name__
        raise TangentMismatchError(
            f"{where}: {name!r} is {kind} ({primal!r:.40}), which carries no tangent.\n"
            f"What to do: pass None as its tangent; to differentiate with respect to it, pass a "
            f"float (e.g. {name}=float({name})) or a float array.")

    def batch_jvp(self, primals, tangents, in_axes=None):
        """(values, tangents) of many instances at once; see fwdad.batch (one GPU thread each on
        target="cuda", one core each on target="parallel")."""
        from .batch import batch_jvp
        return batch_jvp(self, primals, tangents, in_axes)

    # ---- gradients -----------------------------------------------------------------------------
    def _active_positions(self, args):
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

    def _driver(self, kind, args, active, directions=1):
        """The compiled driver `kind` for these arguments, and the specialization it runs."""
        from . import gradients
        vector = self.specialization(args, active, "vector")
        scalar = self.specialization(args, active)
        key = (kind, id(scalar), directions > 1)
        driver = self._drivers.get(key)
        if driver is None:
            if kind == "forward_gradient":
                gradients.scalar_output_required(scalar, "forward_gradient")
                written = gradients.writes_arguments(scalar)
                if written:
                    raise FwdadError(
                        f"{self.__name__} writes into its argument {self.parameters[written[0]]!r}; "
                        "forward_gradient evaluates the function at the same point for every "
                        "direction.\nWhat to do: copy the argument inside the function first.")
                if self.target == "parallel":
                    source, spec = gradients.forward_gradient_parallel(scalar), scalar
                elif directions > 1 and vector.vectorizable:
                    source, spec = gradients.forward_gradient_vector(vector), vector
                else:
                    source, spec = gradients.forward_gradient_sequential(scalar), scalar
            else:
                jacobian = kind == "jacobian"
                if not jacobian:
                    gradients.scalar_output_required(scalar, "value_and_grad")
                elif scalar.types.return_kind is None or scalar.types.return_kind.shape == "tuple":
                    raise FwdadError(
                        f"{self.__name__}.jacobian needs a function returning one float scalar or "
                        f"float array, not {scalar.types.return_type}.\nWhat to do: return one "
                        "array (stack the outputs), or differentiate each output separately.")
                if vector.vectorizable:
                    source, spec = gradients.value_and_grad_vector(vector, jacobian), vector
                else:
                    source, spec = gradients.value_and_grad_sequential(scalar, jacobian), scalar
            name = source.split("(")[0][4:]
            driver = gradients.compile_driver(source, name, gradients.namespace(spec),
                                              parallel=self.target == "parallel")
            self._drivers[key] = driver = (driver, spec)
        self._last = driver[1]
        return driver

    def _option_arguments(self, who, args, kwargs, option_names):
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
        from .random import DISTRIBUTIONS, NORMAL_TABLE
        who = f"{self.__name__}.forward_gradient"
        args = self._option_arguments(who, args, kwargs, ("seed", "directions", "distribution"))
        seed, directions = options.seed(who, seed), options.integer(who, "directions", directions, 1)
        distribution = options.choice(who, "distribution", distribution, tuple(DISTRIBUTIONS))
        active = self._active_positions(args)
        if self.target == "cuda":
            return self._forward_gradient_cuda(args, active, seed, directions, distribution)
        driver, spec = self._driver("forward_gradient", args, active, directions)
        value, sums = None, None
        for first, count in direction_passes(directions, sum(np.size(args[i]) for i in active)):
            value, grads = self._run(spec, driver, args + (np.uint64(seed), first, count,
                                                            DISTRIBUTIONS[distribution], NORMAL_TABLE))
            weighted = [np.asarray(g, np.float64) * (count / directions) for g in grads]
            sums = weighted if sums is None else [s + w for s, w in zip(sums, weighted)]
        return value, self._per_argument(sums, active, args)

    def _forward_gradient_cuda(self, args, active, seed, directions, distribution):
        """K threads draw a direction each and run the JVP; a second kernel reduces on the device."""
        from .backends.cuda import ForwardGradientKernels, cuda, device_table
        from .gradients import scalar_output_required
        from .random import DISTRIBUTIONS
        spec = self.specialization(args, active)
        scalar_output_required(spec, "forward_gradient")
        key = ("cuda forward_gradient", id(spec))
        if key not in self._drivers:
            self._drivers[key] = ForwardGradientKernels(spec, len(args))
        kernels, numba_cuda = self._drivers[key], cuda()
        device_args = [numba_cuda.to_device(a) if isinstance(a, np.ndarray) else a for a in args]
        code, table = DISTRIBUTIONS[distribution], device_table()
        sums = None
        for first, count in direction_passes(directions, sum(np.size(args[i]) for i in active)):
            values, ts = kernels.jvps(device_args, args, seed, first, count, code, table)
            flats = [f.copy_to_host() * (count / directions)
                     for f in kernels.gradient(ts, args, seed, first, count, code, table)]
            sums = flats if sums is None else [s + f for s, f in zip(sums, flats)]
        grads = [f.reshape(np.shape(args[a.i])) if not a.scalar else f[0] for f, a in zip(sums, kernels.items)]
        return float(values.copy_to_host()[0]), self._per_argument(grads, active, args)

    def cuda_jvp(self, *args, active=None):
        """The CUDA device function computing (value, tangent) for arguments like `args`.

        Call it from your own @cuda.jit kernels as jvp(*args, *tangents_of_active_args);
        `active` lists the differentiated positions (default: every float argument).
        """
        from .backends.cuda import host_like
        args = tuple(host_like(a) for a in self._arguments(args, {}))
        active = self._chosen(args, active, f"{self.__name__}.cuda_jvp")
        return self.specialization(args, active).device_jvp

    @property
    def tangent_njit(self):
        """Callable from your @numba.njit code: tangent_njit(*primals, *tangents) -> (value, tangent),
        one tangent per parameter (None for the inactive ones), as f.jvp. See docs/api.md."""
        if self._tangent_njit is None:
            from .embed import tangent_njit
            self._tangent_njit = tangent_njit(self)
        return self._tangent_njit

    @property
    def primal_njit(self):
        """The compiled primal as a Numba dispatcher, callable from your @numba.njit code."""
        return self.unit.primal

    def cuda_primal(self):
        """The CUDA device function of the primal (callable from your @cuda.jit kernels)."""
        return self.unit.dispatcher("cuda")

    def value_and_grad(self, *args, chunk=None, **kwargs):
        """(f(*args), exact gradient) by forward mode, `chunk` directions per pass."""
        from .gradients import actives, split
        who = f"{self.__name__}.value_and_grad"
        args = self._option_arguments(who, args, kwargs, ("chunk",))
        chunk = options.optional_integer(who, "chunk", chunk, 1)
        active = self._active_positions(args)
        driver, spec = self._driver("value_and_grad", args, active)
        value, flat = self._run(spec, driver, args + (self._chunk(args, active, chunk),))
        return value, self._per_argument(split(flat, actives(spec), args), active, args)

    def jacobian(self, *args, chunk=None, sparse=False, sparsity=None, **kwargs):
        """The Jacobian of f's (scalar or array) output with respect to each active argument.

        One entry per argument (None for the inactive ones), of shape output.shape + arg.shape.
        sparse=True (or a pattern as sparsity=): one scipy.sparse.csr_array per argument instead,
        output elements x argument elements, from a colored compressed pass (fwdad.sparse).
        """
        if sparse or sparsity is not None:
            from .sparse import sparse_jacobian
            return sparse_jacobian(self, *args, sparsity=sparsity, **kwargs)
        from .gradients import actives, split
        who = f"{self.__name__}.jacobian"
        args = self._option_arguments(who, args, kwargs, ("chunk",))
        chunk = options.optional_integer(who, "chunk", chunk, 1)
        active = self._active_positions(args)
        driver, spec = self._driver("jacobian", args, active)
        value, flat = self._run(spec, driver, args + (self._chunk(args, active, chunk),))
        out_shape = np.shape(value)
        parts = split(flat.reshape(out_shape + (flat.shape[-1],)), actives(spec), args)
        return tuple(self._per_argument(parts, active, args))

    @staticmethod
    def _chunk(args, active, chunk):
        """Directions per pass: `chunk` clamped to the active scalars (a larger chunk would only
        allocate wider tangents), else up to 32 within about 2**25 tangent entries."""
        total = sum(np.size(args[i]) for i in active)
        return min(int(chunk), max(total, 1)) if chunk else max(1, min(32, total, 2 ** 25 // max(total, 1)))

    def sparsity(self, *args, local=False, **kwargs):
        """The sparsity pattern of the Jacobian, found from the code (a fwdad.sparse.Sparsity);
        local=True: the pattern at this point only (the branches taken here)."""
        from .sparse import jacobian_sparsity
        return jacobian_sparsity(self, *args, local=local, **kwargs)

    def _per_argument(self, values, active, args):
        out = [None] * len(args)
        for i, value in zip(active, values):
            if isinstance(args[i], np.ndarray):
                value = np.asarray(value).astype(args[i].dtype, copy=False)
            elif isinstance(args[i], np.floating):
                value = type(args[i])(value)
            else:
                value = value if isinstance(value, np.ndarray) and value.ndim else float(value)
            out[i] = value
        return tuple(out)

    # ---- generated source ----------------------------------------------------------------------
    @property
    def source(self):
        """The generated tangent code of the most recent specialization, with its callees'."""
        if self._last is None:
            raise FwdadError(
                f"{self.__name__} has no tangent code yet: fwdad generates it for the argument "
                f"types of a call.\nWhat to do: call {self.__name__}.jvp(...) first, or use "
                f"{self.__name__}.source_for(*args).")
        return self._source_of(self._last)

    def source_for(self, *args, active=None):
        """The generated tangent code for these arguments (all float arguments active by default)."""
        args = self._arguments(args, {})
        spec = self.specialization(args, self._chosen(args, active, f"{self.__name__}.source_for"))
        spec.jvp
        return self._source_of(spec)

    def _chosen(self, args, active, who):
        """The differentiated positions: `active` (names or positions, as wrt) or every float."""
        if active is None:
            return [i for i, a in enumerate(args) if is_float(a)]
        return list(options.positions(who, active, self.parameters, "active"))

    @staticmethod
    def _source_of(spec):
        spec.jvp
        seen, texts = set(), []
        for module in spec.modules():
            if module.name not in seen and "primal of" not in module.source.splitlines()[0]:
                seen.add(module.name)
                texts.append(module.source)
        return "\n\n".join(texts)


DIRECTION_ENTRIES = 2 ** 25     # tangent entries one forward_gradient pass may hold (~256 MB)


def direction_passes(directions, total):
    """(first, count) of each pass of forward_gradient: at most DIRECTION_ENTRIES // total
    directions at a time, so that any `directions` runs in bounded memory (the K-wide tangents
    of vector mode, the K per-direction values of the parallel driver). The directions drawn
    are those of one pass (direction k is drawn from (seed, k) whatever the pass)."""
    per_pass = max(1, DIRECTION_ENTRIES // max(total, 1))
    return [(first, min(per_pass, directions - first)) for first in range(0, directions, per_pass)]


def primals_and_tangents(who, primals, tangents):
    """(primals, tangents) as tuples; anything but a tuple or list (None, a bare array, which
    tuple() would split into rows) is refused."""
    hint = "pass one value per argument in a tuple, e.g. (x, w), and tangents like (dx, None)."
    return (options.sequence(who, "primals", primals, "argument values", hint),
            options.sequence(who, "tangents", tangents, "tangents (None for inactive arguments)", hint))


def raised_at_run_time(error):
    """True when compiled code raised `error` while running (Numba re-raises it with a single
    frame at the raise statement), not while compiling (frames inside numba.core)."""
    frames = traceback.extract_tb(error.__traceback__)
    inside = [f for f in frames if os.sep + "numba" + os.sep in f.filename
              or f.filename.startswith("<fwdad")]
    core = os.sep + os.path.join("numba", "core") + os.sep
    return bool(inside) and not any(core in f.filename for f in inside)


def execution_error(error, spec, py_func):
    """An ExecutionError at the user's line for an exception raised by compiled code at run time.

    The line is found from the raising frame when it is generated code, else from the lines of
    the generated code calling the NumPy submodule that raised (np.linalg, ...); when neither
    narrows it to one line, the error points at the function's `def` line and lists candidates."""
    frames = traceback.extract_tb(error.__traceback__)
    modules = spec.modules()
    lines = sorted({line for m in modules for f in frames if f.filename == m.filename
                    for line in [m.user_line(f.lineno)] if line})
    if not lines and frames:
        part = os.path.splitext(os.path.basename(frames[-1].filename))[0]     # numba/np/linalg.py
        lines = sorted({m.user_line(i + 1) for m in modules for i, text in
                        enumerate(m.source.splitlines()) if f"{part}." in text} - {None})
    filename = modules[0].user_filename if modules else py_func.__code__.co_filename
    line = lines[0] if len(lines) == 1 else py_func.__code__.co_firstlineno
    others = f" (candidate lines: {', '.join(map(str, lines))})" if len(lines) > 1 else ""
    what = (f"the compiled derivative code of {py_func.__name__} raised "
            f"{type(error).__name__}: {error}{others}")
    return located(ExecutionError, filename, line, what,
                   "the primal may run where its derivative cannot (e.g. NaN or inf in a tangent, "
                   "a singular matrix); check the inputs and tangents at this point.")


def with_cache_recovery(dispatcher, args, flush):
    """Call a dispatcher; if Numba's on-disk cache turns out to be corrupt, empty it and retry.

    A corrupt cache entry is rebuilt, never loaded (and never the user's problem)."""
    try:
        return dispatcher(*args)
    except Exception as error:
        frames = traceback.extract_tb(error.__traceback__)
        if not any(frame.filename.endswith(os.path.join("numba", "core", "caching.py")) for frame in frames):
            raise
        flush()
        return dispatcher(*args)


def flush_caches(compiled, seen=None):
    """Empty Numba's on-disk index of every dispatcher a Unit or Specialization runs through."""
    from .compiler import Specialization, Unit
    seen = set() if seen is None else seen
    if id(compiled) in seen:
        return
    seen.add(id(compiled))
    dispatchers = []
    if isinstance(compiled, Unit):
        dispatchers.append(compiled.primal)
        for callee in compiled.callees.values():
            flush_caches(callee, seen)
    elif isinstance(compiled, Specialization):
        dispatchers += [d for _, d in compiled.compiled.values()]
        flush_caches(compiled.unit, seen)
        for callee in compiled.calls.bindings.values():
            flush_caches(callee, seen)
    for dispatcher in dispatchers:
        cache = getattr(dispatcher, "_cache", None)
        if cache is not None and hasattr(cache, "flush"):
            cache.flush()


def zero_like(value):
    """The zero tangent of an argument a rule receives for an inactive input (None for ints)."""
    if isinstance(value, np.ndarray):
        return np.zeros_like(value) if value.dtype.kind == "f" else None
    if isinstance(value, (float, np.floating)):
        return type(value)(0.0)
    return None


def is_float(value):
    if isinstance(value, np.ndarray):
        return value.dtype.kind == "f"
    return isinstance(value, (float, np.floating))


_WRAPPED = weakref.WeakKeyDictionary()


def as_forward(fn):
    """A ForwardFunction for `fn` (itself if it already is one), made once per function and
    again when a global it reads changed (each fwdad.jvp call sees the current globals)."""
    if isinstance(fn, ForwardFunction):
        return fn
    key = python_function(fn)
    wrapped = _WRAPPED.get(key)
    if wrapped is None or (wrapped._unit is not None and not wrapped._unit.is_current()):
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
