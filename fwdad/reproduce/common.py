"""Shared pieces of the reproduction: settings, progress, curves, figures, small statistics."""
import math
import os
import sys
from dataclasses import asdict, dataclass, field

import numpy as np

PAPER = "Baydin, Pearlmutter, Syme, Wood, Torr. Gradients without Backpropagation. arXiv:2202.08587 (2022)"


@dataclass
class Settings:
    """Every knob of a run; `quick()` and `full()` are the two presets."""
    name: str
    runs: int = 10                         # independent runs of Beale and Rosenbrock
    beale_steps: int = 1000                # the paper's settings
    beale_lr: float = 0.01
    rosenbrock_steps: int = 25000
    rosenbrock_lr: float = 5e-4
    mnist_steps: dict = field(default_factory=lambda: {"logreg": 6000, "mlp": 6000})
    learning_rates: tuple = (2e-5, 2e-4)
    decay: float = 1e-4
    batch: int = 64
    eval_every: int = 250
    eval_samples: int = 10000
    timing_repeats: int = 5
    depths: tuple = (1, 2, 4, 8, 12, 16, 20, 24)
    memory: bool = True
    threads: int = 1                       # BLAS threads: 1 keeps timings stable on a busy machine
    seed: int = 0

    @classmethod
    def quick(cls):
        return cls("quick", mnist_steps={"logreg": 1000, "mlp": 300}, eval_every=50,
                   eval_samples=2000, timing_repeats=3, depths=(1, 2, 4, 8))

    @classmethod
    def full(cls):
        return cls("full", mnist_steps={"logreg": 20000, "mlp": 10000})

    @classmethod
    def tiny(cls):
        """Seconds, for the test suite."""
        return cls("tiny", runs=2, beale_steps=100, rosenbrock_steps=500,
                   mnist_steps={"logreg": 60, "mlp": 6}, learning_rates=(0.01,), eval_every=20,
                   eval_samples=200, timing_repeats=1, depths=(1,))

    def as_dict(self):
        return asdict(self)


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


def time_to_reach(losses, times, target):
    """Wall time at which a (smoothed) loss curve first reaches `target`, or None."""
    hits = np.nonzero(np.asarray(losses) <= target)[0]
    return float(times[hits[0]]) if len(hits) else None


def mean_std(values):
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std())


def pyplot():
    """matplotlib with the non-interactive Agg backend (figures are files)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(figure, out, name):
    path = os.path.join(out, name)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot().close(figure)
    return name


def fmt(value, digits=3):
    """A number for a Markdown table."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if value == 0 or (1e-3 <= abs(value) < 1e5):
        return f"{value:.{digits}g}"
    return f"{value:.{digits - 1}e}"


def table(header, rows):
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
    return "\n".join(lines)


def finite(value):
    return value is not None and not (isinstance(value, float) and math.isnan(value))
