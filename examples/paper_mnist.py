"""The paper's Sections 5.2-5.3: MNIST logistic regression and MLP, forward gradient vs backprop.

    python examples/paper_mnist.py [--model mlp|logreg] [--steps 2000] [--lr 2e-4] [--mnist PATH]

The loss (fwdad.models.mlp_loss) is plain Python over one flat float32 parameter vector;
fwdad differentiates it. The backpropagation baseline is a hand-derived reverse-mode gradient
(fwdad.models.mlp_value_and_grad) run by the same compiled training loop.
"""
import argparse

import fwdad
from fwdad.data import load_mnist
from fwdad.models import accuracy, init_mlp, mlp_loss, mlp_sizes, mlp_value_and_grad


def main(model="mlp", steps=2000, lr=2e-4, decay=1e-4, batch=64, mnist=None, seed=0):
    data = load_mnist(mnist)
    if data.notice:
        print(data.notice)
    hidden, depth = (1024, 2) if model == "mlp" else (0, 0)
    sizes = mlp_sizes(data.num_features, hidden, depth, data.num_classes)
    results = {}
    for name, gradient in (("forward gradient", "forward"), ("backpropagation", mlp_value_and_grad)):
        theta = init_mlp(sizes, seed)
        r = fwdad.fgd(mlp_loss, theta, args=(sizes,), data=(data.x_train, data.y_train),
                      batch_size=batch, lr=lr, decay=decay, steps=steps, seed=seed, gradient=gradient)
        acc = accuracy(r.params, sizes, data.x_test, data.y_test)
        print(f"{name:17s} loss {r.losses[:100].mean():.3f} -> {r.losses[-100:].mean():.3f}, "
              f"test accuracy {acc:.3f}, {r.steps_per_second:.0f} iterations/s")
        results[name] = r
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mlp", choices=["mlp", "logreg"])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--mnist", default=None)
    args = parser.parse_args()
    main(args.model, args.steps, args.lr, mnist=args.mnist)
