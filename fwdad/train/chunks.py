"""fgd's loop run in chunks sized to take a fraction of a second each, so that Ctrl-C, a
non-finite loss and the progress bar are seen promptly; `every=N` calls back after every N
steps. A run that stops early (Ctrl-C, a raising callback, a non-finite loss) raises an error
whose `.result` is the FGDResult of the steps done."""
import math
import signal
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ..errors import FwdadError, user_stacklevel

CHUNK_SECONDS = 0.2            # target wall time of one compiled chunk (Ctrl-C is seen between chunks)


class FGDStopped(FwdadError):
    """fgd stopped before its last step; `.result` is the FGDResult of the steps done."""
    result = None


class NonFiniteLossError(FGDStopped, FloatingPointError):
    """The loss became NaN or infinite (on_nonfinite="raise"); `.step` is the first such step."""


class CallbackError(FGDStopped):
    """fgd's callback raised; the callback's exception is `__cause__`."""


class FGDInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped fgd; `.result` is the FGDResult of the steps done."""
    result = None


@dataclass
class FGDResult:
    """What fgd returns: final parameters (same structure as given), one loss per step, timing."""
    params: object
    losses: np.ndarray
    times: np.ndarray               # wall-clock seconds since the start, at the end of each step
    seconds: float
    steps: int
    history: list = field(default_factory=list)
    trajectory: np.ndarray = None   # with trajectory=True: (steps + 1, total parameter count)
    communication: dict = None      # with comm=: bytes sent and received per step, this rank's share

    @property
    def steps_per_second(self):
        return self.steps / self.seconds if self.seconds > 0 else math.inf


@dataclass
class ChunkedRun:
    """What run_in_chunks reports: per-step times, the callback's history, the steps done, and
    the error to raise when the run stopped early (with the caller's partial result)."""
    times: np.ndarray
    seconds: float
    history: list
    done: int
    stop: BaseException = None
    cause: BaseException = None

    def finish(self, result):
        """`result` when the run completed; else raise the stopping error carrying it."""
        if self.stop is None:
            return result
        self.stop.result = result
        raise self.stop from self.cause


def run_in_chunks(steps, run, current, losses, every=None, callback=None, bar=None, on_nonfinite="raise"):
    """Call run(done, n) for consecutive chunks of n steps, n sized so that each chunk takes
    about CHUNK_SECONDS and never crosses a multiple of `every`; a ChunkedRun.

    run may return how many of its n steps it ran (fewer: it stopped at a non-finite loss).
    times[t] is the wall time at the end of step t (interpolated inside a chunk); the callback
    and the progress bar run between chunks and their time is left out of times and seconds.
    Ctrl-C during a chunk is deferred to its end, so the steps done are always known.
    """
    times, history, done, paused, size = np.zeros(steps), [], 0, 0.0, 1
    stop = cause = None
    warned = [on_nonfinite != "warn"]
    start = time.perf_counter()
    try:
        while done < steps and stop is None:
            n = min(size, steps - done, (done // every + 1) * every - done if every else steps)
            began = time.perf_counter()
            with interrupts_deferred() as interrupted:
                ran = run(done, n)
                ran = n if ran is None else ran
                first, done = done, done + ran
            elapsed = time.perf_counter() - start - paused
            previous = times[first - 1] if first else 0.0
            times[first:done] = previous + (elapsed - previous) * np.arange(1, ran + 1) / max(ran, 1)
            size = max(1, min(16 * size, int(ran * CHUNK_SECONDS / max(time.perf_counter() - began, 1e-9))))
            outside = time.perf_counter()
            stop = nonfinite_stop(losses, first, done, on_nonfinite, warned)
            if interrupted and stop is None:
                stop = interruption(done, steps)
            if bar is not None:
                bar.update(ran)
                bar.set_postfix(loss=f"{losses[done - 1]:.4g}")
            if callback is not None and stop is None and (done == steps or (every and done % every == 0)):
                stop, cause = call_back(callback, done, current, losses, history)
            paused += time.perf_counter() - outside
    except KeyboardInterrupt:                   # Ctrl-C outside a chunk (callback, progress bar)
        stop = interruption(done, steps)
    finally:
        if bar is not None:
            bar.close()
    return ChunkedRun(times[:done], time.perf_counter() - start - paused, history, done, stop, cause)


def interruption(done, steps):
    return FGDInterrupted(f"fgd: interrupted after step {done} of {steps}; the error's .result "
                          "holds the steps done.")


def call_back(callback, done, current, losses, history):
    """Call the user's callback, appending its value to history; (None, None), or the
    CallbackError to stop with and the callback's exception."""
    try:
        history.append(callback(done, current(), losses[:done]))
        return None, None
    except Exception as error:
        return CallbackError(f"fgd: the callback raised {type(error).__name__}: {error} (after step "
                             f"{done}).\nWhat to do: fix the callback; the error's .result holds the "
                             "steps done."), error


def nonfinite_stop(losses, first, done, on_nonfinite, warned):
    """The NonFiniteLossError for the first NaN/inf loss in losses[first:done] (on_nonfinite=
    "raise"), or None; with "warn", one RuntimeWarning for the first such step of the run."""
    if on_nonfinite == "continue" or done == first:
        return None
    recent = np.asarray(losses[first:done])
    bad = np.flatnonzero(~np.isfinite(recent))
    if not bad.size:
        return None
    step, value = first + int(bad[0]), recent[bad[0]]
    stopped = ("the run stopped there; the error's .result.params are the parameters that loss "
               "was computed at (that step's update is not applied)" if done == step + 1
               else f"the run stopped after step {done}")
    message = (f"fgd: the loss at step {step} is {value} (not finite); {stopped}."
               f"\nWhat to do: lower lr, clip the gradient (clip=...), check the data; or pass "
               "on_nonfinite='warn' or 'continue' to go on. The error's .result holds the steps done.")
    if on_nonfinite == "raise":
        error = NonFiniteLossError(message)
        error.step = step
        return error
    if not warned[0]:
        warned[0] = True
        warnings.warn(f"fgd: the loss at step {step} is {value} (not finite); going on "
                      "(on_nonfinite='warn').", RuntimeWarning, stacklevel=user_stacklevel())
    return None


@contextmanager
def interrupts_deferred():
    """Within the block, Ctrl-C sets a flag (a non-empty list) instead of raising, so a chunk of
    compiled steps always ends with its parameters and losses consistent. A no-op outside the
    main thread or when SIGINT has a handler other than Python's default."""
    flag = []
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield flag
        return
    signal.signal(signal.SIGINT, lambda *_: flag.append(True))
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
