"""Forward gradient descent: the options (validated once), the compiled loops, the chunked runner.

    options.py  FGDOptions and the checks of fgd's inputs
    chunks.py   run_in_chunks: the loop in chunks of a fraction of a second, the errors of a stopped run
    steps.py    the step source shared by the CPU loop, the CUDA kernels and the MPI update
    loop.py     the compiled CPU loop (target="cpu" and "parallel")
    cuda.py     the loop on the GPU (target="cuda")
    local.py    fgd in this process: the options checked once, the run handed to the target
    mpi.py      one rank's side of fgd over MPI (fwdad.distributed is its entry point)

The entry point, fwdad.fgd, is in fwdad/optim.py; it hands the loop to the function's target
(fwdad/targets/), or to the MPI layer (fwdad/distributed.py) with comm=.
"""
