"""A model step for tests/api/test_embed.py (module level: fwdad reads its source)."""
import numba

import fwdad


@fwdad.forward_grad
def step(x, v, k, dt):
    a = -k * x - 0.1 * v
    return x + dt * v, v + dt * a


step_jvp = step.tangent_njit


@numba.njit
def simulate(k, n):
    """A simulation loop in the user's own Numba code, carrying d(state)/dk along."""
    x = 1.0; v = 0.0; dx = 0.0; dv = 0.0
    for _ in range(n):
        (x, v), (dx, dv) = step_jvp(x, v, k, 0.01, dx, dv, 1.0, None)
    return x, dx


def renamed(x):
    return 2.0 * x


# A __name__ that, pasted into generated source, would define a function and run a statement.
renamed.__name__ = "renamed(p0, t0):\n    pass\nimport os; os.environ['FWDAD_EMBED_INJECTED'] = '1'\ndef x"
