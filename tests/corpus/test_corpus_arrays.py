"""Array programs: primal vs CPython, JVP vs central differences and (pure NumPy ones) jax.jvp."""
import types

import numpy as np
import pytest

import fwdad
from corpus_arrays import CASES
from helpers import check_jvp, random_tangent, is_float

try:
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
except ImportError:
    jax = None

JAX_COMPATIBLE = {"mlp_softmax_cross_entropy", "least_squares_residual", "linear_solve_energy",
                  "batch_norm_columns", "strided_slices", "outer_and_norm", "elementwise_zoo",
                  "products", "log_likelihood", "broadcast_rows_columns", "matrix_methods",
                  "reshapes_and_views", "concatenate_and_stack", "recurrent_unroll"}


@pytest.mark.parametrize("function, make_args", CASES, ids=[f.__name__ for f, _ in CASES])
def test_array_corpus(function, make_args, rng):
    args = make_args(rng)
    value, tangent = check_jvp(fwdad.forward_grad(function), args, np.random.default_rng(1),
                               rtol=2e-5, atol=1e-6)
    if jax is not None and function.__name__ in JAX_COMPATIBLE:
        jax_function = types.FunctionType(function.__code__, dict(function.__globals__, np=jnp))
        same = np.random.default_rng(1)                 # the tangents check_jvp drew
        tangents = [random_tangent(a, same) if is_float(a) else None for a in args]
        active = [i for i, t in enumerate(tangents) if t is not None]

        def closed(*xs):
            full = list(args)
            for i, x in zip(active, xs):
                full[i] = x
            return jax_function(*full)
        _, expected = jax.jvp(closed, tuple(jnp.asarray(args[i]) for i in active),
                              tuple(jnp.asarray(tangents[i]) for i in active))
        np.testing.assert_allclose(tangent, np.asarray(expected), rtol=1e-7, atol=1e-9)


def test_array_corpus_is_large_enough():
    assert len(CASES) >= 25
