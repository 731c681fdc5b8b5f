"""Sparse Jacobians (issue 17): the pattern found from the code, colored, compressed.

Filled in by fwdad/sparse/jacobian.py; this package imports nothing heavy so that the compiler
can import its runtime helpers.
"""
from .hessian import HessianSparsity, hessian_sparsity
from .jacobian import Sparsity, check_pattern, jacobian_sparsity, sparse_jacobian

__all__ = ["Sparsity", "HessianSparsity", "jacobian_sparsity", "hessian_sparsity", "sparse_jacobian",
           "check_pattern"]
