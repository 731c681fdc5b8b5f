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
