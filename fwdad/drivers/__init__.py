"""Drivers around a specialization's tangent function, generated as readable Python and
compiled once per specialization (Specialization.driver):

    gradients.py  forward gradients (sequential, vector mode, parallel), exact gradients and
                  Jacobians by chunked vector mode
    batch.py      batched JVPs: one instance per loop step, core or GPU thread
    kernels.py    the CUDA kernels of a forward gradient
    embed.py      f.tangent_njit: the tangent code callable from the user's @numba.njit code
"""
