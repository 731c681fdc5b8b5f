"""Timing, machine description, result tables and child-process peak memory.

Everything here is framework-agnostic: a benchmark is a zero-argument callable, a result
is a row ``(benchmark, implementation, seconds, **extra)`` in a :class:`Table`.
"""
import ctypes
import json
import math
import os
import platform
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from importlib import metadata
from typing import Callable, Optional

__all__ = ["timeit", "machine", "Table", "Section", "peak_rss_child", "format_seconds", "Peer",
           "LoopPeer", "measure_peers", "measure_loops", "limit_threads"]


# glibc: serve arrays of 64 KiB and more with mmap and give freed memory back at once, so that
# resident memory follows the arrays alive (a warm-up call's freed pages do not hide the next peak)
MALLOC_RETURNS_MEMORY = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")


# ---------------------------------------------------------------- timing

def timeit(fn, *, repeat=7, number=None, min_time=0.2, max_time=None):
    """Best-of-``repeat`` seconds per call of ``fn()``; the first call is a discarded warm-up.

    ``number`` calls make one repeat; when None it grows 1, 2, 5, 10, 20, ... until one
    repeat lasts at least ``min_time`` seconds (like :meth:`timeit.Timer.autorange`).
    ``max_time`` optionally stops repeating early once that much time was spent timing,
    so slow peers (PyTorch loops in Python) do not take minutes; at least one repeat runs.
    """
    fn()                                    # warm-up: JIT compilation, caches, allocator
    if number is None:
        number, per_call = _autorange(fn, min_time)
        best, spent = per_call, per_call * number
    else:
        best, spent = math.inf, 0.0
    for _ in range(repeat):
        if max_time is not None and spent >= max_time and best < math.inf:
            break
        elapsed = _time_loop(fn, number)
        spent += elapsed
        best = min(best, elapsed / number)
    return best


def _time_loop(fn, number):
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return time.perf_counter() - start


def _autorange(fn, min_time):
    """Smallest number in 1, 2, 5, 10, 20, 50, ... whose loop lasts >= min_time."""
    scale = 1
    while True:
        for step in (1, 2, 5):
            number = step * scale
            elapsed = _time_loop(fn, number)
            if elapsed >= min_time:
                return number, elapsed / number
        scale *= 10


def format_seconds(seconds):
    """Seconds with an SI unit and three significant digits: 1.53 ms, 812 ns."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{_sig3(seconds / scale)} {unit}"
    return f"{_sig3(seconds / 1e-9)} ns"


def _sig3(x):
    return f"{x:.3g}" if x < 1000 else f"{x:.0f}"


# ---------------------------------------------------------------- machine

def machine():
    """What the numbers were measured on: CPU, cores, OS and library versions."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        **{name: _version(name) for name in ("numpy", "numba", "jax", "jaxlib", "torch")},
    }


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Model", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist):
    """Installed version without importing the package (importing torch takes seconds)."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------- threads

_XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
_OPENBLAS_SETTERS = ("openblas_set_num_threads", "openblas_set_num_threads64_",
                     "scipy_openblas_set_num_threads", "scipy_openblas_set_num_threads64_")


def limit_threads(n=1):
    """Cap the intra-op threads of OpenBLAS (numpy's and scipy's, which Numba's ``@``
    uses), PyTorch and XLA at ``n`` for this process, as far as is still possible.

    Why: on a small machine shared with other work, OpenBLAS threads spin-waiting for a
    busy core made a 64x784 @ 784x1024 matmul 10-20x slower; one thread per library gives
    stable, comparable numbers. XLA reads its flags when JAX starts its CPU backend, so call
    this before the first JAX computation. Returns what was done, for the table's notes.
    """
    done = {}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    if n == 1 and "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _XLA_ONE_THREAD)
        done["xla_flags"] = os.environ["XLA_FLAGS"].strip()
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (load the BLAS Numba will call)
    except ImportError:
        pass
    for path in _loaded_openblas():
        lib = ctypes.CDLL(path)
        setter = next((getattr(lib, s) for s in _OPENBLAS_SETTERS if hasattr(lib, s)), None)
        if setter is not None:
            setter(ctypes.c_int(n))
            done[os.path.basename(path)] = n
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
        done["torch"] = n
    return done


def _loaded_openblas():
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line}
    except OSError:
        return []
    return sorted(p for p in paths if p.startswith("/"))


# ---------------------------------------------------------------- tables

WIDTH = 100                      # printed tables and notes fit a 100-column terminal


@dataclass
class Section:
    """How a group of rows is printed: its title, a legend saying what the numbers are, the
    header of the time column (None: no time or ratio column) and the extra columns shown,
    as ``((key, header), ...)`` (empty: every extra that a row of the section has)."""
    title: Optional[str] = None
    legend: str = ""
    time_header: Optional[str] = "time"
    columns: tuple = ()


class Table:
    """Rows of ``(benchmark, implementation, seconds, **extra)`` with ratios to a baseline.

    ``baseline`` names the implementation that gets ratio 1.0 in every benchmark; a dict
    ``{benchmark: implementation}`` or :meth:`set_baseline` overrides it per benchmark.
    A benchmark whose baseline has no row shows no ratios. :meth:`section` starts a group of
    rows printed as its own narrow table, with its own columns and legend.

    >>> t = Table(baseline="numba")
    >>> t.add("rosenbrock", "numba", 2e-3); t.add("rosenbrock", "jax", 3e-3, R_f=1.4)
    >>> t.ratio(t.rows[1])
    1.5
    """

    def __init__(self, baseline=None, title=None, meta=None):
        self.rows = []
        self.notes = []
        self.title = title
        self.meta = dict(meta or {})
        self.default_baseline = baseline if isinstance(baseline, str) else None
        self.baselines = dict(baseline) if isinstance(baseline, dict) else {}
        self.sections = {None: Section()}
        self.current_section = None

    def section(self, key, title, legend="", time_header="time", columns=()):
        """Rows added from now on belong to section ``key`` (see :class:`Section`)."""
        self.sections[key] = Section(title, legend, time_header, tuple(columns))
        self.current_section = key

    def add(self, benchmark, implementation, seconds, **extra):
        """Append one row; ``seconds`` may be None for a row that carries only extras."""
        self.rows.append({"benchmark": benchmark, "implementation": implementation,
                          "seconds": seconds, **extra, "section": self.current_section})

    def note(self, text):
        """A line printed under the table (a skipped peer, a caveat)."""
        self.notes.append(text)

    def set_baseline(self, benchmark, implementation):
        self.baselines[benchmark] = implementation

    def baseline_for(self, benchmark):
        return self.baselines.get(benchmark, self.default_baseline)

    def ratio(self, row):
        """row seconds / baseline seconds in the same benchmark; None when undefined."""
        base = self._baseline_seconds(row["benchmark"])
        if base is None or row["seconds"] is None or base <= 0:
            return None
        return row["seconds"] / base

    def _baseline_seconds(self, benchmark):
        name = self.baseline_for(benchmark)
        for row in self.rows:
            if row["benchmark"] == benchmark and row["implementation"] == name:
                return row["seconds"]
        return None

    def extra_columns(self, rows=None):
        """Names of the extra fields, in first-seen order."""
        seen = {}
        for row in self.rows if rows is None else rows:
            for key in row:
                if key not in ("benchmark", "implementation", "seconds", "section"):
                    seen.setdefault(key, None)
        return list(seen)

    def groups(self):
        """(Section, its rows) in the order the sections were started; empty ones left out."""
        return [(section, [r for r in self.rows if r["section"] == key])
                for key, section in self.sections.items()
                if any(r["section"] == key for r in self.rows)]

    def cells(self, section, rows):
        """Header and rows of one section as strings: the common ground of text and Markdown."""
        columns = section.columns or tuple((key, key) for key in self.extra_columns(rows))
        header = [h for _, h in columns]
        if section.time_header:
            header = [section.time_header, self.ratio_header(rows)] + header
        body = []
        for row in rows:
            ratio = self.ratio(row)
            cells = [_format_extra(key, row.get(key)) for key, _ in columns]
            if section.time_header:
                cells = [format_seconds(row["seconds"]),
                         "-" if ratio is None else _format_number(ratio) + "x"] + cells
            body.append(cells)
        return header, body

    def ratio_header(self, rows):
        """`vs numba` when every benchmark of the rows has that short baseline, else `ratio`."""
        names = {self.baseline_for(r["benchmark"]) for r in rows}
        name = names.pop() if len(names) == 1 else None
        return f"vs {name}" if name and len(name) <= 8 else "ratio"

    def ratio_legend(self, section, rows):
        """What the ratio column divides by, one sentence per distinct baseline."""
        if not section.time_header:
            return ""
        header = self.ratio_header(rows)
        bases = list(dict.fromkeys(self.baseline_for(r["benchmark"]) for r in rows))
        named = " or ".join(f"'{b}'" for b in bases if b) or "the baseline"
        return (f"{header} = {section.time_header} / {section.time_header} of {named} in the "
                "same benchmark (below 1: faster).")

    def format(self):
        """Plain text, every line at most WIDTH columns: per section a title, a legend and a
        table whose rows are grouped under their benchmark; notes at the end."""
        out = [self.title] if self.title else []
        for section, rows in self.groups():
            out += [""] + self._format_section(section, rows)
        if self.notes:
            out.append("")
        for note in self.notes:
            out += textwrap.wrap(note, WIDTH, initial_indent="note: ", subsequent_indent="      ",
                                 break_on_hyphens=False)
        return "\n".join(out)

    def _format_section(self, section, rows):
        header, body = self.cells(section, rows)
        names = ["  " + r["implementation"] for r in rows]
        widths = [max(len(c) for c in [""] + names)] + \
            [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

        def line(first, cells):
            return "  ".join([first.ljust(widths[0])] + [c.rjust(w) for c, w in
                                                          zip(cells, widths[1:])]).rstrip()
        out = [section.title] if section.title else []
        legend = " ".join(t for t in (section.legend, self.ratio_legend(section, rows)) if t)
        out += textwrap.wrap(legend, WIDTH, break_on_hyphens=False)
        out += [line("", header)]
        previous = None
        for row, name, cells in zip(rows, names, body):
            if row["benchmark"] != previous:
                out.append(str(row["benchmark"]))
                previous = row["benchmark"]
            out.append(line(name, cells))
        return out

    __str__ = format

    def print(self, file=None):
        print(self.format(), file=file or sys.stdout)

    def to_markdown(self):
        """One Markdown table per section, each under its title and legend."""
        out = [f"**{self.title}**"] if self.title else []
        for section, rows in self.groups():
            header, body = self.cells(section, rows)
            header = ["benchmark", "implementation"] + header
            body = [[str(r["benchmark"]), str(r["implementation"])] + cells for r, cells in zip(rows, body)]
            legend = " ".join(t for t in (section.legend, self.ratio_legend(section, rows)) if t)
            out += [""] + ([f"*{section.title}*", ""] if section.title else [])
            out += [legend, ""] if legend else []
            align = ["---", "---"] + ["---:"] * (len(header) - 2)
            out += ["| " + " | ".join(r) + " |" for r in (header, align, *body)]
        if self.notes:
            out += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(out) + "\n"

    def to_json(self, indent=2):
        """Rows with their ratio and baseline, plus notes and meta (e.g. machine())."""
        rows = [{**row, "ratio": self.ratio(row),
                 "baseline": self.baseline_for(row["benchmark"])} for row in self.rows]
        return json.dumps({"title": self.title, "meta": self.meta, "rows": rows,
                           "notes": self.notes}, indent=indent, default=_json_default)


def _format_extra(key, value):
    """Extras named ``*_time`` are durations in seconds; the rest are numbers or text."""
    if key.endswith("_time") and isinstance(value, (int, float)):
        return format_seconds(value)
    return _format_value(value)


def _format_value(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return _format_number(value)
    return str(value)


def _format_number(x):
    """About three significant digits, thousands separated: 0.77, 1.67, 30.4, 6,858."""
    size = abs(x)
    if size >= 1e9 or (0 < size < 0.01):
        return f"{x:.3e}"
    if size >= 100:
        return f"{x:,.0f}"
    return f"{x:.1f}" if size >= 10 else f"{x:.2f}"


def _json_default(value):
    if hasattr(value, "item"):          # numpy scalars
        return value.item()
    return str(value)


# ---------------------------------------------------------------- peers in a row

@dataclass
class Peer:
    """One implementation of one benchmark: zero-argument callables with inputs bound.

    ``jvp`` computes value and directional derivative, ``primal`` the value alone (for
    R_f = t(jvp) / t(primal)), ``grad`` value and full gradient by reverse mode (for R_b).
    Each must finish its work before returning (JAX: ``block_until_ready``).
    """
    jvp: Callable[[], object]
    primal: Optional[Callable[[], object]] = None
    grad: Optional[Callable[[], object]] = None


@dataclass
class LoopPeer:
    """An optimization loop of ``steps`` steps, run by ``run()``, timed per step."""
    run: Callable[[], object]
    steps: int


def measure_peers(table, benchmark, peers, **timeit_kwargs):
    """Time every peer's jvp (the row's seconds), primal and grad; record R_f and R_b.

    ``peers`` maps implementation name to :class:`Peer`; add your own entry (e.g.
    ``peers["fwdad"] = Peer(jvp=..., primal=...)``) before calling.
    """
    for name, peer in peers.items():
        jvp_s = timeit(peer.jvp, **timeit_kwargs)
        primal_s = timeit(peer.primal, **timeit_kwargs) if peer.primal else None
        grad_s = timeit(peer.grad, **timeit_kwargs) if peer.grad else None
        table.add(benchmark, name, jvp_s, primal_time=primal_s,
                  R_f=jvp_s / primal_s if primal_s else None, grad_time=grad_s,
                  R_b=grad_s / primal_s if grad_s and primal_s else None)
    return table


def measure_loops(table, benchmark, loops, **timeit_kwargs):
    """Time every :class:`LoopPeer`; the row's seconds are per step, plus steps/s."""
    for name, loop in loops.items():
        per_step = timeit(loop.run, **timeit_kwargs) / loop.steps
        table.add(benchmark, name, per_step, steps=loop.steps, steps_per_s=1.0 / per_step)
    return table


# ---------------------------------------------------------------- memory

# A tiny launcher between us and the worker. Linux keeps a high-water RSS per process that
# survives exec, and a child started by vfork/posix_spawn inherits *its parent's* high-water
# mark: a worker spawned straight from a 2 GB benchmark process reports >= 2 GB. The
# launcher is small, so the worker inherits only a few MiB, and the launcher's
# RUSAGE_CHILDREN then holds the worker's own peak.
_LAUNCHER = """\
import json, resource, subprocess, sys
proc = subprocess.run(sys.argv[1:])
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"returncode": proc.returncode, "peak_kib": peak_kib}))
"""

_WORKER = """\
import importlib, json, re, runpy, sys
target, payload = sys.argv[1], json.loads(sys.argv[2])
if re.fullmatch(r"[^\\s=(){}\\[\\]:;]+:[A-Za-z_]\\w*", target):
    where, name = target.rsplit(":", 1)
    if where.endswith(".py"):
        fn = runpy.run_path(where, run_name="__fwdad_bench_child__")[name]
    else:
        fn = getattr(importlib.import_module(where), name)
    fn(*payload["args"], **payload["kwargs"])
else:
    namespace = {"__name__": "__fwdad_bench_child__", "args": payload["args"],
                 "kwargs": payload["kwargs"]}
    exec(compile(target, "<peak_rss_child>", "exec"), namespace)
"""


def peak_rss_child(fn_path_or_code, *args, python=None, env=None, timeout=None, **kwargs):
    """Peak resident memory in MiB of running one function in a fresh Python process.

    ``fn_path_or_code`` is ``"package.module:function"``, ``"path/to/file.py:function"``
    (called with ``*args, **kwargs``, which must be JSON-serializable) or a block of code
    (executed with ``args`` and ``kwargs`` bound as globals). The number includes the
    interpreter and whatever the function imports: subtract a run of ``"pass"`` or of the
    bare imports for the function's own share. Raises RuntimeError if the child fails.
    """
    payload = json.dumps({"args": list(args), "kwargs": kwargs})
    python = python or sys.executable
    cmd = [python, "-S", "-c", _LAUNCHER, python, "-c", _WORKER, fn_path_or_code, payload]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    report = _last_json_line(proc.stdout)
    if proc.returncode != 0 or report is None or report["returncode"] != 0:
        raise RuntimeError(f"peak_rss_child({fn_path_or_code!r}) failed:\n{proc.stderr}")
    kib = report["peak_kib"]
    if sys.platform == "darwin":        # macOS reports bytes, Linux KiB
        kib /= 1024
    return kib / 1024


def _last_json_line(text):
    for line in reversed(text.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


def reset_peak_rss():
    """Reset this process's peak RSS (VmHWM) on Linux, so the next peak measures one step alone.

    Returns False where that is not possible (then peaks include everything before).
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def rss_mib(field="VmRSS"):
    """This process's current (VmRSS) or peak (VmHWM) resident memory in MiB, from /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
