"""Sparse Hessians: the pattern found from the code, a star coloring, one compressed outer pass.

    P = f.hessian_sparsity(x)          # fwdad.sparse.hessian_sparsity: found from the code, once
    H = f.hessian(x, sparse=True)      # one scipy.sparse CSR matrix over the differentiated inputs

The pattern comes from the Hessian's sparsity pass (fwdad/transform/hessian_sparsity.py): the
inputs' gradient sets, and the pairs of inputs that meet in a nonlinear operation. Its rows and
columns are the active arguments' elements in order (each flattened in C order), as for
Jacobians. A Hessian is symmetric, so a star coloring (Gebremedhin, Manne, Pothen 2005) needs
fewer colors than the Jacobian's column coloring (an arrowhead: 2 instead of n): B = H S with
one direction per color, and each entry H[i, j] is read from row i or, by symmetry, from row j.
"""
import weakref

import numba
import numpy as np

from .. import coloring
from ..drivers.gradients import scalar_output_required
from ..errors import OptionError, SparsityError
from .jacobian import (CACHE, Sparsity, boolean_matrix, cached_pattern, check_direction, colored,
                       compressed_jacobian, compressed_seeds, input_sets, row_check, run, scipy_sparse,
                       untouched, words_to_pattern)

_HESSIAN_PATTERNS = weakref.WeakKeyDictionary()      # ForwardFunction -> {call key: HessianSparsity}
MISSED_HESSIAN = ("the sparsity pattern misses a nonzero of the Hessian: the gradient's element {row} "
                  "depends on {what}.\nWhat to do: pass the pattern fwdad finds (f.hessian_sparsity(...), "
                  "the default with sparse=True), or add the missing entries to yours.")


class HessianSparsity(Sparsity):
    """The sparsity pattern of a Hessian (symmetric, inputs x inputs), with a star coloring."""

    @property
    def colors(self):
        """One color per input: a star coloring of the pattern's graph (the diagonal aside)."""
        if self._coloring is None:
            self._coloring = coloring.star_color(self.matrix.indptr, self.matrix.indices, self.shape[0])
        return self._coloring

    def __repr__(self):
        kind = "local " if self.local else ""
        return (f"<fwdad.sparse.HessianSparsity {kind}{self.shape[0]}x{self.shape[1]}, {self.nnz} "
                f"nonzeros, {self.n_colors} colors>")


# ---- detection -----------------------------------------------------------------------------------
def hessian_sparsity(f, *args, local=False, **kwargs):
    """The sparsity pattern of the Hessian of scalar f for arguments like these (a HessianSparsity).

    By default it holds at every value of the float arguments with these shapes and these integer
    arguments (branches on their values contribute both sides); with local=True at this point only."""
    args = f.option_arguments(f"{f.__name__}.hessian_sparsity", args, kwargs, ("local",))
    return detect_hessian(f, args, bool(local))


def detect_hessian(f, args, local):
    """Run the Hessian's sparsity pass once: pairs of inputs, kept where the output depends on
    both (an operation whose result never reaches the output adds pairs, not a nonzero)."""
    args = untouched(f, args)
    active = f.active_positions(args)
    spec = f.specialization(args, active, "hessian_sparsity_local" if local else "hessian_sparsity")
    scalar_output_required(spec, f"{f.__name__}.hessian_sparsity")
    seeds, arguments, total = input_sets(args, active)
    pair_words = np.zeros((total, seeds[0].shape[-1]), np.uint64)
    _, output = run(f, spec, spec.jvp, tuple(args) + tuple(seeds) + (pair_words,))
    reached = words_to_pattern(np.asarray(output).reshape(1, -1), 1, total).toarray()[0]
    pairs = words_to_pattern(pair_words, total, total).tocoo()
    kept = reached[pairs.row] & reached[pairs.col]
    matrix = scipy_sparse().csr_array((pairs.data[kept], (pairs.row[kept], pairs.col[kept])), shape=(total, total))
    return HessianSparsity(matrix, arguments, local)


def cached_hessian_pattern(f, args):
    return cached_pattern(f, args, _HESSIAN_PATTERNS, detect_hessian)


def hessian_pattern(f, sparsity, args, active):
    """A HessianSparsity from what the user passed (a HessianSparsity, a Sparsity, a scipy.sparse
    matrix or a 2-D array over the active inputs), made symmetric: H[i, j] and H[j, i] are one entry."""
    n = sum(int(np.size(args[i])) for i in active)
    if isinstance(sparsity, HessianSparsity):
        pattern = sparsity
    elif isinstance(sparsity, Sparsity) or scipy_sparse().issparse(sparsity) or np.ndim(sparsity) == 2:
        matrix = boolean_matrix(sparsity.matrix if isinstance(sparsity, Sparsity) else sparsity)
        if matrix.shape[0] != matrix.shape[1]:
            raise_shape(f, matrix.shape, n, active)
        pattern = colored(boolean_matrix(matrix + matrix.T), tuple((i, int(np.size(args[i]))) for i in active),
                          HessianSparsity)
    else:
        raise OptionError(f"{f.__name__}.hessian: sparsity={sparsity!r:.60} is not a pattern.\nWhat to do: pass "
                          f"f.hessian_sparsity(...), a scipy.sparse matrix or a 2-D boolean array of shape "
                          f"{(n, n)} (differentiated input elements, both ways).")
    if pattern.shape != (n, n):
        raise_shape(f, pattern.shape, n, active)
    return pattern


def raise_shape(f, shape, n, active):
    raise SparsityError(f"{f.__name__}.hessian: the sparsity pattern has shape {shape}, but the Hessian is "
                        f"{n} x {n} (the elements of the differentiated arguments "
                        f"{[f.parameters[i] for i in active]}).\nWhat to do: pass the pattern of these "
                        f"arguments, e.g. {f.__name__}.hessian_sparsity(...) called with them.")


# ---- compressed evaluation -------------------------------------------------------------------------
def compressed_hessian(gradient, gradient_args, active, pattern):
    """H from B = [H S | H v]: `gradient` is the ForwardFunction of f's gradient (fwdad's loop of
    inner JVPs), differentiated by one outer vector-mode pass with one direction per color."""
    seeds = compressed_seeds(pattern, gradient_args, active)
    _, compressed = compressed_jacobian(gradient, gradient_args, active, seeds)
    dtype = np.result_type(*[gradient_args[i] for i in active])
    matrix = pattern.matrix
    data, row, kind = decompress_symmetric(np.ascontiguousarray(compressed), matrix.indptr, matrix.indices,
                                           pattern.colors, check_direction(pattern), 1e3 * np.finfo(dtype).eps)
    if kind:
        what = ("an input of a color that the pattern leaves out of that row" if kind == 1 else
                "an input that the pattern leaves out of that row (H v differs from the decompressed H "
                "times v)")
        raise SparsityError(MISSED_HESSIAN.format(row=row, what=what))
    return scipy_sparse().csr_array((data.astype(dtype, copy=False), matrix.indices, matrix.indptr),
                                    shape=matrix.shape, copy=False)


@numba.njit(cache=CACHE)
def decompress_symmetric(compressed, indptr, indices, colors, v, tolerance):
    """(H's entries in the pattern's order, the first bad row or -1, why: 1 an unclaimed nonzero,
    2 H v that H times v misses). Entry (i, j) is B[i, color(j)] when j is the only neighbor of i
    of its color, else B[j, color(i)] (a star coloring makes one of the two hold); the diagonal
    entry is B[i, color(i)], since no neighbor shares i's color."""
    n, width = compressed.shape
    k = width - 1
    count = np.zeros(max(k, 1), np.int64)
    data = np.empty(len(indices), compressed.dtype)
    for r in range(n):
        for p in range(indptr[r], indptr[r + 1]):
            if indices[p] != r:
                count[colors[indices[p]]] += 1
        for p in range(indptr[r], indptr[r + 1]):
            j = indices[p]
            if j == r or count[colors[j]] == 1:
                data[p] = compressed[r, colors[j]]
            else:
                data[p] = compressed[j, colors[r]]
        for p in range(indptr[r], indptr[r + 1]):
            count[colors[indices[p]]] = 0
    claimed = np.full(max(k, 1), -1, np.int64)
    for r in range(n):
        why = row_check(compressed, r, indptr, indices, colors, data, v, claimed, tolerance)
        if why:
            return data, r, why
    return data, -1, 0
