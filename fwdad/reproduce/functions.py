"""Experiment 1: Beale and Rosenbrock, forward gradient vs gradient descent (paper, Section 5.1)."""
import numpy as np

from .. import fgd
from .common import downsample, fmt, mean_std, progress, pyplot, save, table, time_to_reach


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
    out = {"steps": steps, "lr": lr, "start": PROBLEMS[name]["start"], "minimum": PROBLEMS[name]["minimum"]}
    exact_final = np.mean([r.losses[-1] for r in runs["exact"]])
    exact_time = np.mean([r.seconds for r in runs["exact"]])
    for gradient, results in runs.items():
        finals = [float(r.losses[-1]) for r in results]
        reach = [time_to_reach(r.losses, r.times, exact_final) for r in results]
        reached = [t for t in reach if t is not None]
        index, _ = downsample(results[0].losses)
        out[gradient] = {
            "final_loss_mean": mean_std(finals)[0], "final_loss_std": mean_std(finals)[1],
            "final_params": [list(map(float, r.trajectory[-1])) for r in results],
            "seconds_mean": float(np.mean([r.seconds for r in results])),
            "us_per_step": float(np.mean([r.seconds for r in results])) / steps * 1e6,
            "steps_per_second": float(np.mean([r.steps_per_second for r in results])),
            "runs_reaching_gd_final_loss": len(reached),
            "T_ratio": float(np.mean(reached)) / exact_time if reached else None,
            "curve_index": index.tolist(),
            "loss_curves": [r.losses[index].tolist() for r in results],
            "time_curves": [r.times[index].tolist() for r in results],
        }
    out["results"] = runs          # kept in memory for the figures, dropped before JSON
    return out


def figures(name, out_dir, summary):
    """f vs iterations, f vs wall time, time vs iterations, and trajectories over contours."""
    plt = pyplot()
    problem, runs = PROBLEMS[name], summary["results"]
    colors = {"forward": "tab:blue", "exact": "tab:orange"}
    labels = {"forward": "forward gradient", "exact": "gradient descent (exact gradient)"}
    figure, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    for gradient, results in runs.items():
        for i, r in enumerate(results):
            label = labels[gradient] if i == 0 else None
            steps = np.arange(1, len(r.losses) + 1)
            axes[0, 0].plot(steps, r.losses, color=colors[gradient], alpha=0.35, lw=0.8, label=label)
            axes[0, 1].plot(r.times, r.losses, color=colors[gradient], alpha=0.35, lw=0.8, label=label)
            axes[1, 0].plot(steps, r.times, color=colors[gradient], alpha=0.35, lw=0.8, label=label)
    for ax, (xlabel, ylabel) in zip(axes.flat[:3], [("iteration", "f"), ("wall time (s)", "f"),
                                                      ("iteration", "wall time (s)")]):
        ax.set_xlabel(xlabel), ax.set_ylabel(ylabel), ax.legend(fontsize=8)
        if ylabel == "f":
            ax.set_yscale("log")
    x0, x1, y0, y1 = problem["box"]
    gx, gy = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
    values = problem["function"](gx, gy)
    ax = axes[1, 1]
    ax.contour(gx, gy, np.log10(values + 1e-12), levels=30, cmap="Greys", linewidths=0.6)
    for gradient, results in runs.items():
        for i, r in enumerate(results[:10]):
            path = r.trajectory
            ax.plot(path[:, 0], path[:, 1], color=colors[gradient], alpha=0.5, lw=0.8,
                    label=labels[gradient] if i == 0 else None)
    ax.plot(*problem["start"], "ko", ms=5, label="start")
    ax.plot(*problem["minimum"], "r*", ms=14, label="global minimum")
    ax.set_xlim(x0, x1), ax.set_ylim(y0, y1), ax.set_xlabel("x"), ax.set_ylabel("y"), ax.legend(fontsize=8)
    figure.suptitle(f"{name.capitalize()}: forward gradient vs gradient descent "
                    f"({summary['steps']} iterations, lr {summary['lr']}, {len(runs['forward'])} runs)")
    return [save(figure, out_dir, f"{name}.png")]


def report(name, summary, figure_names):
    rows = []
    for gradient, label in (("forward", "forward gradient"), ("exact", "gradient descent")):
        s = summary[gradient]
        rows.append([label, f"{fmt(s['final_loss_mean'])} ± {fmt(s['final_loss_std'])}",
                     fmt(s["us_per_step"]), fmt(s["steps_per_second"]),
                     fmt(s["T_ratio"]) if gradient == "forward" else "1",
                     str(s["runs_reaching_gd_final_loss"]) if gradient == "forward" else "-"])
    text = [f"### {name.capitalize()}",
            f"{summary['steps']} iterations, learning rate {summary['lr']}, start {summary['start']}, "
            f"minimum {summary['minimum']}; runs: {len(summary['forward']['final_params'])} each.",
            "", table(["method", "final f (mean ± std)", "µs / iteration", "iterations / s",
                       "T_f / T_b", "runs reaching GD's final f"], rows), ""]
    text += [f"![{name}]({f})" for f in figure_names]
    return "\n".join(text) + "\n"
