"""The paper's Sections 5.2-5.3: MNIST logistic regression and MLP, forward gradient vs backprop.

    python examples/paper_mnist.py [--model mlp|logreg] [--steps 2000] [--lr 2e-4] [--decay 1e-4]
                                   [--hidden 1024] [--mnist PATH]

The loss (fwdad.models.mlp_loss) is plain Python over one flat float32 parameter vector;
fwdad differentiates it. The backpropagation baseline is a hand-derived reverse-mode gradient
(fwdad.models.mlp_value_and_grad) run by the same compiled training loop. The paper's settings
are lr 2e-4 or 2e-5 with decay 1e-4; `--model mlp --hidden 32 --lr 1e-3 --decay 5e-5 --steps 60000`
is the setting (not the paper's) at which forward gradients reach 85 % test accuracy in a minute.
"""
import argparse

import numpy as np

import fwdad
from fwdad.data import load_mnist
from fwdad.models import accuracy, init_mlp, mlp_loss, mlp_sizes, mlp_value_and_grad


def main(model="mlp", steps=2000, lr=2e-4, decay=1e-4, hidden=1024, batch=64, mnist=None, seed=0):
    data = load_mnist(mnist)
    if data.notice:
        print(data.notice)
    sizes = mlp_sizes(data.num_features, hidden, 2, data.num_classes) if model == "mlp" else \
        mlp_sizes(data.num_features, 0, 0, data.num_classes)
    results = {}
    for name, gradient in (("forward gradient", "forward"), ("backpropagation", mlp_value_and_grad)):
        r = fwdad.fgd(mlp_loss, init_mlp(sizes, seed), args=(sizes,), data=(data.x_train, data.y_train),
                      batch_size=batch, lr=lr, decay=decay, steps=steps, seed=seed, gradient=gradient,
                      every=max(1, steps // 10), progress=False)
        chunk_ends = r.times[max(1, steps // 10) - 1::max(1, steps // 10)]
        per_iteration = np.median(np.diff(np.concatenate([[0.0], chunk_ends]))) / max(1, steps // 10)
        acc = accuracy(r.params, sizes, data.x_test, data.y_test)
        print(f"{name:17s} loss {r.losses[:100].mean():.3f} -> {r.losses[-100:].mean():.3f}, "
              f"test accuracy {acc:.3f}, {per_iteration * 1e3:.3g} ms / iteration (median of 10 chunks)")
        results[name] = r
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mlp", choices=["mlp", "logreg"])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--decay", type=float, default=1e-4)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--mnist", default=None)
    args = parser.parse_args()
    main(args.model, args.steps, args.lr, args.decay, args.hidden, mnist=args.mnist)
