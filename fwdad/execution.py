"""Running compiled code: the first call compiles (and recovers from a corrupt disk cache), and
an exception raised by generated code is reported at the user's line."""
import os
import traceback
import warnings

from numba.core.errors import NumbaError, NumbaPerformanceWarning

from .compiler import Specialization, Unit, numba_error
from .errors import ExecutionError, located


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


def run(spec, dispatcher, args, py_func):
    """dispatcher(*args) for the specialization `spec` of `py_func`; its first call compiles.

    Numba's errors become CompilationErrors and run-time exceptions ExecutionErrors, both at the
    user's line; Numba's performance notes on the first call are about fwdad's code, not the user's."""
    if spec.is_warm(dispatcher):
        return run_compiled(spec, dispatcher, args, py_func)
    name = getattr(getattr(dispatcher, "py_func", dispatcher), "__name__", "compiled code")
    try:
        with warnings.catch_warnings(), spec.unit.compiler.timed(f"Numba compile and first run of {name}"):
            warnings.simplefilter("ignore", NumbaPerformanceWarning)
            result = with_cache_recovery(dispatcher, args, lambda: flush_caches(spec))
    except Exception as error:
        raise_reported(error, spec, py_func)
    spec.warmed(dispatcher)
    return result


def run_compiled(spec, dispatcher, args, py_func):
    """dispatcher(*args) once it has run (it compiles nothing): the call prepared calls make."""
    try:
        return dispatcher(*args)
    except Exception as error:
        raise_reported(error, spec, py_func)


def raise_reported(error, spec, py_func):
    """Raise `error` from compiled code as the user sees it: Numba's errors as CompilationErrors
    and exceptions raised at run time as ExecutionErrors, both at the user's line; others as is."""
    if isinstance(error, NumbaError):
        raise numba_error(error, spec.modules(), f"Numba cannot compile the tangent code "
                          f"fwdad generated for {py_func.__name__}") from None
    if not raised_at_run_time(error):
        raise error
    raise execution_error(error, spec, py_func) from error
