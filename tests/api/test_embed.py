"""f.tangent_njit called from the user's own @numba.njit loop equals finite differences."""
import pytest

from embed_programs import simulate


def test_tangent_njit_inside_a_numba_loop():
    x, dx = simulate(2.0, 500)
    h = 1e-6
    fd = (simulate(2.0 + h, 500)[0] - simulate(2.0 - h, 500)[0]) / (2 * h)
    assert dx == pytest.approx(fd, rel=1e-6)


def test_a_crafted_function_name_is_never_executed():
    """tangent_njit names its stub after the function; the name is sanitized, never exec'd."""
    import os

    import fwdad
    from embed_programs import renamed
    stub = fwdad.forward_grad(renamed).tangent_njit
    assert "FWDAD_EMBED_INJECTED" not in os.environ
    assert stub.__name__.isidentifier() and stub.__name__.endswith("_tangent")
    with pytest.raises(NotImplementedError, match="call this from @numba.njit code"):
        stub(1.0, 1.0)
