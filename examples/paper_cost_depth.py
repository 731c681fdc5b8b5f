"""The paper's runtime cost table and depth scaling (Figure 6): R_f and R_b for MLPs.

    python examples/paper_cost_depth.py [--depths 1,2,4,8,16] [--repeats 5]

R_f = t(value + JVP) / t(value), with fwdad's JVP of fwdad.models.mlp_loss;
R_b = t(value + gradient) / t(value), with the hand-derived backpropagation;
R (forward gradient) adds drawing the direction v and forming (∇f·v) v to the JVP.
Every time is the median of `repeats` measurements (the range in brackets), as in `fwdad reproduce`.
"""
import argparse

from fwdad.models import mlp_sizes
from fwdad.reproduce.common import Settings, Timing
from fwdad.reproduce.cost import measure


def main(depths=(1, 2, 4, 8), batch=64, repeats=5):
    settings = Settings.quick()
    settings.timing_repeats = repeats
    rows = []
    for depth in depths:
        m = measure(mlp_sizes(784, 1024, depth, 10), batch, settings)
        value = Timing(**m["times"]["value"])
        rows.append((depth, m["parameters"], value.median, m["R_f"], m["R_b"], m["R_forward_gradient"]))
        print(f"{depth:3d} hidden layers  {m['parameters']:>10,} parameters  value {value.text(1e3)} ms  "
              f"R_f {m['R_f']:5.2f}  R_b {m['R_b']:5.2f}  R (forward gradient) {m['R_forward_gradient']:5.2f}")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="1,2,4,8")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    main(tuple(int(d) for d in args.depths.split(",")), repeats=args.repeats)
