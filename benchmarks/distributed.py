"""Distributed forward gradients on the paper's MLP (784-1024-1024-10): bytes and steps/s.

    python benchmarks/distributed.py                  # runs mpiexec -n 1 and -n 2 itself, prints tables
    mpiexec -n 4 python benchmarks/distributed.py --worker   # one measurement on N ranks (JSON on rank 0)

Bytes per step are exact (the message layout of fwdad.distributed) and are compared with the
all-reduce of data-parallel backpropagation: one float32 per parameter. Steps/s are measured on
synthetic MNIST-shaped data (random pixels, labels from a random linear teacher), batch 64,
one BLAS thread per rank. At 1 rank the table shows the local compiled fgd loop and the MPI
code path forced on one rank (fallback=False), so that the 2-rank numbers can be read against
both. Timing excludes compilation (fgd and distributed_fgd compile before the clock starts).
"""
import argparse
import json
import os
import subprocess
import sys
import time

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")       # one BLAS thread per rank (set before numpy loads)

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def problem(rows, hidden, depth):
    """MLP sizes, initial float32 parameters and synthetic (X, Y)."""
    from fwdad.models import init_mlp, mlp_sizes
    sizes = mlp_sizes(784, hidden, depth, 10)
    rng = np.random.default_rng(0)
    X = rng.random((rows, 784), dtype=np.float32)
    Y = np.argmax(X @ rng.normal(size=(784, 10)).astype(np.float32), axis=1).astype(np.int64)
    return sizes, init_mlp(sizes, 0), X, Y


def worker(options):
    """Measure every configuration on this communicator; rank 0 prints one JSON line."""
    from mpi4py import MPI

    import fwdad
    from fwdad import distributed
    from fwdad.models import mlp_loss
    comm = MPI.COMM_WORLD
    size = comm.Get_size()
    sizes, theta, X, Y = problem(options.rows, options.hidden, options.depth)
    rows = []
    for K in options.directions:
        settings = dict(lr=1e-3, steps=options.steps, seed=0, directions=K, data=(X, Y),
                        batch_size=options.batch, args=(sizes,), progress=False)
        runs = [("local fgd", None, "directions", True)] if size == 1 else []
        runs += [("MPI " + mode, comm, mode, False) for mode in ("directions", "data")]
        for label, use, mode, local in runs:
            if local:
                result = fwdad.fgd(mlp_loss, theta, **settings)
            else:
                result = distributed.distributed_fgd(mlp_loss, theta, comm=use, mode=mode,
                                                     fallback=False, **settings)
            sent = result.communication["bytes_sent_per_step"] if not local else 0
            received = result.communication["bytes_received_per_step"] if not local else 0
            rows.append(dict(ranks=size, directions=K, run=label, steps_per_second=result.steps_per_second,
                             bytes_sent=sent, bytes_received=received, final_loss=float(result.losses[-1]),
                             params_hash=distributed.parameter_hash([result.params])))
    if comm.Get_rank() == 0:
        print("RESULT " + json.dumps(dict(rows=rows, parameters=int(theta.size))), flush=True)


def launch(ranks, options):
    """Run the worker under `mpiexec -n ranks`; its rows."""
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if not os.access(mpiexec, os.X_OK):
        mpiexec = "mpiexec"
    command = [mpiexec, "-n", str(ranks), sys.executable, os.path.abspath(__file__), "--worker",
               "--steps", str(options.steps), "--batch", str(options.batch), "--rows", str(options.rows),
               "--hidden", str(options.hidden), "--depth", str(options.depth),
               "--directions", *map(str, options.directions)]
    start = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{proc.stdout}\n{proc.stderr}")
    line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))
    print(f"# mpiexec -n {ranks}: {time.monotonic() - start:.0f} s including compilation", file=sys.stderr)
    return json.loads(line[len("RESULT "):])


def bytes_table(parameters, directions, ranks_list):
    from fwdad.distributed import bytes_per_step
    allreduce = parameters * 4
    lines = [f"Bytes per step, MLP with {parameters:,} parameters "
             f"(backprop all-reduce payload: parameters x 4 = {allreduce:,} B):",
             "| ranks | K | fwdad directions mode: sent / received per rank | data mode: sent / received "
             "| ring all-reduce traffic per rank (2(N-1)/N x P x 4) | all-reduce payload / fwdad received |",
             "|---|---|---|---|---|---|"]
    for ranks in ranks_list:
        for K in directions:
            d, a = bytes_per_step("directions", K, ranks), bytes_per_step("data", K, ranks)
            ring = 2 * (ranks - 1) / ranks * allreduce
            lines.append(f"| {ranks} | {K} | {d // ranks} / {d} B | {a // ranks} / {a} B | "
                         f"{ring:,.0f} B | {allreduce / d:,.0f}x |")
    return "\n".join(lines)


def speed_table(rows, hidden, depth, batch):
    lines = [f"Steps/s, MLP 784-{'-'.join([str(hidden)] * depth)}-10, batch {batch}, "
             "one BLAS thread per rank:",
             "| ranks | K | run | steps/s | bytes received/step | final loss | params hash |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['ranks']} | {row['directions']} | {row['run']} | {row['steps_per_second']:.2f} | "
                     f"{row['bytes_received']} | {row['final_loss']:.4f} | {row['params_hash']:016x} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help="measure on this MPI job (run under mpiexec)")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2], help="rank counts to launch")
    parser.add_argument("--directions", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rows", type=int, default=4096, help="synthetic data set size")
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--depth", type=int, default=2)
    options = parser.parse_args(argv)
    if options.worker:
        return worker(options)
    from fwdad.models import mlp_sizes, num_params
    parameters = num_params(mlp_sizes(784, options.hidden, options.depth, 10))
    print(bytes_table(parameters, options.directions, sorted(set(options.ranks + [2, 16, 128]))))
    rows = []
    for ranks in options.ranks:
        rows += launch(ranks, options)["rows"]
    print()
    print(speed_table(rows, options.hidden, options.depth, options.batch))
    print("\nRuns with the same params hash ended with bit-identical parameters.")


if __name__ == "__main__":
    main()
