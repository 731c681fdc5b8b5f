"""Targets beyond the CPU: CUDA device functions and kernels."""
