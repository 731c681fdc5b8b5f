"""Functions that write into their arguments or through views (vector mode's hard cases)."""
import numpy as np


def transpose_write(A, a):
    np.transpose(A)[1] = a
    return np.sum(A * A)


def transpose_axes_write(A, a):
    np.transpose(A, (1, 0))[2] *= a
    return np.sum(A * A)


def swapaxes_write(A, a):
    np.swapaxes(A, 0, 1)[-1] *= a
    return np.sum(A)


def pair(y):
    return np.sum(y * y), 1.0


def divides_then_calls(x, a):
    x[2] /= a * a + 1.0
    s1, s2 = pair(x)
    return a + s1


def scales_argument(x, a):
    x *= a
    return np.sum(np.sin(x))


def scales_argument_vector(x, a):
    x[1:] *= a
    return np.sin(x) * a


def writes_then_pairs(x):
    w = x * 2.0
    x[::-1][-2] += 2.0
    return 0.0, np.outer(w, w)


def calls_a_writing_helper(x):
    s, M = writes_then_pairs(x)
    return M + np.sum(x)


def writes_first_row(B, a):
    B[0] = a
    return np.sum(B)


def callee_writes_a_swapped_view(A, a):
    return writes_first_row(np.swapaxes(A, 0, 1), a) + np.sum(A * A)


def fills_a_swapped_view(A, a):
    S = np.swapaxes(A, 0, 1)
    S.fill(a)
    return np.sum(A * A) + a
