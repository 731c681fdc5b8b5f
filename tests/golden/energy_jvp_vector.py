def energy_jvp_vector(x, k, n, d_x, d_k):
    # line 13: def energy(x, k, n):
    K = d_x.shape[-1]
    d_k = d_k.copy()
    d_e = np.zeros(K, np.float64)
    # line 14: e = 0.0
    e = 0.0
    d_e[:] = 0.0
    # line 15: for i in range(n - 1):
    for i in range(n - 1):
        # line 16: d = x[i + 1] - x[i]
        t1 = x[i + 1]
        t2 = x[i]
        d = t1 - t2
        # line 17: e += 0.5 * k * d * d + math.cos(x[i])
        t3 = 0.5 * k
        t4 = t3 * d
        t5 = t4 * d
        t6 = x[i]
        t7 = math.cos(t6)
        t8 = t5 + t7
        e += t8
        # line 16: d = x[i + 1] - x[i]
        for k_1 in range(K):
            # line 16: d = x[i + 1] - x[i]
            d_t1 = d_x[i + 1, k_1]
            d_t2 = d_x[i, k_1]
            d_d = d_t1 - d_t2
            # line 17: e += 0.5 * k * d * d + math.cos(x[i])
            d_t3 = 0.5 * d_k[k_1]
            d_t4 = d_t3 * d + t3 * d_d
            d_t5 = d_t4 * d + t4 * d_d
            d_t6 = d_x[i, k_1]
            d_t7 = -d_t6 * math.sin(t6)
            d_t8 = d_t5 + d_t7
            d_e[k_1] += d_t8
    # line 18: return e
    return (e, d_e)
