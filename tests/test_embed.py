"""f.tangent_njit called from the user's own @numba.njit loop equals finite differences."""
import pytest

from embed_programs import simulate


def test_tangent_njit_inside_a_numba_loop():
    x, dx = simulate(2.0, 500)
    h = 1e-6
    fd = (simulate(2.0 + h, 500)[0] - simulate(2.0 - h, 500)[0]) / (2 * h)
    assert dx == pytest.approx(fd, rel=1e-6)
