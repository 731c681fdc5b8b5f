"""What fwdad is measured against: hand-written Numba, JAX and PyTorch, per problem.

Sections, in order:

* hand-written Numba value + JVP (scalar loops carrying (value, tangent) by hand, as an
  expert would write them) and the primal compiled by Numba, for R_f = t(jvp) / t(primal);
* hand-written Numba forward gradient descent (the paper's Algorithm 1) and exact GD;
* the paper's MLP 784-1024-1024-10 in Numba (primal, JVP, backprop);
* JAX: ``jit(jvp)``, ``jit(value_and_grad)``, FGD with ``lax.fori_loop`` or from Python;
* PyTorch: ``torch.func.jvp``, ``backward()``, FGD from Python;
* suites: ready-to-time :class:`~fwdad.bench.harness.Peer` objects per benchmark, to which
  a caller adds its own implementation (``peers["fwdad"] = Peer(...)``).

JAX and PyTorch are optional and imported lazily: :func:`available` says which import,
suites skip the missing ones and :func:`missing_notes` explains why. JAX peers work in
float64, enabled by :func:`jax_setup` (every JAX factory here calls it; call it yourself
before creating JAX arrays of your own).
"""
import functools
import math

import numba
import numpy as np

from . import problems
from .harness import LoopPeer, Peer

njit = functools.partial(numba.njit, error_model="numpy")

# The paper's settings for its 2-D test functions (Baydin et al. 2022, Fig. 3 setting).
FGD_SETTINGS = {
    "beale": {"x0": (1.0, 1.0), "lr": 0.01, "steps": 1000},
    "rosenbrock2": {"x0": (-1.0, 0.0), "lr": 5e-4, "steps": 25_000},
}
MLP_SIZES = (784, 1024, 1024, 10)


# ================================================================ optional peers

_IMPORT_ERRORS = {}


@functools.lru_cache(maxsize=None)
def _importable(name):
    try:
        __import__(name)
        return True
    except Exception as exc:           # ImportError, or a broken install raising anything
        _IMPORT_ERRORS[name] = f"{type(exc).__name__}: {exc}"
        return False


def available():
    """Which peers can run here: ``{"numba": True, "jax": bool, "torch": bool}``."""
    return {"numba": True, "jax": _importable("jax"), "torch": _importable("torch")}


def missing_notes():
    """One line per missing optional peer, for :meth:`Table.note`."""
    return [f"{name} peers skipped ({_IMPORT_ERRORS.get(name, 'not installed')})"
            for name, ok in available().items() if not ok]


def jax_setup():
    """Enable float64 in JAX and return the module; run before creating JAX arrays.

    x64 is a global JAX switch: arrays created before it stay float32. Idempotent.
    """
    import jax
    if not jax.config.read("jax_enable_x64"):
        jax.config.update("jax_enable_x64", True)
    return jax


# ================================================================ Numba: primals

rosenbrock_numba = njit(problems.rosenbrock)
lorenz_euler_numba = njit(problems.lorenz_euler)
lorenz_rk4_numba = njit(problems.lorenz_rk4)
beale_numba = njit(problems.beale)
rosenbrock2_numba = njit(problems.rosenbrock2)


# ================================================================ Numba: hand-written JVPs

@njit
def rosenbrock_jvp_numba(x, v):
    """Value and derivative along v of the extended Rosenbrock function."""
    f = 0.0
    df = 0.0
    for i in range(len(x) - 1):
        t = x[i + 1] - x[i] * x[i]
        dt = v[i + 1] - 2.0 * x[i] * v[i]
        u = 1.0 - x[i]
        f += 100.0 * t * t + u * u
        df += 200.0 * t * dt - 2.0 * u * v[i]
    return f, df


@njit
def rosenbrock_grad_numba(x):
    """Value and full gradient of the extended Rosenbrock function (hand-written reverse)."""
    f = 0.0
    g = np.zeros_like(x)
    for i in range(len(x) - 1):
        t = x[i + 1] - x[i] * x[i]
        u = 1.0 - x[i]
        f += 100.0 * t * t + u * u
        g[i + 1] += 200.0 * t
        g[i] += -400.0 * t * x[i] - 2.0 * u
    return f, g


@njit
def lorenz_euler_jvp_numba(s, r, b, n, ds, dr, db):
    """Value and derivative along (ds, dr, db) of :func:`problems.lorenz_euler`."""
    x = y = z = 1.0
    dx = dy = dz = 0.0
    h = 0.001
    for i in range(n):
        fx, fy, fz, dfx, dfy, dfz = _lorenz_rhs_jvp(s, r, b, x, y, z, ds, dr, db, dx, dy, dz)
        x += h * fx
        y += h * fy
        z += h * fz
        dx += h * dfx
        dy += h * dfy
        dz += h * dfz
    return x + y + z, dx + dy + dz


@njit
def _lorenz_rhs_jvp(s, r, b, x, y, z, ds, dr, db, dx, dy, dz):
    """Lorenz right-hand side and its tangent, in one pass."""
    fx = s * (y - x)
    fy = x * (r - z) - y
    fz = x * y - b * z
    dfx = ds * (y - x) + s * (dy - dx)
    dfy = dx * (r - z) + x * (dr - dz) - dy
    dfz = dx * y + x * dy - db * z - b * dz
    return fx, fy, fz, dfx, dfy, dfz


@njit
def lorenz_rk4_jvp_numba(s, r, b, x0, y0, z0, n, dt, ds, dr, db):
    """Value and derivative along (ds, dr, db) of :func:`problems.lorenz_rk4`."""
    x, y, z = x0, y0, z0
    dx = dy = dz = 0.0
    h = 0.5 * dt
    w = dt / 6.0
    for i in range(n):
        k1x, k1y, k1z, d1x, d1y, d1z = _lorenz_rhs_jvp(
            s, r, b, x, y, z, ds, dr, db, dx, dy, dz)
        k2x, k2y, k2z, d2x, d2y, d2z = _lorenz_rhs_jvp(
            s, r, b, x + h * k1x, y + h * k1y, z + h * k1z,
            ds, dr, db, dx + h * d1x, dy + h * d1y, dz + h * d1z)
        k3x, k3y, k3z, d3x, d3y, d3z = _lorenz_rhs_jvp(
            s, r, b, x + h * k2x, y + h * k2y, z + h * k2z,
            ds, dr, db, dx + h * d2x, dy + h * d2y, dz + h * d2z)
        k4x, k4y, k4z, d4x, d4y, d4z = _lorenz_rhs_jvp(
            s, r, b, x + dt * k3x, y + dt * k3y, z + dt * k3z,
            ds, dr, db, dx + dt * d3x, dy + dt * d3y, dz + dt * d3z)
        x += w * (k1x + 2.0 * k2x + 2.0 * k3x + k4x)
        y += w * (k1y + 2.0 * k2y + 2.0 * k3y + k4y)
        z += w * (k1z + 2.0 * k2z + 2.0 * k3z + k4z)
        dx += w * (d1x + 2.0 * d2x + 2.0 * d3x + d4x)
        dy += w * (d1y + 2.0 * d2y + 2.0 * d3y + d4y)
        dz += w * (d1z + 2.0 * d2z + 2.0 * d3z + d4z)
    return x + y + z, dx + dy + dz


@njit
def beale_jvp_numba(x, y, vx, vy):
    """Value of Beale's function and its derivative along (vx, vy)."""
    y2 = y * y
    y3 = y2 * y
    a = 1.5 - x + x * y
    b = 2.25 - x + x * y2
    c = 2.625 - x + x * y3
    da = (y - 1.0) * vx + x * vy
    db = (y2 - 1.0) * vx + 2.0 * x * y * vy
    dc = (y3 - 1.0) * vx + 3.0 * x * y2 * vy
    return a * a + b * b + c * c, 2.0 * (a * da + b * db + c * dc)


@njit
def beale_grad_numba(x, y):
    """Value and gradient (gx, gy) of Beale's function."""
    y2 = y * y
    y3 = y2 * y
    a = 1.5 - x + x * y
    b = 2.25 - x + x * y2
    c = 2.625 - x + x * y3
    gx = 2.0 * (a * (y - 1.0) + b * (y2 - 1.0) + c * (y3 - 1.0))
    gy = 2.0 * x * (a + 2.0 * b * y + 3.0 * c * y2)
    return a * a + b * b + c * c, gx, gy


@njit
def rosenbrock2_jvp_numba(x, y, vx, vy):
    """Value of 2-D Rosenbrock (a = 1, b = 100) and its derivative along (vx, vy)."""
    u = 1.0 - x
    t = y - x * x
    return u * u + 100.0 * t * t, -2.0 * u * vx + 200.0 * t * (vy - 2.0 * x * vx)


@njit
def rosenbrock2_grad_numba(x, y):
    """Value and gradient (gx, gy) of 2-D Rosenbrock."""
    u = 1.0 - x
    t = y - x * x
    return u * u + 100.0 * t * t, -2.0 * u - 400.0 * t * x, 200.0 * t


# ================================================================ Numba: FGD and GD loops

_JVP_2D = {"beale": beale_jvp_numba, "rosenbrock2": rosenbrock2_jvp_numba}
_GRAD_2D = {"beale": beale_grad_numba, "rosenbrock2": rosenbrock2_grad_numba}
_PRIMAL_2D = {"beale": problems.beale, "rosenbrock2": problems.rosenbrock2}


@njit
def _fgd_loop(value_and_jvp, x, y, lr, steps, seed):
    """Algorithm 1: v ~ N(0, I), g = (grad . v) v, theta -= lr g; losses before each step."""
    np.random.seed(seed)
    losses = np.empty(steps)
    for k in range(steps):
        vx = np.random.standard_normal()
        vy = np.random.standard_normal()
        f, df = value_and_jvp(x, y, vx, vy)
        losses[k] = f
        x -= lr * df * vx
        y -= lr * df * vy
    return x, y, losses


@njit
def _gd_loop(value_and_grad, x, y, lr, steps):
    """Plain gradient descent with the exact gradient; losses before each step."""
    losses = np.empty(steps)
    for k in range(steps):
        f, gx, gy = value_and_grad(x, y)
        losses[k] = f
        x -= lr * gx
        y -= lr * gy
    return x, y, losses


def fgd_numba(problem, x0, lr, steps, seed):
    """Forward gradient descent on "beale" or "rosenbrock2": (params (2,), losses (steps,))."""
    x, y, losses = _fgd_loop(_JVP_2D[problem], float(x0[0]), float(x0[1]), float(lr),
                             int(steps), int(seed))
    return np.array([x, y]), losses


def gd_numba(problem, x0, lr, steps):
    """Exact-gradient descent on "beale" or "rosenbrock2": (params (2,), losses (steps,))."""
    x, y, losses = _gd_loop(_GRAD_2D[problem], float(x0[0]), float(x0[1]), float(lr),
                            int(steps))
    return np.array([x, y]), losses


# ================================================================ the paper's MLP

def mlp_data(batch=64, sizes=MLP_SIZES, seed=0, dtype=np.float32):
    """He-initialized weights (W1, b1, W2, b2, W3, b3), an MNIST-shaped batch X in [0, 1)
    and integer labels Y; everything in ``dtype`` except Y (int64)."""
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        params.append((rng.standard_normal((fan_in, fan_out)) * math.sqrt(2.0 / fan_in))
                      .astype(dtype))
        params.append((0.01 * rng.standard_normal(fan_out)).astype(dtype))
    X = rng.random((batch, sizes[0])).astype(dtype)
    Y = rng.integers(0, sizes[-1], batch).astype(np.int64)
    return tuple(params), X, Y


def mlp_direction(params, seed=1):
    """A random tangent N(0, I) with the shapes and dtypes of ``params``."""
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(p.shape).astype(p.dtype) for p in params)


@njit
def _relu_(h):
    """In-place ReLU (np.maximum(h, 0.0) would promote float32 to float64)."""
    for i in range(h.shape[0]):
        for j in range(h.shape[1]):
            if h[i, j] < 0:
                h[i, j] = 0
    return h


@njit
def _relu_jvp_(h, dh):
    """In-place ReLU of h and of its tangent dh (zeroed where h is clipped)."""
    for i in range(h.shape[0]):
        for j in range(h.shape[1]):
            if h[i, j] < 0:
                h[i, j] = 0
                dh[i, j] = 0
    return h, dh


@njit
def _softmax_xent(logits, Y):
    """Mean softmax cross-entropy over rows, accumulated in float64."""
    n, k = logits.shape
    total = 0.0
    for i in range(n):
        m = logits[i].max()
        s = 0.0
        for j in range(k):
            s += math.exp(logits[i, j] - m)
        total += m + math.log(s) - logits[i, Y[i]]
    return total / n


@njit
def _softmax_xent_jvp(logits, dlogits, Y):
    """Mean softmax cross-entropy and its tangent: d(lse) = softmax . dlogits."""
    n, k = logits.shape
    total = 0.0
    dtotal = 0.0
    for i in range(n):
        m = logits[i].max()
        s = 0.0
        ds = 0.0
        for j in range(k):
            e = math.exp(logits[i, j] - m)
            s += e
            ds += e * dlogits[i, j]
        total += m + math.log(s) - logits[i, Y[i]]
        dtotal += ds / s - dlogits[i, Y[i]]
    return total / n, dtotal / n


@njit
def mlp_loss_numba(W1, b1, W2, b2, W3, b3, X, Y):
    """Primal of the MLP: ReLU, ReLU, softmax cross-entropy (mean over the batch)."""
    a1 = _relu_(X @ W1 + b1)
    a2 = _relu_(a1 @ W2 + b2)
    return _softmax_xent(a2 @ W3 + b3, Y)


@njit
def mlp_jvp_numba(W1, b1, W2, b2, W3, b3, X, Y, dW1, db1, dW2, db2, dW3, db3):
    """Loss and its derivative along the weight tangent: d(a @ W) = da @ W + a @ dW."""
    a1, da1 = _relu_jvp_(X @ W1 + b1, X @ dW1 + db1)
    a2, da2 = _relu_jvp_(a1 @ W2 + b2, da1 @ W2 + a1 @ dW2 + db2)
    return _softmax_xent_jvp(a2 @ W3 + b3, da2 @ W3 + a2 @ dW3 + db3, Y)


@njit
def mlp_grad_numba(W1, b1, W2, b2, W3, b3, X, Y):
    """Loss and its gradient (gW1, gb1, gW2, gb2, gW3, gb3) by hand-written backprop."""
    a1 = _relu_(X @ W1 + b1)
    a2 = _relu_(a1 @ W2 + b2)
    logits = a2 @ W3 + b3
    n, k = logits.shape
    g = np.empty_like(logits)            # d loss / d logits = (softmax - onehot) / n
    total = 0.0
    for i in range(n):
        m = logits[i].max()
        s = 0.0
        for j in range(k):
            g[i, j] = math.exp(logits[i, j] - m)
            s += g[i, j]
        total += m + math.log(s) - logits[i, Y[i]]
        for j in range(k):
            g[i, j] = g[i, j] / s / n
        g[i, Y[i]] -= 1.0 / n
    gW3, gb3 = a2.T @ g, g.sum(axis=0)
    g2 = _relu_backward(g @ W3.T, a2)
    gW2, gb2 = a1.T @ g2, g2.sum(axis=0)
    g1 = _relu_backward(g2 @ W2.T, a1)
    return total / n, (X.T @ g1, g1.sum(axis=0), gW2, gb2, gW3, gb3)


@njit
def _relu_backward(g, a):
    """Zero the cotangent where the ReLU output a was clipped (in place)."""
    for i in range(g.shape[0]):
        for j in range(g.shape[1]):
            if a[i, j] <= 0:
                g[i, j] = 0
    return g


# ================================================================ JAX

def _jax_rosenbrock(x):
    """Vectorized: a Python element loop would unroll n times under jit."""
    import jax.numpy as jnp
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def _jax_lorenz_rhs(s, r, b, x, y, z):
    return s * (y - x), x * (r - z) - y, x * y - b * z


def _jax_lorenz_euler(n):
    from jax import lax

    def f(p):
        s, r, b = p[0], p[1], p[2]

        def step(i, state):
            x, y, z = state
            fx, fy, fz = _jax_lorenz_rhs(s, r, b, x, y, z)
            return x + 0.001 * fx, y + 0.001 * fy, z + 0.001 * fz
        one = p[0] * 0 + 1.0
        x, y, z = lax.fori_loop(0, n, step, (one, one, one))
        return x + y + z
    return f


def _jax_lorenz_rk4(n, dt):
    from jax import lax

    def f(p, x0, y0, z0):
        s, r, b = p[0], p[1], p[2]
        rhs = functools.partial(_jax_lorenz_rhs, s, r, b)

        def step(i, state):
            x, y, z = state
            k1 = rhs(x, y, z)
            k2 = rhs(*(u + 0.5 * dt * k for u, k in zip(state, k1)))
            k3 = rhs(*(u + 0.5 * dt * k for u, k in zip(state, k2)))
            k4 = rhs(*(u + dt * k for u, k in zip(state, k3)))
            return tuple(u + dt / 6.0 * (a + 2.0 * b_ + 2.0 * c + d)
                         for u, a, b_, c, d in zip(state, k1, k2, k3, k4))
        x, y, z = lax.fori_loop(0, n, step, (x0 + 0 * s, y0 + 0 * s, z0 + 0 * s))
        return x + y + z
    return f


def _jax_mlp_loss(params, X, Y):
    import jax
    import jax.numpy as jnp
    W1, b1, W2, b2, W3, b3 = params
    a1 = jax.nn.relu(X @ W1 + b1)
    a2 = jax.nn.relu(a1 @ W2 + b2)
    logp = jax.nn.log_softmax(a2 @ W3 + b3)
    return -jnp.mean(jnp.take_along_axis(logp, Y[:, None], axis=1))


def jax_functions(f):
    """``{"primal", "jvp", "grad"}``: jit(f), jit((p, v, *rest) -> jvp in p),
    jit(value_and_grad in p) for f(p, *rest)."""
    jax = jax_setup()

    def jvp(p, v, *rest):
        return jax.jvp(lambda q: f(q, *rest), (p,), (v,))
    return {"primal": jax.jit(f), "jvp": jax.jit(jvp), "grad": jax.jit(jax.value_and_grad(f))}


@functools.lru_cache(maxsize=None)
def jax_rosenbrock():
    """JAX peers of the extended Rosenbrock function (see :func:`jax_functions`)."""
    return jax_functions(_jax_rosenbrock)


@functools.lru_cache(maxsize=None)
def jax_lorenz_euler(n):
    """JAX peers of Lorenz Euler in p = (s, r, b), n fixed (``lax.fori_loop``)."""
    return jax_functions(_jax_lorenz_euler(n))


@functools.lru_cache(maxsize=None)
def jax_lorenz_rk4(n, dt):
    """JAX peers of Lorenz RK4 in p = (s, r, b), called as fn(p, [v,] x0, y0, z0)."""
    return jax_functions(_jax_lorenz_rk4(n, dt))


@functools.lru_cache(maxsize=None)
def jax_mlp():
    """JAX peers of the MLP loss, called as fn(params, [tangents,] X, Y)."""
    return jax_functions(_jax_mlp_loss)


def _jax_objective(problem):
    f = _PRIMAL_2D[problem]
    return lambda theta: f(theta[0], theta[1])


def _jax_fgd_step_fn(problem, lr):
    """(theta, key) -> (theta, key, loss): one Algorithm-1 step, not yet jitted."""
    jax = jax_setup()
    objective = _jax_objective(problem)

    def step(theta, key):
        key, sub = jax.random.split(key)
        v = jax.random.normal(sub, theta.shape, theta.dtype)
        f, df = jax.jvp(objective, (theta,), (v,))
        return theta - lr * df * v, key, f
    return step


@functools.lru_cache(maxsize=None)
def jax_fgd_loop(problem, lr, steps, directions="split"):
    """jit((theta0, key) -> (theta, losses)): the whole FGD loop in ``lax.fori_loop``.

    ``directions="split"`` draws each v inside the loop (``random.split`` per step, as
    Algorithm 1 reads); ``"presampled"`` draws all of them up front in one vectorized call
    (steps x dim numbers, a different stream) and is ~50x faster on CPU.
    """
    jax = jax_setup()
    import jax.numpy as jnp
    if directions == "split":
        step = _jax_fgd_step_fn(problem, lr)
    elif directions != "presampled":
        raise ValueError(f"directions must be 'split' or 'presampled', not {directions!r}")
    objective = _jax_objective(problem)

    def body(i, carry):
        theta, key, losses, V = carry
        if V is None:
            theta, key, f = step(theta, key)
        else:
            f, df = jax.jvp(objective, (theta,), (V[i],))
            theta = theta - lr * df * V[i]
        return theta, key, losses.at[i].set(f), V

    def loop(theta0, key):
        losses = jnp.zeros(steps, theta0.dtype)
        V = None if directions == "split" else jax.random.normal(
            key, (steps,) + theta0.shape, theta0.dtype)
        theta, _, losses, _ = jax.lax.fori_loop(0, steps, body, (theta0, key, losses, V))
        return theta, losses
    return jax.jit(loop)


@functools.lru_cache(maxsize=None)
def jax_fgd_step(problem, lr):
    """jit((theta, key) -> (theta, key, loss)): one FGD step, for a loop in Python."""
    return jax_setup().jit(_jax_fgd_step_fn(problem, lr))


def fgd_jax(problem, x0, lr, steps, seed, mode="loop"):
    """FGD with JAX: ``mode="loop"`` jits the whole loop, ``"presampled"`` too with all
    directions drawn up front, ``"python"`` jits one step and loops in Python.
    Returns numpy (params (2,), losses (steps,))."""
    jax = jax_setup()
    theta = jax.numpy.asarray(np.asarray(x0, dtype=np.float64))
    key = jax.random.PRNGKey(seed)
    if mode in ("loop", "presampled"):
        directions = "split" if mode == "loop" else "presampled"
        theta, losses = jax_fgd_loop(problem, float(lr), int(steps), directions)(theta, key)
        return np.asarray(theta), np.asarray(losses)
    if mode != "python":
        raise ValueError(f"mode must be 'loop', 'presampled' or 'python', not {mode!r}")
    step = jax_fgd_step(problem, float(lr))
    losses = []
    for _ in range(steps):
        theta, key, f = step(theta, key)
        losses.append(f)
    return np.asarray(theta), np.asarray(jax.numpy.stack(losses))


# ================================================================ PyTorch

def _torch_rosenbrock(x):
    return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()


def _torch_mlp_loss(params, X, Y):
    import torch
    W1, b1, W2, b2, W3, b3 = params
    a1 = torch.relu(X @ W1 + b1)
    a2 = torch.relu(a1 @ W2 + b2)
    return torch.nn.functional.cross_entropy(a2 @ W3 + b3, Y)


def torch_functions(f):
    """``{"primal", "jvp", "grad"}`` for f(p, *rest) with p a tensor or tuple of tensors:
    primal under no_grad, ``torch.func.jvp`` in p, and value + gradient by backward()."""
    import torch

    def primal(p, *rest):
        with torch.no_grad():
            return f(p, *rest)

    def jvp(p, v, *rest):
        if isinstance(p, torch.Tensor):
            return torch.func.jvp(lambda q: f(q, *rest), (p,), (v,))
        return torch.func.jvp(lambda *q: f(q, *rest), tuple(p), tuple(v))

    def grad(p, *rest):
        leaves = [p] if isinstance(p, torch.Tensor) else list(p)
        leaves = [q.detach().requires_grad_() for q in leaves]
        value = f(leaves[0] if isinstance(p, torch.Tensor) else tuple(leaves), *rest)
        value.backward()
        grads = [q.grad for q in leaves]
        return value.detach(), grads[0] if isinstance(p, torch.Tensor) else tuple(grads)
    return {"primal": primal, "jvp": jvp, "grad": grad}


def torch_rosenbrock():
    """PyTorch peers of the extended Rosenbrock function (vectorized)."""
    return torch_functions(_torch_rosenbrock)


def torch_lorenz_euler(n):
    """PyTorch peers of Lorenz Euler in p = (s, r, b): the plain Python loop on 0-d tensors."""
    return torch_functions(lambda p: problems.lorenz_euler(p[0], p[1], p[2], n))


def torch_lorenz_rk4(n, dt):
    """PyTorch peers of Lorenz RK4 in p = (s, r, b), called as fn(p, [v,] x0, y0, z0)."""
    return torch_functions(
        lambda p, x0, y0, z0: problems.lorenz_rk4(p[0], p[1], p[2], x0, y0, z0, n, dt))


def torch_mlp():
    """PyTorch peers of the MLP loss, called as fn(params, [tangents,] X, Y)."""
    return torch_functions(_torch_mlp_loss)


def fgd_torch(problem, x0, lr, steps, seed):
    """FGD with ``torch.func.jvp`` in a Python loop: numpy (params (2,), losses (steps,))."""
    import torch
    f = _PRIMAL_2D[problem]

    def objective(theta):
        return f(theta[0], theta[1])
    generator = torch.Generator().manual_seed(seed)
    theta = torch.tensor(x0, dtype=torch.float64)
    losses = np.empty(steps)
    for k in range(steps):
        v = torch.randn(2, generator=generator, dtype=torch.float64)
        value, df = torch.func.jvp(objective, (theta,), (v,))
        losses[k] = value.item()
        theta = theta - lr * df * v
    return theta.numpy(), losses


# ================================================================ suites

def suite(problem, *, n=None, dt=0.001, batch=64, seed=0, include=("numba", "jax", "torch")):
    """Ready-to-time peers of one benchmark: ``{implementation: Peer}``.

    ``problem`` is "rosenbrock" (n = 100,000), "lorenz_euler" (n = 20,000 steps),
    "lorenz_rk4" (n = 20,000 steps of ``dt``) or "mlp" (``batch``); inputs and the
    direction are drawn from ``seed`` and shared by every peer. Missing peers are left out.
    """
    build = {"rosenbrock": _rosenbrock_suite, "lorenz_euler": _lorenz_euler_suite,
             "lorenz_rk4": _lorenz_rk4_suite, "mlp": _mlp_suite}[problem]
    inputs = _suite_inputs(problem, n, dt, batch, seed)
    ok = available()
    return {name: build(name, *inputs) for name in include if ok.get(name)}


def _suite_inputs(problem, n, dt, batch, seed):
    rng = np.random.default_rng(seed)
    if problem == "rosenbrock":
        n = n or 100_000
        return rng.uniform(-2.0, 2.0, n), rng.standard_normal(n)
    if problem == "lorenz_euler":
        return np.array(problems.LORENZ_PARAMS), rng.standard_normal(3), n or 20_000
    if problem == "lorenz_rk4":
        return np.array(problems.LORENZ_PARAMS), rng.standard_normal(3), n or 20_000, dt
    if problem == "mlp":
        params, X, Y = mlp_data(batch=batch, seed=seed)
        return params, mlp_direction(params, seed + 1), X, Y
    raise KeyError(problem)


def _bind(fns, args, jvp_args, grad_args=None, block=lambda out: out):
    """Zero-argument primal / jvp / grad closures over fixed arguments."""
    grad = fns.get("grad")
    return Peer(jvp=lambda: block(fns["jvp"](*jvp_args)),
                primal=lambda: block(fns["primal"](*args)),
                grad=None if grad is None else lambda: block(grad(*(grad_args or args))))


def _converters(name):
    """(array converter, result blocker) for a framework."""
    if name == "jax":
        jax = jax_setup()
        return jax.numpy.asarray, jax.block_until_ready
    if name == "torch":
        import torch
        return torch.from_numpy, lambda out: out
    return (lambda a: a), (lambda out: out)


def _rosenbrock_suite(name, x, v):
    if name == "numba":
        fns = {"primal": rosenbrock_numba, "jvp": rosenbrock_jvp_numba,
               "grad": rosenbrock_grad_numba}
        return _bind(fns, (x,), (x, v))
    fns = jax_rosenbrock() if name == "jax" else torch_rosenbrock()
    to, block = _converters(name)
    return _bind(fns, (to(x),), (to(x), to(v)), block=block)


def _lorenz_euler_suite(name, p, v, n):
    if name == "numba":
        fns = {"primal": lorenz_euler_numba, "jvp": lorenz_euler_jvp_numba}
        return _bind(fns, (*p, n), (*p, n, *v))
    fns = jax_lorenz_euler(n) if name == "jax" else torch_lorenz_euler(n)
    to, block = _converters(name)
    return _bind(fns, (to(p),), (to(p), to(v)), block=block)


def _lorenz_rk4_suite(name, p, v, n, dt, start=(1.0, 1.0, 1.0)):
    if name == "numba":
        fns = {"primal": lorenz_rk4_numba, "jvp": lorenz_rk4_jvp_numba}
        return _bind(fns, (*p, *start, n, dt), (*p, *start, n, dt, *v))
    fns = jax_lorenz_rk4(n, dt) if name == "jax" else torch_lorenz_rk4(n, dt)
    to, block = _converters(name)
    return _bind(fns, (to(p), *start), (to(p), to(v), *start), block=block)


def _mlp_suite(name, params, tangents, X, Y):
    if name == "numba":
        fns = {"primal": mlp_loss_numba, "jvp": mlp_jvp_numba, "grad": mlp_grad_numba}
        return _bind(fns, (*params, X, Y), (*params, X, Y, *tangents))
    fns = jax_mlp() if name == "jax" else torch_mlp()
    to, block = _converters(name)
    p, t = tuple(map(to, params)), tuple(map(to, tangents))
    return _bind(fns, (p, to(X), to(Y)), (p, t, to(X), to(Y)), block=block)


def fgd_suite(problem="rosenbrock2", *, seed=0, include=("numba", "jax", "torch"),
              steps=None):
    """Ready-to-time FGD loops on a 2-D problem: ``{implementation: LoopPeer}``.

    Implementations: "numba" (compiled loop), "jax fori_loop" (whole loop jitted, v drawn
    each step), "jax fori_loop presampled" (all v drawn before the loop), "jax step from
    Python" and "torch" (``torch.func.jvp`` from Python). Slow peers run
    fewer steps (``steps`` maps an implementation to its step count to override).
    """
    settings = FGD_SETTINGS[problem]
    x0, lr = settings["x0"], settings["lr"]
    full = settings["steps"]
    counts = {"numba": full, "jax fori_loop": full, "jax fori_loop presampled": full,
              "jax step from Python": 2_000,
              "torch": 500, **(steps or {})}
    ok = available()
    runners = {}
    if ok["numba"] and "numba" in include:
        runners["numba"] = lambda k: fgd_numba(problem, x0, lr, k, seed)
    if ok["jax"] and "jax" in include:
        runners["jax fori_loop"] = lambda k: fgd_jax(problem, x0, lr, k, seed, "loop")
        runners["jax fori_loop presampled"] = lambda k: fgd_jax(problem, x0, lr, k, seed,
                                                                "presampled")
        runners["jax step from Python"] = lambda k: fgd_jax(problem, x0, lr, k, seed,
                                                            "python")
    if ok["torch"] and "torch" in include:
        runners["torch"] = lambda k: fgd_torch(problem, x0, lr, k, seed)
    return {name: LoopPeer(run=functools.partial(run, counts[name]), steps=counts[name])
            for name, run in runners.items()}


__all__ = [
    "available", "missing_notes", "jax_setup", "FGD_SETTINGS", "MLP_SIZES",
    "rosenbrock_numba", "lorenz_euler_numba", "lorenz_rk4_numba", "beale_numba",
    "rosenbrock2_numba", "rosenbrock_jvp_numba", "rosenbrock_grad_numba",
    "lorenz_euler_jvp_numba", "lorenz_rk4_jvp_numba", "beale_jvp_numba", "beale_grad_numba",
    "rosenbrock2_jvp_numba", "rosenbrock2_grad_numba", "fgd_numba", "gd_numba",
    "mlp_data", "mlp_direction", "mlp_loss_numba", "mlp_jvp_numba", "mlp_grad_numba",
    "jax_functions", "jax_rosenbrock", "jax_lorenz_euler", "jax_lorenz_rk4", "jax_mlp",
    "jax_fgd_loop", "jax_fgd_step", "fgd_jax",
    "torch_functions", "torch_rosenbrock", "torch_lorenz_euler", "torch_lorenz_rk4",
    "torch_mlp", "fgd_torch", "suite", "fgd_suite",
]
