"""Compiled helpers that the sparsity pass's generated code calls (as `fwdad_sparsity.name`).

A dependency set is a row of uint64 words: bit j of word w says "depends on input 64 w + j".
Generated code works on one word at a time (the trailing axis, as vector mode's directions), so
these helpers take arrays of single words. No scipy here: the compiler imports this module.
"""
import numba
import numpy as np

from ..cache import numba_can_cache

CACHE = numba_can_cache(__file__)


@numba.njit(cache=CACHE)
def union_all(words):
    """The union of every element's set (one word each), for operations that mix all elements:
    reductions, products, np.linalg (dense blocks). Any layout, any rank."""
    total = np.uint64(0)
    for word in words.flat:
        total |= word
    return total


@numba.njit(cache=CACHE)
def merge(taken, other):
    """The sets of an array after a branch on the inputs: the taken branch's `taken` united with
    the other branch's `other` (a new array). Shapes that differ unite every element of `other`
    into every element of `taken`."""
    if taken.shape == other.shape:
        return taken | other
    return taken | union_all(other)


# ---- the Hessian's pattern: pairs of inputs (fwdad/transform/hessian_sparsity.py) -------------------
@numba.njit(cache=CACHE)
def unite_rows(pairs, first, second):
    """pairs[i] |= second for every input i in the set `first` (K words each)."""
    for w in range(first.shape[0]):
        word = first[w]
        if word == 0:
            continue
        for bit in range(64):
            if (word >> np.uint64(bit)) & np.uint64(1):
                row = pairs[64 * w + bit]
                for v in range(second.shape[0]):
                    row[v] |= second[v]


@numba.njit(cache=CACHE)
def pair_sets(pairs, first, second):
    """Every input of one set meets every input of the other, both ways (the pattern is symmetric)."""
    unite_rows(pairs, first, second)
    unite_rows(pairs, second, first)


@numba.njit(cache=CACHE)
def union_rows(sets):
    """The union of the sets of every element of an array of sets (shape + (K,)) as K words."""
    flat = np.ascontiguousarray(sets).reshape((-1, sets.shape[-1]))
    total = np.zeros(sets.shape[-1], np.uint64)
    for e in range(flat.shape[0]):
        total |= flat[e]
    return total


@numba.njit(cache=CACHE)
def pairs(hessian_words, first, second):
    """An operation that mixes elements (or broadcasts): every element of one operand meets
    every element of the other."""
    pair_sets(hessian_words, union_rows(first), union_rows(second))


@numba.njit(cache=CACHE)
def pairs_elementwise(hessian_words, first, second):
    """An elementwise operation on operands of one shape: element e meets element e only."""
    if first.shape != second.shape:
        pairs(hessian_words, first, second)
        return
    k = first.shape[-1]
    a = np.ascontiguousarray(first).reshape((-1, k))
    b = np.ascontiguousarray(second).reshape((-1, k))
    for e in range(a.shape[0]):
        pair_sets(hessian_words, a[e], b[e])
