"""Experiment 2: MNIST logistic regression and MLP, forward gradient vs backpropagation (Section 5.2-5.3).

The backpropagation baseline is the hand-derived reverse-mode gradient in fwdad.models, run by the
same compiled training loop (fgd with gradient=mlp_value_and_grad), so both methods share the
minibatches, the learning-rate schedule and the update code.

Times: each run is split into `eval_points` chunks (fgd's every=); the wall time at a chunk's end
is a measurement (fgd only interpolates inside a chunk), so curves against time are drawn at chunk
ends only, and a method's time per iteration is the median over all its chunks (it does not depend
on the learning rate), from which iterations / s and T_f / T_b are derived.
"""
import numpy as np

from .. import fgd
from ..models import accuracy, init_mlp, mlp_loss, mlp_sizes, mlp_value, mlp_value_and_grad
from .common import (Timing, downsample, few_ticks, fmt, iterations_to_reach, not_meaningful, progress,
                     pyplot, save, smooth, table, times_axis)

MODELS = {"logreg": dict(hidden=0, depth=0, title="logistic regression"),
          "mlp": dict(hidden=1024, depth=2, title="MLP 784-1024-1024-10")}
METHODS = {"forward": "forward gradient", "backprop": "backpropagation"}
COLORS = {"forward": "tab:blue", "backprop": "tab:orange"}
LEARNS = 0.85            # test accuracy that counts as "learns" in the sentence under a table
MIN_POINTS = 5           # measured chunks below which T_f / T_b is not given


def sizes_for(model, data, setting=None):
    """Layer widths of the model; a setting may narrow the MLP's hidden layers (`hidden`)."""
    spec = MODELS[model]
    hidden = (setting or {}).get("hidden") or spec["hidden"]
    return mlp_sizes(data.num_features, hidden, spec["depth"], data.num_classes)


def architecture(sizes):
    return "-".join(str(int(n)) for n in sizes)


def setting_name(setting):
    """How a setting is named in tables, legends and results.json keys."""
    narrower = f"MLP {setting['architecture']}, " if setting.get("hidden") else ""
    return f"{narrower}lr {setting['lr']:g}, k {setting['decay']:g}, {setting['steps']} it"


def setting_label(setting):
    return "the paper's" if setting["paper"] else "not the paper's"


def run(model, data, settings, show_progress=None):
    """For each setting: forward gradient descent and backpropagation from the same start."""
    sizes = sizes_for(model, data)
    runs = [dict(s, architecture=architecture(sizes_for(model, data, s))) for s in settings.mnist[model]]
    out = {"sizes": sizes.tolist(), "parameters": int(init_mlp(sizes, 0).size), "batch": settings.batch,
           "settings": runs, "test_examples": int(len(data.y_test)),
           "validation_examples": int(min(settings.eval_samples, len(data.y_test))), "runs": {}}
    bar = progress(total=2 * sum(s["steps"] for s in runs), desc=model, enabled=show_progress)
    for setting in runs:
        for method, gradient in (("forward", "forward"), ("backprop", mlp_value_and_grad)):
            key = f"{method} {setting_name(setting)}"
            out["runs"][key] = train(sizes_for(model, data, setting), data, settings, setting, method,
                                     gradient, bar)
    bar.close()
    out["time_per_iteration"] = {timing_key(r): per_iteration(out["runs"], timing_key(r)).as_dict()
                                 for r in out["runs"].values()}
    for setting in runs:
        compare(out, setting)
    return out


def train(sizes, data, settings, setting, method, gradient, bar):
    """One training run with validation at each chunk's end and the test accuracy at the end."""
    chosen = validation_examples(len(data.y_test), settings.eval_samples, settings.seed)
    X_eval, Y_eval = data.x_test[chosen], data.y_test[chosen]
    steps = setting["steps"]
    evaluations = []

    def evaluate(step, params, losses):
        """Validation loss and accuracy (fgd leaves this time out of the training time)."""
        evaluations.append((step, float(mlp_value(params, sizes, X_eval, Y_eval)),
                            float(accuracy(params, sizes, X_eval, Y_eval))))
        bar.update(step - (evaluations[-2][0] if len(evaluations) > 1 else 0))

    theta = init_mlp(sizes, settings.seed)
    evaluate(0, theta, None)
    result = fgd(mlp_loss, theta, args=(sizes,), data=(data.x_train, data.y_train),
                 batch_size=settings.batch, lr=setting["lr"], decay=setting["decay"], steps=steps,
                 seed=settings.seed, gradient=gradient, every=max(1, steps // settings.eval_points),
                 callback=evaluate, progress=False)
    test_accuracy = float(accuracy(result.params, sizes, data.x_test, data.y_test))
    return record(result, evaluations, method, setting, test_accuracy)


def validation_examples(available, wanted, seed):
    """Indices of a fixed random subset of the test set: representative of all of it (its first
    examples are harder than the rest), the same for every run."""
    if wanted >= available:
        return np.arange(available)
    return np.sort(np.random.default_rng(seed).choice(available, wanted, replace=False))


def record(result, evaluations, method, setting, test_accuracy):
    """A run's curves; times only at chunk ends, where they are measured."""
    smoothed = smooth(result.losses, window=max(10, len(result.losses) // 20))
    steps, val_loss, val_acc = zip(*evaluations)
    chunk_ends = np.array([0.0] + [float(result.times[s - 1]) for s in steps[1:]])
    chunk_seconds_per_iteration = np.diff(chunk_ends) / np.diff(steps)
    return {"method": method, "setting": setting, "seconds": float(chunk_ends[-1]),
            "losses": result.losses, "smoothed": smoothed,
            "final_smoothed_loss": float(smoothed[-1]), "start_smoothed_loss": float(smoothed[len(smoothed) // 20]),
            "eval_steps": list(steps), "eval_times": chunk_ends.tolist(),
            "chunk_seconds_per_iteration": chunk_seconds_per_iteration.tolist(),
            "val_loss": list(val_loss), "val_accuracy": list(val_acc), "test_accuracy": test_accuracy}


def timing_key(run):
    """Runs of one method on one architecture cost the same per iteration, whatever the learning rate."""
    return f"{run['method']} {run['setting']['architecture']}"


def per_iteration(runs, key):
    """Seconds per iteration: median (and range) over every measured chunk of the runs with this key."""
    return Timing.of([t for r in runs.values() if timing_key(r) == key for t in r["chunk_seconds_per_iteration"]])


def compare(out, setting):
    """T_f / T_b for one setting, or the reason it is not meaningful."""
    name = setting_name(setting)
    forward, backprop = out["runs"][f"forward {name}"], out["runs"][f"backprop {name}"]
    t_f, t_b = (out["time_per_iteration"][timing_key(r)]["median"] for r in (forward, backprop))
    target = backprop["final_smoothed_loss"]
    reached = iterations_to_reach(forward["smoothed"], target)
    forward["T_f/T_b"], forward["T_reason"] = None, None
    if len(forward["chunk_seconds_per_iteration"]) < MIN_POINTS:
        forward["T_reason"] = "too few measured points"
    elif not np.isfinite(target) or target >= backprop["start_smoothed_loss"]:
        forward["T_reason"] = "backpropagation's loss did not fall"
    elif forward["start_smoothed_loss"] <= target:
        forward["T_reason"] = "forward gradient's curve starts below the target"
    elif reached is None:
        forward["T_reason"] = "not reached within the run"
    else:
        forward["T_f/T_b"] = reached * t_f / (setting["steps"] * t_b)
        forward["iterations_to_target"] = reached


def figures(model, out_dir, summary):
    """Loss and accuracy against iterations and measured time; measured time per iteration per chunk."""
    plt = pyplot()
    figure, axes = plt.subplots(2, 3, figsize=(15, 9))
    styles = ["-", "--", ":", "-."]
    names = [setting_name(s) for s in summary["settings"]]
    handles = []
    for r in summary["runs"].values():
        name = setting_name(r["setting"])
        kw = dict(color=COLORS[r["method"]], ls=styles[names.index(name) % len(styles)])
        at_ends = np.array(r["eval_steps"][1:]) - 1
        line, = axes[0, 0].plot(np.arange(1, len(r["losses"]) + 1), r["smoothed"], **kw)
        handles.append((line, f"{METHODS[r['method']]}, {name}"
                              f"{'' if r['setting']['paper'] else ' (not the paper’s)'}"))
        axes[0, 1].plot(r["eval_times"][1:], r["smoothed"][at_ends], marker=".", **kw)
        axes[0, 2].plot(r["eval_steps"][1:], np.array(r["chunk_seconds_per_iteration"]) * 1e3, marker=".", **kw)
        axes[1, 0].plot(r["eval_steps"], r["val_loss"], marker=".", **kw)
        axes[1, 1].plot(r["eval_times"], r["val_loss"], marker=".", **kw)
        axes[1, 2].plot(r["eval_times"], 100 * np.array(r["val_accuracy"]), marker=".", **kw)
    titles = [("iteration", "training loss (smoothed)"),
              ("wall time (s), measured at chunk ends", "training loss (smoothed)"),
              ("iteration (end of chunk)", "ms / iteration, measured per chunk"),
              ("iteration", "validation loss"), ("wall time (s), measured at chunk ends", "validation loss"),
              ("wall time (s), measured at chunk ends", "validation accuracy (%)")]
    ceiling = 1.5 * max(r["val_loss"][0] for r in summary["runs"].values())
    for ax, (xlabel, ylabel) in zip(axes.flat, titles):
        ax.set(xlabel=xlabel, ylabel=ylabel)
        if "loss" in ylabel:
            ax.set_ylim(0, ceiling)          # a diverging run must not flatten the others
        few_ticks(ax)
    times_axis(axes[0, 2], [np.array(r["chunk_seconds_per_iteration"]) * 1e3 for r in summary["runs"].values()])
    axes[1, 2].set_ylim(0, 100)
    figure.suptitle(f"MNIST {title(model, summary)}: forward gradient vs backpropagation "
                    f"(batch {summary['batch']})")
    lines, labels = zip(*handles)
    return [save(figure, out_dir, f"mnist_{model}.png", (lines, labels), legend_columns=2)]


def report(model, summary, figure_names):
    timing = {k: Timing(**t) for k, t in summary["time_per_iteration"].items()}
    rows = []
    for r in summary["runs"].values():
        t = timing[timing_key(r)]
        rows.append([setting_name(r["setting"]) + f" ({setting_label(r['setting'])})", METHODS[r["method"]],
                     fmt(r["final_smoothed_loss"]), fmt(r["val_loss"][-1]), f"{100 * r['val_accuracy'][-1]:.1f}%",
                     f"{100 * r['test_accuracy']:.1f}%", t.text(1e3), fmt(t.per_second), t_ratio_cell(r)])
    text = [f"### MNIST {title(model, summary)}",
            f"{summary['parameters']:,} parameters, batch {summary['batch']}; lr: learning rate, k: its "
            "decay (lr × e^(−k·iteration)), it: iterations. Validation: a fixed random "
            f"{summary['validation_examples']:,} of the test examples, at each chunk's end; test accuracy: all "
            f"{summary['test_examples']:,}, after training. ms / iteration: median over every measured "
            "chunk of the method's runs (range in brackets); iterations / s = 1 / that median. T_f / T_b: "
            "iterations forward gradient needs to reach backpropagation's final (smoothed) training "
            "loss × its ms / iteration, over backpropagation's whole run.", "",
            table(["setting", "method", "final training loss", "validation loss", "validation accuracy",
                   "test accuracy", "ms / iteration (range)", "iterations / s", "T_f / T_b"], rows), "",
            what_it_shows(summary, timing), ""]
    text += [f"![mnist {model}]({f})" for f in figure_names]
    return "\n".join(text) + "\n"


def title(model, summary):
    """'logistic regression' or 'MLP 784-1024-1024-10' (the widths of the data actually used)."""
    return "MLP " + architecture(summary["sizes"]) if model == "mlp" else MODELS[model]["title"]


def t_ratio_cell(r):
    if r["method"] != "forward":
        return "1"
    return fmt(r["T_f/T_b"]) if r["T_f/T_b"] is not None else not_meaningful(r["T_reason"])


def what_it_shows(summary, timing):
    """The sentence under a table: what the runs show and what they do not."""
    parts = []
    for setting in summary["settings"]:
        name = setting_name(setting)
        forward, backprop = (summary["runs"][f"{m} {name}"] for m in METHODS)
        accuracies = (f"test accuracy {100 * forward['test_accuracy']:.1f}% (forward gradient) and "
                      f"{100 * backprop['test_accuracy']:.1f}% (backpropagation)")
        if min(forward["test_accuracy"], backprop["test_accuracy"]) >= LEARNS:
            parts.append(f"At {name} ({setting_label(setting)}) both methods learn: {accuracies}.")
        elif max(forward["test_accuracy"], backprop["test_accuracy"]) >= LEARNS:
            parts.append(f"At {name} ({setting_label(setting)}) only one method gets to "
                         f"{100 * LEARNS:.0f}%: {accuracies}.")
        else:
            parts.append(f"At {name} ({setting_label(setting)}) neither method reaches {100 * LEARNS:.0f}% "
                         f"({accuracies}): the run does not show how they compare once trained."
                         + learning_rate_budget(setting))
    paper = summary["settings"][0]["architecture"]
    ratio = timing[f"forward {paper}"].median / timing[f"backprop {paper}"].median
    parts.append(f"Per iteration of the {paper} model, forward gradient costs {fmt(ratio)}× "
                 "backpropagation on this machine, so a T_f / T_b below 1 needs forward gradient to need "
                 "fewer iterations; '–' marks a comparison the run cannot make.")
    return "**What this run shows.** " + " ".join(parts)


def learning_rate_budget(setting):
    """Why a run at a small learning rate gets nowhere: its learning rates add up to little."""
    lr, k, steps = setting["lr"], setting["decay"], setting["steps"]
    if k <= 0:
        return ""
    total = lr * (1 - np.exp(-k * steps)) / (1 - np.exp(-k))
    return (f" Its learning rates add up to {fmt(total)}, and to at most lr / k = {fmt(lr / k)} "
            "however long it runs.")


def to_json(summary):
    """The run's numbers with curves downsampled (the JSON stays small)."""
    out = {k: v for k, v in summary.items() if k != "runs"}
    out["runs"] = {}
    for key, r in summary["runs"].items():
        index, smoothed = downsample(r["smoothed"])
        out["runs"][key] = {k: v for k, v in r.items() if k not in ("losses", "smoothed")}
        out["runs"][key].update(curve_index=index.tolist(), smoothed_loss=smoothed.tolist())
    return out
