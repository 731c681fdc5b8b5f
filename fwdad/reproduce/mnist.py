"""Experiment 2: MNIST logistic regression and MLP, forward gradient vs backpropagation (Section 5.2-5.3).

The backpropagation baseline is the hand-derived reverse-mode gradient in fwdad.models, run by the
same compiled training loop (fgd with gradient=mlp_value_and_grad), so both methods share the
minibatches, the learning-rate schedule and the update code.
"""
import numpy as np

from .. import fgd
from ..models import mlp_loss, mlp_sizes, mlp_value, mlp_value_and_grad, init_mlp, accuracy
from .common import downsample, fmt, progress, pyplot, save, smooth, table, time_to_reach

MODELS = {"logreg": dict(hidden=0, depth=0, title="logistic regression"),
          "mlp": dict(hidden=1024, depth=2, title="MLP 784-1024-1024-10")}


def sizes_for(model, data):
    spec = MODELS[model]
    return mlp_sizes(data.num_features, spec["hidden"], spec["depth"], data.num_classes)


def run(model, data, settings, show_progress=None):
    """For each learning rate: forward gradient descent and backpropagation from the same start."""
    sizes = sizes_for(model, data)
    steps = settings.mnist_steps[model]
    X_eval = data.x_test[:settings.eval_samples]
    Y_eval = data.y_test[:settings.eval_samples]
    out = {"sizes": sizes.tolist(), "parameters": int(init_mlp(sizes, 0).size), "steps": steps,
           "batch": settings.batch, "decay": settings.decay, "runs": {}}
    bar = progress(total=2 * len(settings.learning_rates) * steps, desc=model, enabled=show_progress)
    for lr in settings.learning_rates:
        for method, gradient in (("forward", "forward"), ("backprop", mlp_value_and_grad)):
            evaluations = []

            def evaluate(step, params, losses):
                """Validation loss and accuracy (fgd leaves this time out of the training time)."""
                evaluations.append((step, float(mlp_value(params, sizes, X_eval, Y_eval)),
                                    float(accuracy(params, sizes, X_eval, Y_eval))))
                bar.update(step - (evaluations[-2][0] if len(evaluations) > 1 else 0))

            theta = init_mlp(sizes, settings.seed)
            evaluate(0, theta, None)
            result = fgd(mlp_loss, theta, args=(sizes,), data=(data.x_train, data.y_train),
                         batch_size=settings.batch, lr=lr, decay=settings.decay, steps=steps,
                         seed=settings.seed, gradient=gradient, every=settings.eval_every,
                         callback=evaluate, progress=False)
            out["runs"][f"{method} lr={lr:g}"] = record(result, evaluations, method, lr)
    bar.close()
    for lr in settings.learning_rates:
        forward, backprop = out["runs"][f"forward lr={lr:g}"], out["runs"][f"backprop lr={lr:g}"]
        target = backprop["final_smoothed_loss"]
        reach = time_to_reach(forward["smoothed"], forward["times"], target)
        forward["T_f/T_b"] = reach / backprop["seconds"] if reach is not None else None
        forward["reached_backprop_loss"] = reach is not None
    return out


def record(result, evaluations, method, lr):
    smoothed = smooth(result.losses, window=max(10, len(result.losses) // 20))
    steps, val_loss, val_acc = zip(*evaluations)
    eval_times = [0.0] + [float(result.times[s - 1]) for s in steps[1:]]
    return {"method": method, "lr": lr, "seconds": float(result.seconds),
            "steps_per_second": float(result.steps_per_second),
            "losses": result.losses, "smoothed": smoothed, "times": result.times,
            "final_smoothed_loss": float(smoothed[-1]),
            "eval_steps": list(steps), "eval_times": eval_times,
            "val_loss": list(val_loss), "val_accuracy": list(val_acc)}


def figures(model, out_dir, summary):
    plt = pyplot()
    figure, axes = plt.subplots(2, 3, figsize=(15, 8))
    styles = {"forward": "-", "backprop": "--"}
    for key, r in summary["runs"].items():
        color = "tab:blue" if r["method"] == "forward" else "tab:orange"
        alpha = 1.0 if r["lr"] == max(x["lr"] for x in summary["runs"].values()) else 0.55
        label = f"{'forward gradient' if r['method'] == 'forward' else 'backprop'}, lr {r['lr']:g}"
        steps = np.arange(1, len(r["losses"]) + 1)
        kw = dict(color=color, ls=styles[r["method"]], alpha=alpha, label=label)
        axes[0, 0].plot(steps, r["smoothed"], **kw)
        axes[0, 1].plot(r["times"], r["smoothed"], **kw)
        axes[1, 0].plot(r["eval_steps"], r["val_loss"], marker=".", **kw)
        axes[1, 1].plot(r["eval_times"], r["val_loss"], marker=".", **kw)
        axes[1, 2].plot(r["eval_times"], r["val_accuracy"], marker=".", **kw)
        axes[0, 2].plot(steps, r["times"], **kw)
    titles = [("iteration", "training loss (smoothed)"), ("wall time (s)", "training loss (smoothed)"),
              ("iteration", "wall time (s)"), ("iteration", "validation loss"),
              ("wall time (s)", "validation loss"), ("wall time (s)", "validation accuracy")]
    for ax, (xlabel, ylabel) in zip(axes.flat, titles):
        ax.set_xlabel(xlabel), ax.set_ylabel(ylabel)
        if "loss" in ylabel:
            ax.set_yscale("log")
    axes[0, 0].legend(fontsize=8)
    figure.suptitle(f"MNIST {MODELS[model]['title']}: forward gradient vs backpropagation "
                    f"(batch {summary['batch']}, decay {summary['decay']:g})")
    return [save(figure, out_dir, f"mnist_{model}.png")]


def report(model, summary, figure_names):
    rows = []
    for key, r in summary["runs"].items():
        ratio = r.get("T_f/T_b")
        rows.append([("forward gradient" if r["method"] == "forward" else "backpropagation"), f"{r['lr']:g}",
                     fmt(r["final_smoothed_loss"]), fmt(r["val_loss"][-1]), f"{100 * r['val_accuracy'][-1]:.1f}%",
                     fmt(r["seconds"]), fmt(r["steps_per_second"]),
                     fmt(ratio) if r["method"] == "forward" else "-"])
    text = [f"### MNIST {MODELS[model]['title']}",
            f"{summary['parameters']:,} parameters, {summary['steps']} iterations per run, batch "
            f"{summary['batch']}, learning rate decay k = {summary['decay']:g}. T_f / T_b is the time "
            "forward gradient takes to reach backpropagation's final (smoothed) training loss, over "
            "backpropagation's total time ('-' when it does not get there within the run).", "",
            table(["method", "lr", "final training loss", "validation loss", "validation accuracy",
                   "time (s)", "iterations / s", "T_f / T_b"], rows), ""]
    text += [f"![mnist {model}]({f})" for f in figure_names]
    return "\n".join(text) + "\n"


def to_json(summary):
    """The run's numbers with curves downsampled (the JSON stays small)."""
    out = {k: v for k, v in summary.items() if k != "runs"}
    out["runs"] = {}
    for key, r in summary["runs"].items():
        index, smoothed = downsample(r["smoothed"])
        out["runs"][key] = {k: v for k, v in r.items() if k not in ("losses", "smoothed", "times")}
        out["runs"][key].update(curve_index=index.tolist(), smoothed_loss=smoothed.tolist(),
                                curve_times=np.asarray(r["times"])[index].tolist())
    return out
