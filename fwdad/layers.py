"""What model code calls to tell fwdad where activity perturbation acts: layers and block boundaries.

All three run as plain NumPy under CPython and compile under Numba, so a model written with them
is still ordinary code; their rows in the rule table (fwdad/transform/rules.py) give their
tangents in every mode (jvp, forward_gradient, vector mode, second order, sparsity):

* `stop_gradient(x)`: the value x with a zero tangent. It separates the blocks of a network
  trained with local losses: a block's loss cannot reach the layers before the boundary.
* `dense(x, W, b, loss=0, groups=1)`: the linear layer x @ W + b. Under fgd(gradient="activity")
  it is where a random tangent is injected (per example: each row of x gets its own), and where
  the estimate g_z of d loss / d z turns into the updates x^T g_z of W and sum(g_z) of b.
  `loss` says which column of the per-example losses the function returns trains this layer
  (local losses); with `groups` = G, its outputs are cut into G contiguous groups, group g
  trained by column loss + g (Ren et al.'s feature groups, each with its own local loss). They
  have no other effect.
* `dense_relu(x, W, b, loss=0, groups=1)`: max(x @ W + b, 0). Under activity perturbation the injected
  tangent is zero on inactive units, whose gradient is exactly zero (less variance, no bias).

`inject` and `inject_active` are what fgd's activity mode puts around each layer of a copy of
the model (fwdad/transform/activity.py): the value z, plus a tangent of eps times counter-based
noise drawn from `key` (their rule rows say so).
"""
import numba
import numpy as np


@numba.extending.register_jitable
def stop_gradient(x):
    """x, through which no derivative flows (a zero tangent)."""
    return x


@numba.extending.register_jitable
def dense(x, W, b, loss=0, groups=1):
    """x @ W + b; `loss` is the (first) column of the per-example losses that trains it."""
    return x @ W + b


@numba.extending.register_jitable
def dense_relu(x, W, b, loss=0, groups=1):
    """max(x @ W + b, 0), in the dtype of x @ W (a float32 layer stays float32)."""
    z = x @ W + b
    return np.maximum(z, z.dtype.type(0))


@numba.extending.register_jitable
def inject(z, eps, key):
    """z; its tangent gains eps times noise drawn from `key` (activity perturbation)."""
    return z


@numba.extending.register_jitable
def inject_active(z, eps, key):
    """z; its tangent gains eps times noise drawn from `key` where z > 0 (after a ReLU)."""
    return z
