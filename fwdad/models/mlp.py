"""The paper's models: logistic regression and ReLU MLPs with softmax cross-entropy.

All parameters live in one flat float32 vector `theta`; `sizes` (int64 layer widths, e.g.
[784, 1024, 1024, 10]) says how to cut it. Layer l's weights are the view
`theta[offset:offset + n_in * n_out].reshape((n_in, n_out))`, its bias the next `n_out`
entries. Logistic regression is `sizes = [784, 10]`.

`mlp_loss` is written in the restricted style fwdad differentiates (loops, `if`,
assignments, slices, `@`, ufuncs; every constant a `np.float32`) and also runs under plain
CPython and plain `numba.njit`. `mlp_value_and_grad` is the hand-derived backpropagation
baseline the paper compares forward gradients against.
"""
import numba
import numpy as np

from ..cache import numba_can_cache

_jit = numba.njit(cache=numba_can_cache(__file__), error_model="numpy")   # no writable dir needed


def mlp_sizes(num_features, hidden, depth, num_classes):
    """Layer widths of an MLP with `depth` hidden layers of `hidden` units (depth 0: logistic)."""
    return np.array([num_features] + [hidden] * depth + [num_classes], dtype=np.int64)


def num_params(sizes):
    """Length of the flat parameter vector for these layer widths."""
    sizes = np.asarray(sizes, dtype=np.int64)
    return int(np.sum(sizes[:-1] * sizes[1:] + sizes[1:]))


def init_mlp(sizes, seed):
    """Flat float32 parameters: He-uniform weights (bound sqrt(6 / n_in)), zero biases."""
    sizes = np.asarray(sizes, dtype=np.int64)
    rng = np.random.default_rng(seed)
    theta = np.zeros(num_params(sizes), dtype=np.float32)
    offset = 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        bound = np.float32(np.sqrt(6.0 / n_in))
        weights = theta[offset:offset + n_in * n_out]
        weights[:] = rng.random(n_in * n_out, dtype=np.float32)
        weights *= np.float32(2.0) * bound
        weights -= bound
        offset += n_in * n_out + n_out
    return theta


def mlp_loss(theta, sizes, X, Y):
    """Mean softmax cross-entropy of the MLP on a batch (X float32 (B, D), Y int labels (B,)).

    The first layer is computed before the loop, so that the input X never carries a tangent.
    """
    n_in, n_out = sizes[0], sizes[1]
    W = theta[0:n_in * n_out].reshape((n_in, n_out))
    z = X @ W + theta[n_in * n_out:n_in * n_out + n_out]
    offset = n_in * n_out + n_out
    for layer in range(1, sizes.shape[0] - 1):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        W = theta[offset:offset + n_in * n_out].reshape((n_in, n_out))
        b = theta[offset + n_in * n_out:offset + n_in * n_out + n_out]
        z = np.maximum(z, np.float32(0.0)) @ W + b
        offset = offset + n_in * n_out + n_out
    total = np.float32(0.0)
    for i in range(z.shape[0]):
        row_max = z[i, 0]
        for j in range(1, z.shape[1]):
            if z[i, j] > row_max:
                row_max = z[i, j]
        sum_exp = np.float32(0.0)
        for j in range(z.shape[1]):
            sum_exp = sum_exp + np.exp(z[i, j] - row_max)
        total = total + np.log(sum_exp) + row_max - z[i, Y[i]]
    return total / np.float32(z.shape[0])


mlp_value = _jit(mlp_loss)
mlp_value.__doc__ = "`mlp_loss` compiled with Numba: the primal whose cost R_f and R_b divide by."


@_jit
def _layer_offsets(sizes):
    """Start of each layer's weights in theta (bias follows at offset + n_in * n_out)."""
    num_layers = sizes.shape[0] - 1
    offsets = np.zeros(num_layers, np.int64)
    for layer in range(1, num_layers):
        offsets[layer] = offsets[layer - 1] + sizes[layer - 1] * sizes[layer] + sizes[layer]
    return offsets


@_jit
def _add_bias(out, b, relu):
    """out += b row by row, then ReLU in place when `relu`."""
    zero = out.dtype.type(0)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            v = out[i, j] + b[j]
            out[i, j] = max(v, zero) if relu else v


@_jit
def _dense(theta, sizes, offsets, layer, h, out, relu):
    """out = act(h @ W + b) for one layer, written into the caller's buffer."""
    n_in = sizes[layer]
    n_out = sizes[layer + 1]
    start = offsets[layer]
    W = theta[start:start + n_in * n_out].reshape((n_in, n_out))
    np.dot(h, W, out)
    _add_bias(out, theta[start + n_in * n_out:start + n_in * n_out + n_out], relu)


@_jit
def mlp_logits(theta, sizes, X):
    """Logits (B, num_classes) of the MLP."""
    X = np.ascontiguousarray(X)
    offsets = _layer_offsets(sizes)
    num_layers = sizes.shape[0] - 1
    h = X
    for layer in range(num_layers):
        out = np.empty((X.shape[0], sizes[layer + 1]), theta.dtype)
        _dense(theta, sizes, offsets, layer, h, out, layer < num_layers - 1)
        h = out
    return h


@_jit
def accuracy(theta, sizes, X, Y):
    """Fraction of rows whose largest logit is the label."""
    z = mlp_logits(theta, sizes, X)
    hits = 0
    for i in range(z.shape[0]):
        if np.argmax(z[i]) == Y[i]:
            hits += 1
    return hits / z.shape[0]


@_jit
def _softmax_xent_backward(z, Y, dz):
    """Mean cross-entropy of logits z; writes d loss / d z = (softmax - onehot) / B into dz."""
    batch = z.shape[0]
    scale = z.dtype.type(1) / z.dtype.type(batch)
    total = z.dtype.type(0)
    for i in range(batch):
        row_max = z[i, 0]
        for j in range(1, z.shape[1]):
            row_max = max(row_max, z[i, j])
        sum_exp = z.dtype.type(0)
        for j in range(z.shape[1]):
            dz[i, j] = np.exp(z[i, j] - row_max)
            sum_exp += dz[i, j]
        total += np.log(sum_exp) + row_max - z[i, Y[i]]
        for j in range(z.shape[1]):
            dz[i, j] = dz[i, j] / sum_exp * scale
        dz[i, Y[i]] -= scale
    return total / z.dtype.type(batch)


@_jit
def _column_sums(dz, gb):
    """gb = column sums of dz."""
    gb[:] = 0
    for i in range(dz.shape[0]):
        for j in range(dz.shape[1]):
            gb[j] += dz[i, j]


@_jit
def _relu_backward(da, a):
    """da *= (a > 0): a is the ReLU's output, so a > 0 exactly where its input was."""
    for i in range(da.shape[0]):
        for j in range(da.shape[1]):
            if a[i, j] <= 0:
                da[i, j] = 0


@_jit
def mlp_value_and_grad(theta, sizes, X, Y):
    """Loss and its exact gradient (flat, like theta) by hand-derived backpropagation."""
    X = np.ascontiguousarray(X)
    batch = X.shape[0]
    num_layers = sizes.shape[0] - 1
    offsets = _layer_offsets(sizes)
    act_starts = np.zeros(num_layers, np.int64)  # hidden layer l's output in `acts`
    widest = 0
    for layer in range(1, num_layers):
        act_starts[layer] = act_starts[layer - 1] + batch * sizes[layer]
        widest = max(widest, sizes[layer])
    acts = np.empty(act_starts[num_layers - 1], theta.dtype)
    h = X
    for layer in range(num_layers - 1):
        out = acts[act_starts[layer]:act_starts[layer + 1]].reshape((batch, sizes[layer + 1]))
        _dense(theta, sizes, offsets, layer, h, out, True)
        h = out
    z = np.empty((batch, sizes[num_layers]), theta.dtype)
    _dense(theta, sizes, offsets, num_layers - 1, h, z, False)
    dz = np.empty_like(z)
    loss = _softmax_xent_backward(z, Y, dz)

    grad = np.empty_like(theta)
    buffers = np.empty((2, batch * widest), theta.dtype)
    for layer in range(num_layers - 1, -1, -1):
        n_in = sizes[layer]
        n_out = sizes[layer + 1]
        start = offsets[layer]
        if layer == 0:
            a = X
        else:
            a = acts[act_starts[layer - 1]:act_starts[layer]].reshape((batch, n_in))
        np.dot(a.T, dz, grad[start:start + n_in * n_out].reshape((n_in, n_out)))
        _column_sums(dz, grad[start + n_in * n_out:start + n_in * n_out + n_out])
        if layer > 0:
            W = theta[start:start + n_in * n_out].reshape((n_in, n_out))
            da = buffers[layer % 2, :batch * n_in].reshape((batch, n_in))
            np.dot(dz, W.T, da)
            _relu_backward(da, a)
            dz = da
    return loss, grad
