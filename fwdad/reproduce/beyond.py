"""Experiment `beyond`: forward-only training that gets close to backpropagation.

MNIST, the paper's MLP 784-1024-1024-10, batch 64, and for every method the same steps, the same
optimizer and the same minibatches (fgd's compiled loop, one seed):

* weight perturbation: the paper's forward gradient (fgd's default);
* activity perturbation (Ren, Kornblith, Liao, Hinton, ICLR 2023): fgd(gradient="activity") on
  the per-example losses (fwdad.models.mlp_example_losses);
* activity perturbation with local losses: each hidden layer trained by its own head, blocks
  separated by stop_gradient, units in feature groups (fwdad.models.mlp_local_losses);
* backpropagation: the hand-derived gradient (fwdad.models.mlp_value_and_grad);
* and, as a reference that separates the cost of local losses from the noise of forward
  gradients, backpropagation of the local losses (the exact gradient activity perturbation
  with local losses estimates: fwdad.models.mlp_local_value_and_grad).

Each estimator's squared cosine with the true gradient of its own objective (the global loss's
for weight and activity perturbation, the local losses' for local losses, both computed by
hand-derived backpropagation) is measured at each chunk's end, on a fixed batch, averaged over
a few draws; that time is left out of the training time (fgd excludes callbacks).
"""
from dataclasses import dataclass

import numpy as np

from .. import fgd
from ..api import forward_grad
from ..models import (accuracy, init_local_mlp, init_mlp, mlp_example_losses, mlp_local_losses, mlp_loss,
                      mlp_local_objective, mlp_local_value_and_grad, mlp_sizes, mlp_value_and_grad, num_params)
from ..train.activity import activity_gradient
from .common import Timing, fmt, progress, pyplot, save, table


@dataclass(frozen=True)
class Method:
    label: str
    model: object            # what fgd minimizes
    init: object             # sizes, seed -> parameters
    gradient: object         # fgd's gradient=
    true_gradient: object    # (theta, *args, X, Y) -> (value, gradient of the method's objective)
    local: bool = False      # takes `groups` after sizes


METHODS = {
    "weight": Method("weight perturbation", mlp_loss, init_mlp, "forward", mlp_value_and_grad),
    "activity": Method("activity perturbation", mlp_example_losses, init_mlp, "activity", mlp_value_and_grad),
    "local": Method("activity perturbation + local losses", mlp_local_losses, init_local_mlp, "activity",
                    mlp_local_value_and_grad, local=True),
    "backprop": Method("backpropagation", mlp_loss, init_mlp, mlp_value_and_grad, mlp_value_and_grad),
    "local_backprop": Method("backpropagation of the local losses (reference)", mlp_local_objective,
                             init_local_mlp, mlp_local_value_and_grad, mlp_local_value_and_grad, local=True),
}
COLORS = {"weight": "tab:blue", "activity": "tab:green", "local": "tab:red", "backprop": "tab:orange",
          "local_backprop": "tab:gray"}
EXACT = ("backprop", "local_backprop")


def run(data, settings, show_progress=None):
    """Train every method from the same start; returns the summary the report is made of."""
    b = settings.beyond
    sizes = mlp_sizes(data.num_features, b["hidden"], 2, data.num_classes)
    per_epoch = len(data.y_train) // settings.batch
    steps = b["steps"] or b["epochs"] * per_epoch
    out = {"sizes": sizes.tolist(), "batch": settings.batch, "steps": steps, "epochs": steps / per_epoch,
           "optimizer": b["optimizer"], "groups": b["groups"], "lr": dict(b["lr"]),
           "timing_steps": b["timing_steps"], "runs": {}}
    probe = (data.x_train[:settings.batch], data.y_train[:settings.batch])
    bar = progress(total=len(METHODS) * steps, desc="beyond", enabled=show_progress)
    for name, method in METHODS.items():
        out["runs"][name] = train(name, method, sizes, data, settings, steps, probe, bar)
    bar.close()
    for name, timing in step_times(sizes, data, settings).items():
        out["runs"][name]["timing"] = timing
    return summarize(out, per_epoch)


def step_times(sizes, data, settings, rounds=5):
    """Seconds per training step of each method, measured in interleaved rounds of short runs
    (each method once per round, compiled already), so that a change in the machine's load
    affects every method alike: the ratios to backpropagation come from these medians."""
    b = settings.beyond
    steps = b["timing_steps"]
    samples = {name: [] for name in METHODS}
    for _ in range(rounds):
        for name, method in METHODS.items():
            result = fgd(method.model, method.init(sizes, settings.seed), args=arguments(method, sizes, b["groups"]),
                         data=(data.x_train, data.y_train), batch_size=settings.batch, lr=b["lr"][name],
                         steps=steps, seed=settings.seed, gradient=method.gradient, optimizer=b["optimizer"],
                         progress=False)
            samples[name].append(result.seconds / steps)
    return {name: Timing.of(values).as_dict() for name, values in samples.items()}


def arguments(method, sizes, groups):
    return (sizes, groups) if method.local else (sizes,)


def train(name, method, sizes, data, settings, steps, probe, bar):
    """One method's run: validation accuracy and the estimator's squared cosine at chunk ends."""
    b = settings.beyond
    args = arguments(method, sizes, b["groups"])
    theta = method.init(sizes, settings.seed)
    cosine = Cosine(name, method, theta, args, probe, b["cos_samples"])
    network = num_params(sizes)                  # the heads of local losses are not the network
    evaluations = []

    def evaluate(step, params, losses):
        evaluations.append((step, float(accuracy(params[:network], sizes, data.x_test[:settings.eval_samples],
                                                  data.y_test[:settings.eval_samples])), cosine(params)))
        bar.update(step - (evaluations[-2][0] if len(evaluations) > 1 else 0))

    evaluate(0, theta, None)
    result = fgd(method.model, theta, args=args, data=(data.x_train, data.y_train), batch_size=settings.batch,
                 lr=b["lr"][name], steps=steps, seed=settings.seed, gradient=method.gradient,
                 optimizer=b["optimizer"], every=max(1, steps // settings.eval_points), callback=evaluate,
                 progress=False)
    marks, val_accuracy, cos2 = zip(*evaluations)
    ends = np.array([0.0] + [float(result.times[s - 1]) for s in marks[1:]])
    return {"label": method.label, "test_accuracy": float(accuracy(result.params[:network], sizes, data.x_test,
                                                                   data.y_test)),
            "eval_steps": list(marks), "val_accuracy": list(val_accuracy), "cos2": list(cos2),
            "seconds": float(ends[-1]), "seconds_per_step": (np.diff(ends) / np.diff(marks)).tolist(),
            "losses": np.asarray(result.losses)[::max(1, steps // 400)].tolist()}


class Cosine:
    """The mean squared cosine of a method's gradient estimate with its true gradient, at given
    parameters, on one fixed batch (draws with seeds 0, 1, ...: the same for every evaluation)."""

    def __init__(self, name, method, theta, args, batch, samples):
        self.method, self.args, self.batch, self.samples = method, args, batch, samples
        sample = (theta,) + args + batch
        if method.gradient == "forward":
            forward = forward_grad(method.model)
            self.estimate = lambda p, s: forward.forward_gradient(p, *args, *batch, seed=s)[1][0]
        elif method.gradient == "activity":
            estimator = activity_gradient(forward_grad(method.model), sample, 1)
            self.estimate = lambda p, s: estimator(p, *args, *batch, seed=s)[1][0]
        else:
            self.estimate = None                # the exact gradient: cos^2 = 1

    def __call__(self, params):
        if self.estimate is None:
            return 1.0
        true = self.method.true_gradient(params, *self.args, *self.batch)[1].astype(np.float64)
        values = []
        for seed in range(self.samples):
            g = self.estimate(params, seed).astype(np.float64)
            values.append(float(np.dot(g, true) ** 2 / (np.dot(g, g) * np.dot(true, true))))
        return float(np.mean(values))


def summarize(out, per_epoch):
    """Per method: time per step (median over chunks) and per epoch, ratios to backpropagation and
    to weight perturbation, and whether each of the issue's goals is met."""
    runs = out["runs"]
    for r in runs.values():
        r.setdefault("timing", Timing.of(r["seconds_per_step"]).as_dict())
        r["seconds_per_epoch"] = r["timing"]["median"] * per_epoch
        r["mean_cos2"] = float(np.mean(r["cos2"]))
    bp, weight = runs["backprop"], runs["weight"]
    for r in runs.values():
        r["time_vs_backprop"] = r["timing"]["median"] / bp["timing"]["median"]
        r["points_vs_backprop"] = 100 * (r["test_accuracy"] - bp["test_accuracy"])
        r["cos2_vs_weight"] = r["mean_cos2"] / weight["mean_cos2"]
    local, activity = runs["local"], runs["activity"]
    out["goals"] = {
        "local within 1 point of backprop": local["points_vs_backprop"] >= -1.0,
        "activity at least 3 points above weight": 100 * (activity["test_accuracy"] - weight["test_accuracy"]) >= 3,
        "cos2 at least 10x weight perturbation's": min(activity["cos2_vs_weight"], local["cos2_vs_weight"]) >= 10,
        "time per epoch at most 1.5x backprop's": max(activity["time_vs_backprop"], local["time_vs_backprop"]) <= 1.5,
    }
    return out


def figures(out_dir, summary):
    plt = pyplot()
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    lines = []
    for name, r in summary["runs"].items():
        kw = dict(color=COLORS[name], marker=".")
        line, = axes[0].plot(r["eval_steps"], 100 * np.array(r["val_accuracy"]), **kw)
        lines.append((line, r["label"]))
        axes[1].plot(np.linspace(1, summary["steps"], len(r["losses"])), r["losses"], color=COLORS[name], lw=0.7)
        if name not in EXACT:
            axes[2].semilogy(r["eval_steps"], r["cos2"], **kw)
    axes[0].set(xlabel="step", ylabel="validation accuracy (%)", ylim=(0, 100))
    axes[1].set(xlabel="step", ylabel="training loss (output layer)", ylim=(0, 2.5))
    axes[2].set(xlabel="step", ylabel="squared cosine with the true gradient")
    figure.suptitle(f"MNIST MLP {'-'.join(map(str, summary['sizes']))}: forward-only training vs backpropagation")
    handles, labels = zip(*lines)
    return [save(figure, out_dir, "beyond.png", (handles, labels))]


def report(summary, figure_names):
    rows = []
    for name, r in summary["runs"].items():
        t = Timing(**r["timing"])
        rows.append([r["label"], f"{100 * r['test_accuracy']:.2f}%", f"{r['points_vs_backprop']:+.2f}",
                     t.text(1e3), fmt(r["seconds_per_epoch"]), fmt(r["time_vs_backprop"]),
                     "1 (exact)" if name in EXACT else fmt(r["mean_cos2"]),
                     "–" if name in EXACT else fmt(r["cos2_vs_weight"])])
    goals = "; ".join(f"{goal}: {'met' if met else 'missed'}" for goal, met in summary["goals"].items())
    text = ["### Forward-only training: activity perturbation and local losses",
            f"MLP {'-'.join(map(str, summary['sizes']))}, batch {summary['batch']}, {summary['steps']} steps "
            f"({summary['epochs']:.2f} epochs) of {summary['optimizer']} for every method (learning rates: "
            + ", ".join(f"{k} {v:g}" for k, v in summary["lr"].items()) + f"); local losses with "
            f"{summary['groups']} feature groups per hidden layer. cos²: the squared cosine of one "
            "estimate with the true gradient of the method's objective, averaged over draws and over "
            "the evaluations during training. ms / step: median (range) of 5 interleaved rounds of "
            f"{summary['timing_steps']}-step runs of every method, after training.", "",
            table(["method", "test accuracy", "points vs backprop", "ms / step (range)", "s / epoch",
                   "time × backprop", "mean cos²", "cos² × weight perturbation"], rows), "",
            f"**Goals** (issue): {goals}.", ""]
    text += [f"![beyond]({f})" for f in figure_names]
    return "\n".join(text) + "\n"


def to_json(summary):
    return summary
