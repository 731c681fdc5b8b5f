"""Benchmarks: the problems, the peers fwdad is compared against, and the timing harness.

``problems`` holds the test functions as plain Python, ``peers`` hand-written Numba, JAX
and PyTorch implementations of their value + JVP (JAX and PyTorch optional, imported
lazily), ``harness`` timing, tables and peak memory. A typical row::

    from fwdad.bench import Table, measure_peers, peers
    table = Table(baseline="numba")
    row = peers.suite("rosenbrock", n=100_000)      # {"numba": Peer, "jax": Peer, ...}
    row["fwdad"] = Peer(jvp=lambda: f.jvp((x,), (v,)), primal=lambda: f(x))
    measure_peers(table, "rosenbrock n=1e5", row)
    table.print()
"""
from . import harness, peers, problems
from .harness import (LoopPeer, Peer, Table, machine, measure_loops, measure_peers,
                      peak_rss_child, timeit)

__all__ = ["harness", "peers", "problems", "Table", "Peer", "LoopPeer", "timeit", "machine",
           "measure_peers", "measure_loops", "peak_rss_child"]
