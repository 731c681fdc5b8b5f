"""Run benchmark sections side by side with their peers (the same as `fwdad bench`).

    python benchmarks/run.py [jvp] [fgd] [vector] [memory] [compile] [--quick] [--out DIR]

jvp      JVPs through .jvp vs hand-written Numba, JAX and PyTorch: Rosenbrock (n = 1e5),
         Lorenz Euler and RK4 loops, the paper's MLP (batch 64, float32); R_f and R_b
fgd      FGD steps/s on the paper's Beale and Rosenbrock runs
vector   the exact gradient by vector mode vs n single-direction JVPs (Rosenbrock n = 1000)
memory   working memory of a derivative through a T-step loop: forward vs reverse mode
compile  first-call compile latency, and a fresh process with cache=True
(no section: all of them). GPU: benchmarks/gpu_check.py; MPI: benchmarks/distributed.py.
"""
import argparse

from fwdad.bench.suites import SECTIONS, run

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="*", help=f"any of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="bench-out")
    args = parser.parse_args()
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}")
    run(tuple(args.sections) or SECTIONS, quick=args.quick, out=args.out)
