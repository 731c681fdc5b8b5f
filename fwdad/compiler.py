"""The driver: the passes in the order they run, per function and per specialization.

    parse -> fence -> normalize            once per user function (a Unit)
    Numba typing of the normalized primal  once per argument types
    activity -> tangent -> codegen -> Numba once per (argument types, active arguments, mode)

Calls between the user's functions are compiled the same way, each callee specialized on
the types and activity it is called with. `verbose=True` prints the source after each pass.
"""
import ast
import contextlib
import copy
import hashlib
import math
import os
import re
import threading
import time

import numba
import numpy as np
from numba.core.types import float64 as NUMBA_FLOAT64
from numba.core.errors import NumbaError

from . import cache as disk_cache
from . import codegen, runtime
from .codegen import NUMBA_OPTIONS
from .device import check_device_code, device_function
from .nested import TypedCallee
from .errors import (CompilationError, DifferentiationError, FwdadError, UnsupportedSyntaxError,
                     WrappedFunctionError, located)
from .frontend.activity import Activity, Kind, Summary, function_types, is_complex
from .frontend.fence import fence
from .frontend.normalize import normalize
from .frontend.parse import namespace_of, parse, python_function
from .frontend.rebuild import rebuild
from .frontend.resolve import MISSING, Resolver, all_names, assigned_names, global_reads
from .transform import rules
from .transform.elementwise import fuse_tangent
from .transform.scale import fold_scalings
from .transform.tangent import TangentPass, written_in_place
from .transform.vector import NotVectorizable, VectorTangentPass
from .transform.sparsity import LocalSparsityPass, SparsityPass
from .transform.hessian_sparsity import HessianSparsityPass, LocalHessianSparsityPass
from .sparse import runtime as sparse_runtime

PASSES = {"vector": VectorTangentPass, "sparsity": SparsityPass, "sparsity_local": LocalSparsityPass,
          "hessian_sparsity": HessianSparsityPass, "hessian_sparsity_local": LocalHessianSparsityPass}

USER_RULES = {}                      # function -> rule, filled by fwdad.defjvp
LIBRARY_MODULES = ("numpy", "numba", "math", "builtins", "scipy", "fwdad")


def is_library_module(module):
    """A module of a library fwdad does not read (numpy.linalg yes, a user's numpy_utils.py no)."""
    return any(module == name or module.startswith(name + ".") for name in LIBRARY_MODULES)


class Compiler:
    """Holds every Unit and specialization compiled with one cache setting."""

    def __init__(self, cache=False, verbose=False):
        self.cache_dir = disk_cache.usable_directory() if cache else None   # None: unsafe/unwritable
        self.verbose = verbose
        self.units = {}
        self.building = []
        self.lock = threading.RLock()

    def is_user_function(self, obj):
        """Should a call to `obj` be differentiated through its source (or a defjvp rule)?"""
        if rule_of(obj) is not None or getattr(obj, "fwdad_typed", None) is not None:
            return True
        if rules.has_rule(obj):
            return False
        func = python_function(obj)
        if not hasattr(func, "__code__") and not hasattr(func, "__wrapped__"):
            return False                     # a wrapper (functools.wraps) is refused by parse
        module = getattr(func, "__module__", "") or ""
        if module == "fwdad.runtime":              # tangent code's helpers: read for second derivatives
            return hasattr(obj, "py_func")
        return not is_library_module(module) or module.startswith(("fwdad.examples", "fwdad.models"))

    def has_source(self, obj):
        """A user function fwdad can read (for rules, which are only ever run as primals)."""
        func = python_function(obj)
        module = getattr(func, "__module__", "") or ""
        readable = hasattr(func, "__code__") or hasattr(func, "__wrapped__")   # a wrapper: refused by parse
        return readable and not rules.has_rule(obj) and not is_library_module(module)

    def unit(self, func, primal_only=False, parsed=None):
        """The Unit of a user function (built again when a global it reads changed; recursion is
        reported). Globals are read when a Unit is built, as numba.njit reads them at first compile.

        A primal_only Unit (a defjvp rule) calls every user function as a plain primal.
        `parsed`: the source as read when the function was decorated (else it is read now).
        """
        with self.lock:
            key = (python_function(func), primal_only)
            if key in self.units and self.units[key].is_current():
                return self.units[key]
            if key in self.building:
                chain = " -> ".join(f.__name__ for f, _ in self.building + [key])
                code = key[0].__code__
                raise located(UnsupportedSyntaxError, code.co_filename, code.co_firstlineno,
                              f"recursion ({chain}) is not supported by fwdad.",
                              "write the recursion as a loop")
            self.building.append(key)
            try:
                unit = Unit(self, func, primal_only, parsed)
            finally:
                self.building.pop()
            self.units[key] = unit
            return unit

    def callee(self, func):
        if getattr(func, "fwdad_typed", None) is not None:
            return TypedCallee(self, func)
        rule = rule_of(func)
        return RuleCallee(self, func, rule) if rule is not None else self.unit(func)

    def show(self, stage, text):
        if self.verbose:
            print(f"--- fwdad: after {stage} ---\n{text}")

    @contextlib.contextmanager
    def timed(self, stage):
        """With verbose=True, print how long `stage` took (parse, normalize, typing, activity,
        tangent pass, codegen, Numba's compile of each generated function)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.verbose:
                print(f"--- fwdad: {stage}: {time.perf_counter() - start:.3f} s")


def rule_of(obj):
    try:
        return USER_RULES.get(obj) or USER_RULES.get(python_function(obj))
    except TypeError:
        return None


def numba_error(error, modules, what):
    """A CompilationError at the user's line for a Numba error raised on generated code."""
    message = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    for module in modules:
        for match in re.finditer(r'File "([^"]+)", line (\d+)', message):
            if match.group(1) == module.filename:
                line = module.user_line(int(match.group(2)))
                if line:
                    short = message.split("\n\nFile ")[0].split("During:")[0].strip()
                    return located(CompilationError, module.user_filename, line,
                                   f"{what}:\n{indent(short)}",
                                   "check that this line is supported by Numba for these argument "
                                   "types (see docs/subset.md)")
    short = message.split("During:")[0].strip()
    return CompilationError(f"{what}:\n{indent(short)}")


def resolved(resolve, node):
    """What a global chain refers to now (MISSING if a property raises, as global_reads does)."""
    try:
        return resolve(node)
    except Exception:
        return MISSING


def read_fingerprints(reads):
    return {chain: disk_cache.fingerprint(value) for chain, value in reads.items()}


def frozen_arrays(reads):
    """Copies of the global arrays a function reads by name, for every compiled function of its
    Unit: Numba freezes a global array when it compiles, so without a copy a primal compiled
    before the user wrote into W and a tangent compiled after it would disagree."""
    return {chain: frozen_copy(value) for chain, value in reads.items()
            if "." not in chain and holds_array(value)}


def holds_array(value):
    return isinstance(value, np.ndarray) or (type(value) is tuple and any(map(holds_array, value)))


def frozen_copy(value):
    """An array copied, or a plain tuple with its arrays copied (Numba freezes both)."""
    if isinstance(value, np.ndarray):
        return value.copy()
    return tuple(frozen_copy(v) if holds_array(v) else v for v in value)


def indent(text):
    return "\n".join("    " + line for line in text.splitlines())


class Unit:
    """A user function parsed, fenced and normalized once; its primal compiled by Numba."""

    def __init__(self, compiler, func, primal_only=False, parsed=None):
        self.compiler = compiler
        self.func = python_function(func)
        with compiler.timed(f"parse {self.func.__name__}"):
            self.parsed = (parsed or parse(self.func)).with_current_namespace()
            fence(self.parsed.tree, self.parsed.filename)
        self.reads = global_reads(self.parsed.tree, self.parsed.namespace)
        self.read_prints = read_fingerprints(self.reads)
        self.read_nodes = {chain: ast.parse(chain, mode="eval").body for chain in self.reads}
        self.read_locals = assigned_names(self.parsed.tree)     # is_current looks the chains up again
        self.frozen = frozen_arrays(self.reads)
        is_user = compiler.has_source if primal_only else compiler.is_user_function
        with compiler.timed(f"normalize {self.name}"):
            self.normalized = normalize(self.parsed, is_user)
        compiler.show(f"normalize ({self.name})", ast.unparse(self.normalized.tree))
        callee = compiler.unit if primal_only else compiler.callee
        self.callees = {name: callee(f) for name, f in self.normalized.callees.items()}
        self.resolve = Resolver(self.parsed.namespace, assigned_names(self.normalized.tree))
        self.written = written_in_place(self.normalized.tree, self.calls_user_function, returned=False,
                                        resolve=self.resolve)
        self.digest = self.closure_digest()
        self.namespace = self.namespace_for(device=False)
        self.typing_module = codegen.build([self.normalized.tree], f"primal of {self.name} ({self.digest})",
                                           self.parsed.filename, self.namespace, self.module_dir(),
                                           line_text=self.parsed.line)
        self.module = self.rebuilt_module()              # what f(...) runs
        self.primal = disk_cache.njit(self.module[self.name], self.cache, **NUMBA_OPTIONS)
        self.device_module = self._device_primal = None
        self._typing = None
        self._written = None
        self.types = {}
        self.numba_typings = 0           # typings Numba ran for this Unit (not loaded from the cache)
        self.specializations = {}

    @property
    def name(self):
        return self.parsed.name

    def rebuilt_module(self):
        """The primal with normalization's one-use temporaries written back (frontend/rebuild.py),
        so that Numba fuses its array expressions; the typing module itself when nothing changed."""
        temporaries = assigned_names(self.normalized.tree) - all_names(self.parsed.tree)
        tree = rebuild(self.normalized.tree, temporaries)
        if ast.dump(tree) == ast.dump(self.normalized.tree):
            return self.typing_module
        return codegen.build([tree], f"primal of {self.name}, temporaries inlined ({self.digest})",
                             self.parsed.filename, self.namespace, self.module_dir(), line_text=self.parsed.line)

    def calls_user_function(self, call):
        return isinstance(call.func, ast.Name) and call.func.id in self.callees

    def written_parameters(self):
        """Positions of the parameters this function writes into, itself or through a callee
        (drivers that run it several times at one point restore exactly these)."""
        if self._written is None:
            def call_writes(call):
                callee = self.callees[call.func.id]
                positions = callee.written_parameters() if isinstance(callee, Unit) else ()
                return {call.args[i].id for i in positions
                        if i < len(call.args) and isinstance(call.args[i], ast.Name)}
            tree = self.normalized.tree
            written = written_in_place(tree, self.calls_user_function, returned=False,
                                       resolve=self.resolve, call_writes=call_writes)
            self._written = frozenset(i for i, a in enumerate(tree.args.args) if a.arg in written)
        return self._written

    def is_current(self):
        """Whether every global this function and its callees read is as when it was built: a
        new decoration sees the current globals, as a fresh numba.njit does."""
        resolve = Resolver(namespace_of(self.func), self.read_locals)
        reads = {chain: resolved(resolve, node) for chain, node in self.read_nodes.items()}
        return read_fingerprints(reads) == self.read_prints and \
            all(callee.is_current() for callee in self.callees.values())

    def check_frozen(self):
        """Refuse to compile code for a global array reached through an attribute (cfg.W) that
        changed since this Unit was built: the primal froze the old values, the new code would
        freeze the new ones (a global name read directly is a snapshot and cannot change)."""
        for chain, value in self.reads.items():
            if "." in chain and holds_array(value) and \
                    disk_cache.fingerprint(value) != self.read_prints[chain]:
                raise located(CompilationError, self.parsed.filename, self.parsed.tree.lineno,
                              f"the global array {chain} changed after {self.name} was first compiled; "
                              "its compiled primal keeps the old values (as Numba freezes globals) and "
                              "its derivative would use the new ones.",
                              f"decorate {self.name} again after changing {chain}, or pass the array "
                              "as an argument")

    def namespace_for(self, device):
        """The user's globals, with each callee bound to its compiled primal (a CUDA device
        function when `device`)."""
        namespace = dict(self.parsed.namespace)
        namespace.update(self.frozen)
        namespace.update({name: callee.dispatcher(device) for name, callee in self.callees.items()})
        return namespace

    def dispatcher(self, device=False):
        """The compiled primal: a Numba CPU function, or (device) a CUDA device function."""
        if not device:
            return self.primal
        with self.compiler.lock:
            if self._device_primal is None:
                self.device_module = codegen.build(
                    [self.normalized.tree], f"device primal of {self.name} ({self.digest})",
                    self.parsed.filename, self.namespace_for(device=True), line_text=self.parsed.line)
                self._device_primal = device_function(self.device_module[self.name], [self.device_module])
            return self._device_primal

    @property
    def cache(self):
        return self.compiler.cache_dir is not None

    def module_dir(self):
        return os.path.join(self.compiler.cache_dir, "modules") if self.cache else None

    def closure_digest(self):
        """A key of everything the compiled code depends on: it names the generated modules, so
        the type cache and Numba's index (both keyed on those files) follow it.

        Content, never names: the file, qualified name and source; every global and attribute
        chain the function reads (cfg.SCALE, an alias ACT = np.tanh, constant arrays by content);
        its callees' keys; the Python, NumPy, Numba and fwdad versions.
        """
        func = self.func
        h = hashlib.sha256(disk_cache.environment().encode())
        h.update(f"\n{self.parsed.filename}\n{func.__module__}.{func.__qualname__}\n{self.parsed.source}".encode())
        h.update(f"\ndefaults {disk_cache.fingerprint(func.__defaults__)}".encode())   # callers inline them
        for name in sorted(self.callees):
            h.update(f"\ncallee {name}={self.callees[name].digest}".encode())
        for chain in sorted(self.reads):
            h.update(f"\nreads {chain}={disk_cache.fingerprint(self.reads[chain])}".encode())
        return h.hexdigest()[:16]

    # ---- typing --------------------------------------------------------------------------------
    def function_types(self, arg_types):
        """Numba's types for this function at `arg_types` (from the disk cache when allowed)."""
        arg_types = tuple(arg_types)
        with self.compiler.lock:
            if arg_types not in self.types:
                with self.compiler.timed(f"typing {self.name} ({', '.join(map(str, arg_types))})"):
                    self.types[arg_types] = self._load_types(arg_types) or self._infer_types(arg_types)
            return self.types[arg_types]

    def _types_path(self, arg_types):
        key = hashlib.sha256(f"{self.digest} {arg_types}".encode()).hexdigest()[:24]
        return os.path.join(self.compiler.cache_dir, "types", f"{self.name}-{key}.json")

    def _load_types(self, arg_types):
        """Type information from the disk cache: JSON checked against its checksum, never unpickled."""
        if not self.cache:
            return None
        try:
            with open(self._types_path(arg_types), encoding="utf-8") as f:
                return disk_cache.decode_types(f.read(), arg_types)
        except (OSError, UnicodeDecodeError):
            return None

    def _save_types(self, arg_types, types):
        text = disk_cache.encode_types(types) if self.cache else None
        if text is not None:
            try:
                codegen.write_atomically(self._types_path(arg_types), text)
            except OSError:
                pass                         # the cache is an optimization: never an error

    def typed_overload(self, arg_types):
        """The normalized primal typed for `arg_types` (.type_annotation.typemap): the overload
        f(...) compiled when it runs that very module, else Numba's typing alone (no machine code:
        .jvp and the drivers never wait for a primal they do not run)."""
        if self.module is self.typing_module:
            overload = self.primal.overloads.get(arg_types)
            if hasattr(getattr(overload, "type_annotation", None), "typemap"):   # not from Numba's cache
                return overload
        try:
            return codegen.numba_types(self.typing_dispatcher(), arg_types)
        except NumbaError as error:
            raise numba_error(error, [self.typing_module], f"Numba cannot compile {self.name} for "
                              f"arguments ({', '.join(map(str, arg_types))})") from None

    def _infer_types(self, arg_types):
        overload = self.typed_overload(arg_types)
        self.numba_typings += 1
        typemap = overload.type_annotation.typemap
        for variable, numba_type in typemap.items():
            if is_complex(numba_type) and not variable.startswith("$"):
                name = variable.split(".")[-1] if variable.startswith("arg.") else variable.split(".")[0]
                raise located(CompilationError, self.parsed.filename, self.line_of(name),
                              "a value on this line is complex; fwdad differentiates real floats only.",
                              "split the computation into real and imaginary parts")
        types = function_types(typemap, overload.signature.return_type, arg_types,
                               self.parsed.filename, self.line_of)
        self._save_types(arg_types, types)
        return types

    def typing_dispatcher(self):
        """The normalized primal as a Numba dispatcher, typed by codegen.numba_types and never
        compiled (nor cached): its typemap names every temporary."""
        if self._typing is None:
            self._typing = numba.njit(**NUMBA_OPTIONS)(self.typing_module[self.name])
        return self._typing

    def return_type(self, arg_types):
        """The Numba type this function returns for `arg_types` (for rules, which have no Activity)."""
        try:
            self.primal.compile(arg_types)
        except NumbaError as error:
            raise numba_error(error, [self.module], f"Numba cannot compile {self.name} for "
                              f"arguments ({', '.join(map(str, arg_types))})") from None
        return self.primal.overloads[arg_types].signature.return_type

    def line_of(self, name):
        """The user's line that first assigns `name` (the def line for parameters)."""
        for node in ast.walk(self.normalized.tree):
            if isinstance(node, (ast.Assign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                    return node.lineno
        return self.parsed.tree.lineno

    def atom_type(self, atom, types):
        if isinstance(atom, ast.Name):
            return types.numba_types[atom.id]
        if isinstance(atom, ast.Tuple):
            return numba.types.Tuple(tuple(self.atom_type(e, types) for e in atom.elts))
        return numba.typeof(eval(compile(ast.Expression(atom), "<atom>", "eval"), dict(self.namespace)))

    # ---- specializations -----------------------------------------------------------------------
    def specialization(self, arg_types, active, mode="scalar"):
        key = (tuple(arg_types), frozenset(active), mode)
        with self.compiler.lock:
            if key not in self.specializations:
                self.specializations[key] = Specialization(self, *key)
            return self.specializations[key]


class RuleCallee:
    """A function the user gave a rule with fwdad.defjvp: `rule(*primals, *tangents)`."""

    def __init__(self, compiler, func, rule):
        self.func, self.compiler = func, compiler
        self.rule_unit = compiler.unit(rule, primal_only=True)
        try:
            self.primal = compiler.unit(func).primal
        except WrappedFunctionError:            # Numba cannot call a Python wrapper either
            raise
        except FwdadError:                      # no source: Numba calls it directly (math.gamma)
            self.primal = func
        self.digest = hashlib.sha256(
            f"{disk_cache.fingerprint(func)} {self.rule_unit.digest}".encode()).hexdigest()[:16]

    def is_current(self):
        return self.rule_unit.is_current()

    def check_result(self, arg_types, kinds):
        """Refuse a rule whose tangent has another type than its value (a scalar tangent for an
        array output would be broadcast without a word)."""
        tangent_types = [t if k is not None else numba.types.none for t, k in zip(arg_types, kinds)]
        result = self.rule_unit.return_type(tuple(arg_types) + tuple(tangent_types))
        if isinstance(result, numba.types.BaseTuple) and len(result) == 2 and same_type(result[0], result[1]):
            return
        code = self.rule_unit.func.__code__
        raise located(DifferentiationError, code.co_filename, code.co_firstlineno,
                      f"the defjvp rule {self.rule_unit.name} of {self.func.__name__} returns {result} for "
                      f"arguments ({', '.join(map(str, arg_types))}); it must return (value, tangent) with "
                      "the tangent of the value's type (same dtype, scalar or array of the same ndim).",
                      "return a tangent shaped like the value, e.g. `np.full_like(value, t)` for a scalar t")

    def summary(self, mask):
        return Summary(frozenset(mask), bool(mask))

    def dispatcher(self, device=False):
        if not device:
            return self.primal
        return self.compiler.unit(self.func).dispatcher(device)


def generated_source(spec):
    """The tangent code of a specialization and of the functions it calls (each once; the
    primals it calls are the user's own code, not shown)."""
    spec.jvp
    seen, texts = set(), []
    for module in spec.modules():
        if module.name not in seen and "primal of" not in module.source.splitlines()[0]:
            seen.add(module.name)
            texts.append(module.source)
    return "\n\n".join(texts)


def same_type(value, tangent):
    """Whether `tangent` can be the tangent of `value`: same dtype and ndim (tuples item by item)."""
    value, tangent = numba.types.unliteral(value), numba.types.unliteral(tangent)
    if isinstance(value, numba.types.BaseTuple):
        return isinstance(tangent, numba.types.BaseTuple) and len(value) == len(tangent) and \
            all(same_type(v, t) for v, t in zip(value, tangent))
    if isinstance(value, numba.types.Array):
        return isinstance(tangent, numba.types.Array) and \
            (value.ndim, value.dtype) == (tangent.ndim, tangent.dtype)
    return value == tangent


class Calls:
    """What the tangent pass of one specialization needs to know about the calls it makes."""

    def __init__(self, specialization):
        self.spec = specialization
        self.unit = specialization.unit
        self.bindings = {}            # name in the generated module -> Unit or Specialization

    def callee(self, call):
        if isinstance(call.func, ast.Name):
            return self.unit.callees.get(call.func.id)
        return None

    def is_user(self, call):
        return self.callee(call) is not None

    def written_params(self, call):
        """Positions of the callee's parameters that it may write in place (none for a rule)."""
        callee = self.callee(call)
        if isinstance(callee, TypedCallee):
            return callee.written_parameters(self.arg_types(call))
        if not isinstance(callee, Unit):
            return set()
        tree = callee.normalized.tree
        written = written_in_place(tree, callee.calls_user_function, returned=False, resolve=callee.resolve)
        return {i for i, a in enumerate(tree.args.args) if a.arg in written}

    def returns_views(self, call):
        """Whether the user function called may return memory of an array argument (its vector
        form may return a copy of the tangent where the value is a view: np.asarray(A))."""
        callee = self.callee(call)
        if not isinstance(callee, Unit):
            return False
        shared = callee.specialization(self.arg_types(call), frozenset(), self.spec.mode).summary.returns_views_of
        return shared is None or bool(shared)

    def arg_types(self, call):
        return tuple(self.unit.atom_type(a, self.spec.types) for a in call.args)

    def summary(self, call, mask):
        callee = self.callee(call)
        if callee is None:
            return None
        if isinstance(callee, RuleCallee):
            return callee.summary(mask)
        return callee.specialization(self.arg_types(call), mask, self.spec.mode).summary

    def tangent_function(self, call, mask):
        """(name bound to the callee's tangent function or None, its active params, param kinds)."""
        callee = self.callee(call)
        kinds = [self.spec.kind_of_atom(a) for a in call.args]
        if isinstance(callee, RuleCallee):
            if not mask:
                return None, (), kinds
            callee.check_result(self.arg_types(call), kinds)
            return self.bind(f"{call.func.id}_rule", callee.rule_unit), tuple(range(len(call.args))), kinds
        summary = self.summary(call, mask)
        if not summary.varied_params and not summary.returns_varied:
            return None, (), kinds
        spec = callee.specialization(self.arg_types(call), summary.varied_params, self.spec.mode)
        if self.spec.mode == "vector":
            spec.function                   # a callee without a vector form stops vector mode here
        return self.bind(f"{call.func.id}_{spec.suffix}", spec), spec.active, spec.param_kinds()

    def bind(self, base, compiled):
        """The name under which the generated code calls `compiled` (a Unit or Specialization)."""
        for bound, value in self.bindings.items():
            if value is compiled:
                return bound
        bound = self.spec.names.fresh(base)
        self.bindings[bound] = compiled
        return bound

    def namespace_for(self, device):
        return {name: compiled.dispatcher(device) for name, compiled in self.bindings.items()}


class Specialization:
    """One (argument types, active arguments, mode) of a Unit: activity, tangent code, dispatcher."""

    def __init__(self, unit, arg_types, active, mode):
        self.unit, self.arg_types, self.mode = unit, arg_types, mode
        self.types = unit.function_types(arg_types)
        self.active = frozenset(i for i in active if self.param_kind(i) is not None)
        self.calls = Calls(self)
        self.activity = Activity(unit.normalized.tree, self.types, self.active, self.calls.summary,
                                 self.is_view_call)
        with unit.compiler.timed(f"activity {unit.name} (active {sorted(self.active)}, {mode} mode)"):
            self.varied = self.activity.run()
        self.summary = self.activity.summary()
        self._function = None
        self._vectorizable = None
        self.compiled = {}            # device (False: CPU) -> (GeneratedModule, dispatcher)
        self.names = None
        self._drivers = {}            # key -> a driver compiled around this specialization's code
        self._warm = set()            # ids of the dispatchers called once (compiled)

    def driver(self, key, build):
        """The driver `key` (a forward-gradient driver, a batch kernel, an fgd loop) built around
        this specialization's code by build() on first use; compiled once per key."""
        with self.unit.compiler.lock:
            if key not in self._drivers:
                self._drivers[key] = build()
            return self._drivers[key]

    def is_warm(self, dispatcher):
        """Whether `dispatcher` has been called once already (so it is compiled)."""
        return id(dispatcher) in self._warm

    def warmed(self, dispatcher):
        self._warm.add(id(dispatcher))

    @property
    def suffix(self):
        return "jvp" if self.mode == "scalar" else f"jvp_{self.mode}"

    @property
    def vectorizable(self):
        """Whether this specialization has a vector-mode form (else drivers loop over directions);
        the answer is kept: a pass that stops with NotVectorizable would otherwise run per call."""
        if self._vectorizable is None:
            try:
                self.function
                self._vectorizable = True
            except NotVectorizable:
                self._vectorizable = False
        return self._vectorizable

    def param_kind(self, i):
        return self.types.kinds.get(self.unit.normalized.tree.args.args[i].arg)

    def param_kinds(self):
        return [self.param_kind(i) for i in range(len(self.unit.normalized.tree.args.args))]

    def kind_of_atom(self, atom):
        if isinstance(atom, ast.Name):
            return self.types.kinds.get(atom.id)
        literal = atom.operand if isinstance(atom, ast.UnaryOp) else atom
        if isinstance(literal, ast.Constant) and isinstance(literal.value, float):
            return Kind("scalar", "float64")
        return None

    def is_view_call(self, call, target):
        """Whether `target = call` may share memory with the call's arguments. A view function
        without a rule (np.flip) counts only when the view or its source is written in place here
        (a caller writing a returned view makes the source active itself): then an active write
        refuses the call instead of missing the other array's tangent."""
        function = self.unit.resolve(call.func)
        if function is MISSING or function not in rules.VIEW_FUNCTIONS:
            return False
        names = {target} | {a.id for a in call.args if isinstance(a, ast.Name)}
        return rules.has_rule(function) or bool(names & self.unit.written)

    @property
    def function(self):
        """The tangent function's AST (the tangent pass runs once per specialization)."""
        with self.unit.compiler.lock:
            if self._function is None:
                unit = self.unit
                self.names = copy.deepcopy(unit.normalized.names)
                self.aliases = {"np": self.module_alias("np", np), "math": self.module_alias("math", math),
                                "fwdad_runtime": self.module_alias("fwdad_runtime", runtime),
                                "fwdad_sparsity": self.module_alias("fwdad_sparsity", sparse_runtime)}
                pass_class = PASSES.get(self.mode, TangentPass)
                tangent = pass_class(unit.normalized, self.types.kinds, self.varied, self.active,
                                     unit.resolve, self.calls, unit.parsed.filename, self.aliases,
                                     self.types.return_kind, self.names)
                with unit.compiler.timed(f"tangent pass {unit.name} ({self.mode} mode)"):
                    self._function = tangent.function(self.names.fresh(f"{unit.name}_{self.suffix}"))
                if self.mode == "scalar":         # one loop per run of elementwise array statements
                    # ("plain": the same tangent code unfused, for code fwdad differentiates again)
                    self._function = fuse_tangent(self._function, self.types.numba_types, self.names,
                                                  unit.resolve, self.aliases["np"])
                    self._function = fold_scalings(self._function, self.float64_tangent)
            return self._function

    def float64_tangent(self, name):
        """Whether `name` is a float64 tangent (or a fused loop's element of one): the numbers
        transform/scale.py writes are float64, so float32 code keeps its own."""
        numba_type = self.types.numba_types.get(self.names.primal_of(name))
        return getattr(numba_type, "dtype", numba_type) == NUMBA_FLOAT64

    @property
    def jvp(self):
        """The compiled tangent function (Numba, CPU)."""
        return self.dispatcher(device=False)

    @property
    def device_jvp(self):
        """The tangent function as a CUDA device function."""
        return self.dispatcher(device=True)

    @property
    def module(self):
        return self.compiled[False][0] if False in self.compiled else None

    def dispatcher(self, device=False):
        """The compiled tangent function: Numba CPU code, or (device) a CUDA device function."""
        built = self.compiled.get(device)
        if built is not None:
            return built[1]
        with self.unit.compiler.lock:
            if device not in self.compiled:
                self.compiled[device] = self._build(device)
            return self.compiled[device][1]

    def _build(self, device):
        unit, function = self.unit, self.function
        unit.check_frozen()
        namespace = unit.namespace_for(device)
        namespace.update({self.aliases["np"]: np, self.aliases["math"]: math,
                          self.aliases["fwdad_runtime"]: runtime, self.aliases["fwdad_sparsity"]: sparse_runtime})
        namespace.update(self.calls.namespace_for(device))
        description = (f"tangent of {unit.name} from {unit.parsed.filename}; arguments "
                       f"({', '.join(map(str, self.arg_types))}); active {sorted(self.active)}; "
                       f"{self.mode} mode{'; CUDA device function' if device else ''} "
                       f"({unit.digest})")
        with unit.compiler.timed(f"codegen {function.name}"):
            module = codegen.build([function], description, unit.parsed.filename, namespace,
                                   unit.module_dir() if not device else None, line_text=unit.parsed.line)
        unit.compiler.show(f"tangent ({unit.name})", module.source)
        if device:
            check_device_code(function, self.types.kinds, unit.parsed.filename)
            return module, device_function(module[function.name], [module])
        return module, disk_cache.njit(module[function.name], unit.cache, **NUMBA_OPTIONS)

    def module_alias(self, base, module):
        if self.unit.namespace.get(base) is module and base not in assigned_names(self.unit.normalized.tree):
            return base
        return self.names.fresh(base)

    def modules(self, device=False):
        """Every generated module this specialization's code runs through (for error messages)."""
        self.dispatcher(device)
        found = [self.compiled[device][0], self.unit.module]
        for compiled in self.calls.bindings.values():
            if isinstance(compiled, Specialization):
                found.extend(compiled.modules(device))
            elif isinstance(compiled, Unit):
                found.append(compiled.module)
        return found
