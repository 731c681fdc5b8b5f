"""Programs whose generated code is kept as golden text in tests/golden/."""
import math


def lorenz(s, r, b, n):
    x = 1.0; y = 1.0; z = 1.0
    for _ in range(n):
        dx = s * (y - x); dy = x * (r - z) - y; dz = x * y - b * z
        x += 0.001 * dx; y += 0.001 * dy; z += 0.001 * dz
    return x + y + z


def energy(x, k, n):
    e = 0.0
    for i in range(n - 1):
        d = x[i + 1] - x[i]
        e += 0.5 * k * d * d + math.cos(x[i])
    return e
