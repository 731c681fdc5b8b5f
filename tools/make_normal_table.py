"""Regenerate fwdad/data_files/normal_table.npy (run once; the file is shipped so that every
machine, process and target samples from bit-identical quantiles).

The table holds the standard normal quantiles at the centres of 2**16 equal-probability bins,
made exactly antisymmetric and scaled to unit second moment, rounded to float32.
"""
import os
from statistics import NormalDist

import numpy as np

BITS = 16


def table():
    n = 1 << BITS
    upper = np.array([NormalDist().inv_cdf((k + 0.5) / n) for k in range(n // 2, n)])
    full = np.concatenate([-upper[::-1], upper])
    return (full / np.sqrt(np.mean(full ** 2))).astype(np.float32)


if __name__ == "__main__":
    path = os.path.join(os.path.dirname(__file__), "..", "fwdad", "data_files", "normal_table.npy")
    np.save(path, table())
    print("wrote", os.path.normpath(path))
