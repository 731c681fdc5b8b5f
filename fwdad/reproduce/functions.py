"""Experiment 1: Beale and Rosenbrock, forward gradient vs gradient descent (paper, Section 5.1)."""
import numpy as np

from .. import fgd
from .common import (Timing, downsample, few_ticks, fmt, iterations_to_reach, mean_std, not_meaningful,
                     progress, pyplot, save, table, times_axis)


def beale(x, y):
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y * y) ** 2 + (2.625 - x + x * y ** 3) ** 2


def rosenbrock(x, y):
    return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2


PROBLEMS = {
    "beale": dict(function=beale, start=(1.0, 1.0), minimum=(3.0, 0.5), box=(-1.0, 4.0, -1.5, 2.0)),
    "rosenbrock": dict(function=rosenbrock, start=(-1.0, 0.0), minimum=(1.0, 1.0), box=(-1.5, 1.5, -0.5, 1.5)),
}


def run(name, settings, show_progress=None):
    """10 runs each of FGD (seeds 0..9) and GD with the exact gradient, with the paper's settings."""
    problem = PROBLEMS[name]
    steps = getattr(settings, f"{name}_steps")
    lr = getattr(settings, f"{name}_lr")
    runs = {"forward": [], "exact": []}
    bar = progress(total=2 * settings.runs, desc=name, enabled=show_progress)
    for gradient in runs:
        for r in range(settings.runs):
            result = fgd(problem["function"], problem["start"], lr=lr, steps=steps,
                         seed=settings.seed + r, gradient=gradient, trajectory=True, progress=False)
            runs[gradient].append(result)
            bar.update(1)
    bar.close()
    return summarize(name, runs, steps, lr)


def summarize(name, runs, steps, lr):
    """Final f, time per iteration (median over the runs, with range) and T_f / T_b from them."""
    out = {"steps": steps, "lr": lr, "start": PROBLEMS[name]["start"], "minimum": PROBLEMS[name]["minimum"]}
    exact_final = float(np.mean([r.losses[-1] for r in runs["exact"]]))
    for gradient, results in runs.items():
        finals = [float(r.losses[-1]) for r in results]
        per_iteration = Timing.of([r.seconds / steps for r in results])
        reach = [iterations_to_reach(r.losses, exact_final) for r in results]
        reached = [n for n in reach if n is not None]
        index, _ = downsample(results[0].losses)
        out[gradient] = {
            "final_loss_mean": mean_std(finals)[0], "final_loss_std": mean_std(finals)[1],
            "final_params": [list(map(float, r.trajectory[-1])) for r in results],
            "seconds_per_iteration": per_iteration.as_dict(),
            "us_per_step": per_iteration.median * 1e6,
            "steps_per_second": per_iteration.per_second,
            "run_seconds_per_iteration": [r.seconds / steps for r in results],
            "runs_reaching_gd_final_loss": len(reached),
            "iterations_to_gd_final_loss": float(np.median(reached)) if reached else None,
            "curve_index": index.tolist(),
            "loss_curves": [r.losses[index].tolist() for r in results],
        }
    forward, exact = out["forward"], out["exact"]
    forward["T_ratio"] = (forward["iterations_to_gd_final_loss"] * forward["us_per_step"] /
                          (steps * exact["us_per_step"])) if forward["runs_reaching_gd_final_loss"] else None
    out["results"] = runs          # kept in memory for the figures, dropped before JSON
    return out


LABELS = {"forward": "forward gradient", "exact": "gradient descent (exact gradient)"}
COLORS = {"forward": "tab:blue", "exact": "tab:orange"}


def figures(name, out_dir, summary):
    """f vs iterations, f vs wall time, measured time per iteration, trajectories over contours."""
    plt = pyplot()
    runs = summary["results"]
    figure, axes = plt.subplots(2, 2, figsize=(11, 9))
    for gradient, results in runs.items():
        for r in results:
            steps = np.arange(1, len(r.losses) + 1)
            kw = dict(color=COLORS[gradient], alpha=0.35, lw=0.8)
            axes[0, 0].plot(steps, r.losses, **kw)
            axes[0, 1].plot(steps * (r.seconds / len(r.losses)) * 1e3, r.losses, **kw)
    axes[0, 0].set(xlabel="iteration", ylabel="f", yscale="log")
    axes[0, 1].set(xlabel="wall time (ms) = iteration × the run's measured time per iteration",
                   ylabel="f", yscale="log")
    per_iteration_panel(axes[1, 0], summary)
    trajectory_panel(axes[1, 1], name, runs)
    for ax in (axes[0, 0], axes[0, 1], axes[1, 1]):
        few_ticks(ax)
    figure.suptitle(f"{name.capitalize()}: forward gradient vs gradient descent "
                    f"({summary['steps']} iterations, lr {summary['lr']}, {len(runs['forward'])} runs each)")
    handles = [plt.Line2D([], [], color=COLORS[g], label=LABELS[g]) for g in runs]
    handles += [plt.Line2D([], [], color="k", marker="o", ls="", label="start"),
                plt.Line2D([], [], color="r", marker="*", ms=12, ls="", label="global minimum")]
    return [save(figure, out_dir, f"{name}.png", (handles, [h.get_label() for h in handles]))]


def per_iteration_panel(ax, summary):
    """Each run's measured time per iteration (its whole loop is one compiled call), and the median."""
    for i, gradient in enumerate(("forward", "exact")):
        values = np.asarray(summary[gradient]["run_seconds_per_iteration"]) * 1e9
        jitter = np.linspace(-0.12, 0.12, len(values))
        ax.plot(i + jitter, values, "o", color=COLORS[gradient], alpha=0.6)
        ax.hlines(np.median(values), i - 0.25, i + 0.25, color="k", lw=1.5)
    ax.set_xlim(-0.6, 1.6)
    times_axis(ax, [np.asarray(summary[g]["run_seconds_per_iteration"]) * 1e9 for g in ("forward", "exact")])
    ax.set_xticks([0, 1], ["forward gradient", "gradient descent"])
    ax.set_ylabel("ns / iteration (dot: a run's time / iterations)")
    ax.set_title("measured time per iteration (bar: median)", fontsize=10)


def trajectory_panel(ax, name, runs):
    """Paths of the runs over the function's contours, start and global minimum marked."""
    problem = PROBLEMS[name]
    x0, x1, y0, y1 = problem["box"]
    gx, gy = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
    ax.contour(gx, gy, np.log10(problem["function"](gx, gy) + 1e-12), levels=30, cmap="Greys", linewidths=0.6)
    for gradient in ("exact", "forward"):             # forward gradient's paths on top
        for r in runs[gradient][:10]:
            ax.plot(r.trajectory[:, 0], r.trajectory[:, 1], color=COLORS[gradient], alpha=0.5, lw=0.8)
    ax.plot(*problem["start"], "ko", ms=5)
    ax.plot(*problem["minimum"], "r*", ms=14)
    ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel="x", ylabel="y")


def report(name, summary, figure_names):
    rows = []
    for gradient, label in (("forward", "forward gradient"), ("exact", "gradient descent")):
        s = summary[gradient]
        t = Timing(**s["seconds_per_iteration"])
        rows.append([label, f"{fmt(s['final_loss_mean'])} ± {fmt(s['final_loss_std'])}",
                     t.text(1e9), fmt(t.per_second),
                     t_ratio_cell(summary) if gradient == "forward" else "1",
                     str(s["runs_reaching_gd_final_loss"]) if gradient == "forward" else "–"])
    runs = len(summary["forward"]["final_params"])
    text = [f"### {name.capitalize()}",
            f"{summary['steps']} iterations, learning rate {summary['lr']}, start {summary['start']}, "
            f"minimum {summary['minimum']}; runs: {runs} each. Time per iteration: the median over the "
            f"{runs} runs of a run's wall time / its iterations (range in brackets); iterations / s is "
            "1 / that median. T_f / T_b = (median iterations forward gradient needs to reach gradient "
            "descent's final f) × its time per iteration / gradient descent's whole run.",
            "", table(["method", "final f (mean ± std)", "ns / iteration (range)", "iterations / s",
                       "T_f / T_b", "runs reaching GD's final f"], rows), ""]
    text += [f"![{name}]({f})" for f in figure_names]
    return "\n".join(text) + "\n"


def t_ratio_cell(summary):
    if summary["forward"]["T_ratio"] is None:
        return not_meaningful("no run reached gradient descent's final f")
    return fmt(summary["forward"]["T_ratio"])
