"""Shared pieces of the reproduction: settings, progress, curves, figures, small statistics."""
import math
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ..bench.figures import pyplot, save  # noqa: F401  (the experiments' figures use them)

PAPER = "Baydin, Pearlmutter, Syme, Wood, Torr. Gradients without Backpropagation. arXiv:2202.08587 (2022)"


def mnist_run(lr, steps, paper=True, decay=1e-4, hidden=None):
    """One MNIST setting: both methods train `steps` iterations at learning rate `lr` (an MLP
    setting may narrow the hidden layers to `hidden` units)."""
    return {"lr": lr, "steps": steps, "paper": paper, "decay": decay, "hidden": hidden}


# The paper's MNIST settings (batch 64, decay k = 1e-4) and, labelled as not the paper's, a
# setting at which both methods reach 85 % test accuracy within a quick run. docs/reproduce.md
# says why one is needed: with decay k the learning rates sum to at most lr / k (2 at the paper's
# lr 2e-4), and on the 1.9-million-parameter MLP forward gradients stall near 70 % at the largest
# stable lr (3e-4), so the MLP setting narrows the hidden layers to 32 units.
PAPER_MNIST = {"logreg": (mnist_run(2e-5, 20000), mnist_run(2e-4, 20000)),
               "mlp": (mnist_run(2e-5, 10000), mnist_run(2e-4, 10000))}
LEARNS_MNIST = {"logreg": mnist_run(3e-3, 60000, paper=False, decay=5e-5),
                "mlp": mnist_run(1e-3, 100000, paper=False, decay=3e-5, hidden=32)}


# forward-only training (experiment `beyond`): one optimizer for every method, its rate per method
BEYOND = dict(hidden=1024, epochs=None, steps=None, optimizer="adam", groups=32, cos_samples=2, timing_steps=20,
              lr={"weight": 1e-4, "activity": 3e-4, "local": 3e-4, "backprop": 1e-3, "local_backprop": 1e-3})


@dataclass
class Settings:
    """Every knob of a run; `quick()` and `full()` are the two presets."""
    name: str
    runs: int = 10                         # independent runs of Beale and Rosenbrock
    beale_steps: int = 1000                # the paper's settings
    beale_lr: float = 0.01
    rosenbrock_steps: int = 25000
    rosenbrock_lr: float = 5e-4
    mnist: dict = field(default_factory=lambda: {m: PAPER_MNIST[m] + (LEARNS_MNIST[m],) for m in PAPER_MNIST})
    batch: int = 64
    eval_points: int = 10                  # evaluations per run: the ends of its measured chunks
    eval_samples: int = 10000              # validation examples (the final test accuracy uses all)
    timing_repeats: int = 5                # every time in the report: median of this many, with range
    timing_min_time: float = 0.05          # seconds of calls in one repeat
    depths: tuple = (1, 2, 4, 8, 12, 16, 20, 24)
    memory: bool = True
    threads: int = 1                       # BLAS threads: 1 keeps timings stable on a busy machine
    beyond: dict = field(default_factory=lambda: dict(BEYOND, epochs=5))   # forward-only training
    seed: int = 0

    @classmethod
    def quick(cls):
        return cls("quick", mnist={"logreg": (mnist_run(2e-4, 20000), LEARNS_MNIST["logreg"]),
                                   "mlp": (mnist_run(2e-4, 500), LEARNS_MNIST["mlp"])},
                   eval_samples=2000, depths=(1, 2, 4, 8), beyond=dict(BEYOND, steps=400))

    @classmethod
    def full(cls):
        return cls("full")

    @classmethod
    def tiny(cls):
        """Seconds, for the test suite."""
        return cls("tiny", runs=5, beale_steps=100, rosenbrock_steps=500,
                   mnist={"logreg": (mnist_run(0.01, 60, paper=False),), "mlp": (mnist_run(0.01, 6, paper=False),)},
                   eval_points=6, eval_samples=200, timing_min_time=0.005, depths=(2,),
                   beyond=dict(BEYOND, hidden=32, steps=24, cos_samples=1, timing_steps=3))

    def as_dict(self):
        return asdict(self)


@dataclass(frozen=True)
class Timing:
    """Seconds of one call: the median of repeated measurements and their range (low, high).

    Every time in the report is one of these, and every derived number (µs per iteration,
    iterations per second, R, T_f / T_b) is computed from its median, so that two numbers
    about the same quantity can never disagree.
    """
    median: float
    low: float
    high: float
    repeats: int

    @classmethod
    def of(cls, samples):
        samples = np.asarray(samples, dtype=np.float64)
        return cls(float(np.median(samples)), float(samples.min()), float(samples.max()), len(samples))

    def __add__(self, other):
        """Two steps done one after the other: medians and range ends add."""
        return Timing(self.median + other.median, self.low + other.low, self.high + other.high,
                      min(self.repeats, other.repeats))

    @property
    def per_second(self):
        return 1.0 / self.median if self.median > 0 else math.inf

    def text(self, scale=1.0, digits=3):
        """'median (low–high)' in units of 1/scale seconds, e.g. scale=1e3 for ms."""
        return (f"{fmt(self.median * scale, digits)} ({fmt(self.low * scale, digits)}–"
                f"{fmt(self.high * scale, digits)})")

    def as_dict(self):
        return asdict(self)


def time_calls(fn, repeats=5, min_time=0.05):
    """Timing of fn(): one discarded warm-up call, then `repeats` loops of the same number of
    calls (enough for one loop to last `min_time`), each giving seconds per call."""
    fn()
    number, elapsed = 1, _loop_seconds(fn, 1)
    while elapsed < min_time:
        number = max(2 * number, math.ceil(number * min_time / max(elapsed, 1e-9)))
        elapsed = _loop_seconds(fn, number)
    return Timing.of([_loop_seconds(fn, number) / number for _ in range(repeats)])


def _loop_seconds(fn, number):
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return time.perf_counter() - start


def not_meaningful(reason):
    """A table cell for a number that would mislead: a dash and why."""
    return f"– ({reason})"


def progress(iterable=None, total=None, desc="", enabled=None):
    """A tqdm progress bar on a terminal (or when forced), otherwise the plain iterable."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if enabled:
        try:
            from tqdm.auto import tqdm
            return tqdm(iterable, total=total, desc=desc, leave=False)
        except ImportError:
            pass
    return iterable if iterable is not None else _Null()


class _Null:
    def update(self, n=1):
        pass

    def close(self):
        pass

    def set_postfix(self, **kwargs):
        pass


def downsample(values, points=400):
    """At most `points` evenly spaced samples of a curve (with their indices), for JSON and plots."""
    values = np.asarray(values)
    if len(values) <= points:
        return np.arange(len(values)), values
    index = np.unique(np.linspace(0, len(values) - 1, points).astype(int))
    return index, values[index]


def smooth(values, window=50):
    """Trailing moving average (window shrinks at the start): a minibatch loss made readable."""
    values = np.asarray(values, dtype=np.float64)
    window = max(1, min(window, len(values)))
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    out = np.empty_like(values)
    for i in range(len(values)):
        start = max(0, i + 1 - window)
        out[i] = (cumulative[i + 1] - cumulative[start]) / (i + 1 - start)
    return out


def iterations_to_reach(losses, target):
    """Iterations after which a loss curve first is at or below `target`, or None."""
    hits = np.nonzero(np.asarray(losses) <= target)[0]
    return int(hits[0]) + 1 if len(hits) else None


def mean_std(values):
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std())


def few_ticks(ax, x=4, y=5):
    """At most about this many tick labels per axis: long numbers never run into each other."""
    from matplotlib.ticker import LogLocator, MaxNLocator
    for axis, count in ((ax.xaxis, x), (ax.yaxis, y)):
        log = axis.get_scale() == "log"
        axis.set_major_locator(LogLocator(numticks=count + 1) if log else MaxNLocator(count))


def times_axis(ax, values):
    """A y axis for measured times: linear from 0, or logarithmic when they span more than a
    factor of 10 (an outlier or two model sizes), with plain tick labels (0.2, never 2×10^-1)."""
    from matplotlib.ticker import FuncFormatter, LogLocator
    values = np.concatenate([np.ravel(v) for v in values])          # one array per run
    values = values[values > 0]
    if len(values) and values.max() > 10 * values.min():
        ax.set_yscale("log")
        few_ticks(ax)
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    else:
        ax.set_ylim(0, 1.1 * values.max() if len(values) else None)
        few_ticks(ax)


def fmt(value, digits=3):
    """A number for a Markdown table."""
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if value == 0 or (1e-3 <= abs(value) < 1e5):
        text = f"{value:.{digits}g}"
        return f"{value:.0f}" if "e" in text else text      # 2994, never 3e+03
    return f"{value:.{digits - 1}e}"


def table(header, rows):
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
    return "\n".join(lines)


def finite(value):
    return value is not None and not (isinstance(value, float) and math.isnan(value))
