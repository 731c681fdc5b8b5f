def lorenz_jvp(s, r, b, n, d_s, d_r, d_b):
    # line 6: x = 1.0; y = 1.0; z = 1.0
    x = 1.0
    d_x = 0.0
    y = 1.0
    d_y = 0.0
    z = 1.0
    d_z = 0.0
    # line 7: for _ in range(n):
    for _ in range(n):
        # line 8: dx = s * (y - x); dy = x * (r - z) - y; dz = x * y - b * z
        t1 = y - x
        d_t1 = d_y - d_x
        dx = s * t1
        d_dx = d_s * t1 + s * d_t1
        t2 = r - z
        d_t2 = d_r - d_z
        t3 = x * t2
        d_t3 = d_x * t2 + x * d_t2
        dy = t3 - y
        d_dy = d_t3 - d_y
        t4 = x * y
        d_t4 = d_x * y + x * d_y
        t5 = b * z
        d_t5 = d_b * z + b * d_z
        dz = t4 - t5
        d_dz = d_t4 - d_t5
        # line 9: x += 0.001 * dx; y += 0.001 * dy; z += 0.001 * dz
        t6 = 0.001 * dx
        d_t6 = 0.001 * d_dx
        d_x += d_t6
        x += t6
        t7 = 0.001 * dy
        d_t7 = 0.001 * d_dy
        d_y += d_t7
        y += t7
        t8 = 0.001 * dz
        d_t8 = 0.001 * d_dz
        d_z += d_t8
        z += t8
    # line 10: return x + y + z
    t9 = x + y
    d_t9 = d_x + d_y
    t10 = t9 + z
    d_t10 = d_t9 + d_z
    return (t10, d_t10)
