"""float32 code stays float32 through reductions whose tangent divides by a count (found by the
session 5 trial: a numerically stable float32 softmax, `z - z.max()`, failed to compile)."""
import numpy as np
import pytest

import fwdad


def centred(x):
    return x - x.max() + (x - np.mean(x)) * x.mean() - np.min(x)


def test_max_min_and_mean_tangents_keep_float32():
    x = np.linspace(0.0, 1.0, 5).astype(np.float32)
    value, tangent = fwdad.forward_grad(centred).jvp((x,), (np.ones_like(x),))
    assert value.dtype == tangent.dtype == np.float32
    h = 1e-3
    expected = (centred((x + h).astype(np.float64)) - centred((x - h).astype(np.float64))) / (2 * h)
    np.testing.assert_allclose(tangent, expected, rtol=1e-4, atol=1e-4)
