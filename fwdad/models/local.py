"""The paper's MLP written for activity perturbation, with a global loss or with local losses.

Both models take the parameter vector of `init_mlp` (fwdad.models.mlp), the local one followed by
a linear classifier head per hidden layer (`init_local_mlp`), and return per-example losses,
as fgd(gradient="activity") needs (docs/forward-learning.md):

* `mlp_example_losses`: the softmax cross-entropy of each example, shape (B,): the mean of it is
  `mlp_loss`, so backpropagation (`mlp_value_and_grad`) trains the same objective.
* `mlp_local_losses(theta, sizes, groups, X, Y)`: Ren et al.'s local losses, shape
  (B, hidden layers * (groups + 1) + 1). Each hidden layer is a block: its input passes
  `fwdad.stop_gradient`, and its head's cross-entropy trains it. A block's columns are each
  scored by the noise of one group of units only: its outputs are cut into `groups` groups
  (fwdad.dense_relu's groups=), and column g is the head's loss on the logits with only group
  g's units passing a tangent (the others and the head's weights stopped: a plain `@`, not a
  perturbed layer); the next column trains the head on the block's stopped output; the last
  column trains the output layer. All columns of a block have the same value, and the gradient
  of their sum is that of one head loss per block, whatever `groups` is.
  `mlp_local_value_and_grad` is its hand-derived backpropagation (the true gradient the forward
  estimates are compared with).
"""
import numba
import numpy as np

from .. import layers
from ..cache import numba_can_cache
from .mlp import (_column_sums, _dense, _layer_offsets, _relu_backward, _softmax_xent_backward, init_mlp,
                  num_params)

_jit = numba.njit(cache=numba_can_cache(__file__), error_model="numpy")


def head_params(sizes):
    """Entries the local heads add: for each hidden layer of width n, an n x classes head and its bias."""
    sizes = np.asarray(sizes, dtype=np.int64)
    return int(np.sum(sizes[1:-1] * sizes[-1] + sizes[-1]))


def init_local_mlp(sizes, seed):
    """init_mlp's parameters, then the heads (He-uniform weights, zero biases)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    rng = np.random.default_rng([seed, 1])
    heads = np.zeros(head_params(sizes), dtype=np.float32)
    offset = 0
    for n_in in sizes[1:-1]:
        bound = np.float32(np.sqrt(6.0 / n_in))
        heads[offset:offset + n_in * sizes[-1]] = rng.uniform(-bound, bound, n_in * sizes[-1])
        offset += n_in * sizes[-1] + sizes[-1]
    return np.concatenate([init_mlp(sizes, seed), heads])


def cross_entropy(z, Y):
    """Softmax cross-entropy of each row of logits z (B, C) with integer labels Y."""
    out = np.zeros(z.shape[0], z.dtype)
    for i in range(z.shape[0]):
        row_max = z[i, 0]
        for j in range(1, z.shape[1]):
            if z[i, j] > row_max:
                row_max = z[i, j]
        sum_exp = np.float32(0.0)
        for j in range(z.shape[1]):
            sum_exp = sum_exp + np.exp(z[i, j] - row_max)
        out[i] = np.log(sum_exp) + row_max - z[i, Y[i]]
    return out


def mlp_example_losses(theta, sizes, X, Y):
    """Per-example cross-entropy of the MLP; every layer a perturbation site."""
    offset = 0
    h = X
    for layer in range(sizes.shape[0] - 1):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        W = theta[offset:offset + n_in * n_out].reshape((n_in, n_out))
        b = theta[offset + n_in * n_out:offset + n_in * n_out + n_out]
        if layer < sizes.shape[0] - 2:
            h = layers.dense_relu(h, W, b)
        else:
            h = layers.dense(h, W, b)
        offset = offset + n_in * n_out + n_out
    return cross_entropy(h, Y)


def mlp_local_losses(theta, sizes, groups, X, Y):
    """Per-example local losses, (B, hidden layers * (groups + 1) + 1): see the module docstring."""
    hidden = sizes.shape[0] - 2
    classes = sizes[hidden + 1]
    losses = np.zeros((X.shape[0], hidden * (groups + 1) + 1), np.float32)
    offset = 0
    heads = num_params(sizes)
    h = X
    for layer in range(hidden + 1):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        W = theta[offset:offset + n_in * n_out].reshape((n_in, n_out))
        b = theta[offset + n_in * n_out:offset + n_in * n_out + n_out]
        offset = offset + n_in * n_out + n_out
        first = layer * (groups + 1)                      # the block's first column
        if layer == hidden:
            z = layers.dense(layers.stop_gradient(h), W, b, first)
            losses[:, first] = cross_entropy(z, Y)
        else:
            h = layers.dense_relu(layers.stop_gradient(h), W, b, first, groups)
            Wh = theta[heads:heads + n_out * classes].reshape((n_out, classes))
            bh = theta[heads + n_out * classes:heads + n_out * classes + classes]
            heads = heads + n_out * classes + classes
            held, Wheld = layers.stop_gradient(h), layers.stop_gradient(Wh)
            logits = held @ Wheld + layers.stop_gradient(bh)
            for group in range(groups):                   # the units dense_relu gives this column
                lo, hi = (group * n_out + groups - 1) // groups, ((group + 1) * n_out + groups - 1) // groups
                own = (h[:, lo:hi] - held[:, lo:hi]) @ Wheld[lo:hi]       # zero, with group's tangent
                losses[:, first + group] = cross_entropy(logits + own, Y)
            head = layers.dense(held, Wh, bh, first + groups)
            losses[:, first + groups] = cross_entropy(head, Y)
    return losses


def mlp_local_objective(theta, sizes, groups, X, Y):
    """The mean over examples of the sum of the local losses: what activity perturbation with
    local losses and `mlp_local_value_and_grad` descend (a scalar, for fgd with gradient=...)."""
    return np.sum(mlp_local_losses(theta, sizes, groups, X, Y)) / X.shape[0]


@_jit
def mlp_local_value_and_grad(theta, sizes, groups, X, Y):
    """(mean output loss, exact gradient of the mean over examples of the sum of the local losses)
    by hand-derived backpropagation, block by block (stop_gradient ends each block's backward pass)."""
    X = np.ascontiguousarray(X)
    batch = X.shape[0]
    hidden = sizes.shape[0] - 2
    classes = sizes[hidden + 1]
    offsets = _layer_offsets(sizes)
    grad = np.zeros_like(theta)
    heads = offsets[hidden] + sizes[hidden] * classes + classes
    h = X
    value = 0.0
    for layer in range(hidden + 1):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        start = offsets[layer]
        z = np.empty((batch, n_out), theta.dtype)
        _dense(theta, sizes, offsets, layer, h, z, layer < hidden)
        if layer == hidden:
            dz = np.empty_like(z)
            value = _softmax_xent_backward(z, Y, dz)
        else:
            Wh = theta[heads:heads + n_out * classes].reshape((n_out, classes))
            bh = theta[heads + n_out * classes:heads + n_out * classes + classes]
            logits = z @ Wh + bh
            dlogits = np.empty_like(logits)
            _softmax_xent_backward(logits, Y, dlogits)
            np.dot(z.T, dlogits, grad[heads:heads + n_out * classes].reshape((n_out, classes)))
            _column_sums(dlogits, grad[heads + n_out * classes:heads + n_out * classes + classes])
            dz = np.ascontiguousarray(dlogits @ Wh.T)       # column 2l: through the stopped head
            _relu_backward(dz, z)
            heads = heads + n_out * classes + classes
        np.dot(h.T, dz, grad[start:start + n_in * n_out].reshape((n_in, n_out)))
        _column_sums(dz, grad[start + n_in * n_out:start + n_in * n_out + n_out])
        h = z
    return value, grad
