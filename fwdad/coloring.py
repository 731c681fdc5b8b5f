"""Column coloring of a Jacobian's sparsity pattern, for compressed forward mode.

Columns that share no row may share a color: seeding one direction per color and reading entry
(i, j) of the Jacobian from row i of direction color(j) recovers every entry. That is distance-2
coloring in the bipartite row/column graph (Gebremedhin, Manne, Pothen 2005, "What color is
your Jacobian?"). The greedy algorithm colors columns in a given order with the smallest color
no neighbor holds; orderings matter, so several are tried and the fewest colors kept, as
SparseMatrixColorings.jl does with its `LargestFirst` and `NaturalOrder`, then improved by
Culberson's iterated greedy (recolor class by class; never more colors).

>>> import numpy as np
>>> from scipy.sparse import csr_array
>>> tridiagonal = csr_array(np.eye(6) + np.eye(6, k=1) + np.eye(6, k=-1))
>>> colors = color_columns(tridiagonal.indptr, tridiagonal.indices, 6)
>>> int(colors.max()) + 1, is_valid_coloring(tridiagonal.indptr, tridiagonal.indices, colors)
(3, True)
"""
import numba
import numpy as np

from .cache import numba_can_cache

CACHE = numba_can_cache(__file__)


def transpose_structure(indptr, indices, n_columns):
    """The CSC structure (column pointers, row indices) of a CSR structure."""
    counts = np.bincount(indices, minlength=n_columns)
    column_pointers = np.zeros(n_columns + 1, np.int64)
    np.cumsum(counts, out=column_pointers[1:])
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    order = np.argsort(indices, kind="stable")
    return column_pointers, rows[order].astype(np.int64)


@numba.njit(cache=CACHE)
def distance2_degrees(row_pointers, columns, column_pointers, rows):
    """For each column, how many other columns share a row with it."""
    n = len(column_pointers) - 1
    degrees = np.zeros(n, np.int64)
    seen = np.full(n, -1, np.int64)
    for c in range(n):
        seen[c] = c
        for p in range(column_pointers[c], column_pointers[c + 1]):
            r = rows[p]
            for q in range(row_pointers[r], row_pointers[r + 1]):
                other = columns[q]
                if seen[other] != c:
                    seen[other] = c
                    degrees[c] += 1
    return degrees


@numba.njit(cache=CACHE)
def greedy(row_pointers, columns, column_pointers, rows, order):
    """Greedy distance-2 column coloring in `order`: each column takes the smallest color that
    no column sharing a row with it holds."""
    n = len(column_pointers) - 1
    colors = np.full(n, -1, np.int64)
    forbidden = np.full(n + 1, -1, np.int64)
    for c in order:
        for p in range(column_pointers[c], column_pointers[c + 1]):
            r = rows[p]
            for q in range(row_pointers[r], row_pointers[r + 1]):
                color = colors[columns[q]]
                if color >= 0:
                    forbidden[color] = c
        color = 0
        while forbidden[color] == c:
            color += 1
        colors[c] = color
    return colors


def orderings(row_pointers, columns, column_pointers, rows):
    """Largest-first (by distance-2 degree) and natural orders of the columns."""
    n = len(column_pointers) - 1
    degrees = distance2_degrees(row_pointers, columns, column_pointers, rows)
    return [np.argsort(-degrees, kind="stable").astype(np.int64), np.arange(n, dtype=np.int64)]


def color_columns(indptr, indices, n_columns, refinements=60):
    """A valid column coloring (one int per column, colors 0..k-1) with few colors: the better of
    the orderings, then `refinements` rounds of iterated greedy."""
    row_pointers, columns = np.asarray(indptr, np.int64), np.asarray(indices, np.int64)
    column_pointers, rows = transpose_structure(row_pointers, columns, n_columns)
    best = None
    for order in orderings(row_pointers, columns, column_pointers, rows):
        colors = greedy(row_pointers, columns, column_pointers, rows, order)
        if best is None or colors.max(initial=-1) < best.max(initial=-1):
            best = colors
    return iterated_greedy(row_pointers, columns, column_pointers, rows, best, refinements)


def iterated_greedy(row_pointers, columns, column_pointers, rows, colors, rounds):
    """Culberson's iterated greedy: recoloring the columns class by class (classes in reverse,
    or shuffled, order) never needs more colors, and often fewer. Seeded: deterministic."""
    rng = np.random.default_rng(0)
    best = colors
    for round_ in range(rounds):
        n_colors = int(colors.max(initial=-1)) + 1
        rank = np.arange(n_colors)[::-1] if round_ % 3 == 0 else rng.permutation(n_colors)
        order = np.argsort(rank[colors], kind="stable").astype(np.int64)
        colors = greedy(row_pointers, columns, column_pointers, rows, order)
        if colors.max(initial=-1) < best.max(initial=-1):
            best = colors
    return best


def lower_bound(indptr):
    """No coloring has fewer colors than the most nonzeros in one row (they pairwise conflict)."""
    return int(np.diff(indptr).max(initial=0))


def is_valid_coloring(indptr, indices, colors):
    """Whether no two columns of one color share a row."""
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    n_colors = int(colors.max(initial=-1)) + 1
    keys = rows * max(n_colors, 1) + colors[indices]
    return len(np.unique(keys)) == len(keys)


# ---- star coloring of a symmetric pattern (Hessians) ---------------------------------------------
@numba.njit(cache=CACHE)
def greedy_star(indptr, indices, order):
    """Greedy star coloring in `order` (Gebremedhin, Manne, Pothen 2005, section 4): adjacent
    vertices differ, and no path on four vertices has two colors. Coloring v with c(x) would
    make the path v - w - x - y two-colored when x has another neighbor y of w's color, and
    u - v - w - x when v has another neighbor u of w's color: both forbid c(x). Every path is
    checked when its last vertex is colored, so the result is a star coloring."""
    n = len(indptr) - 1
    colors = np.full(n, -1, np.int64)
    forbidden = np.full(n + 1, -1, np.int64)
    count = np.zeros(n + 1, np.int64)             # colors among v's colored neighbors
    for v in order:
        for p in range(indptr[v], indptr[v + 1]):
            w = indices[p]
            if w != v and colors[w] >= 0:
                forbidden[colors[w]] = v
                count[colors[w]] += 1
        for p in range(indptr[v], indptr[v + 1]):
            w = indices[p]
            if w == v or colors[w] < 0:
                continue
            for q in range(indptr[w], indptr[w + 1]):
                x = indices[q]
                if x == v or x == w or colors[x] < 0 or forbidden[colors[x]] == v:
                    continue
                if count[colors[w]] >= 2:
                    forbidden[colors[x]] = v
                    continue
                for r in range(indptr[x], indptr[x + 1]):
                    y = indices[r]
                    if y != w and y != x and colors[y] == colors[w]:
                        forbidden[colors[x]] = v
                        break
        for p in range(indptr[v], indptr[v + 1]):
            w = indices[p]
            if w != v and colors[w] >= 0:
                count[colors[w]] = 0
        color = 0
        while forbidden[color] == v:
            color += 1
        colors[v] = color
    return colors


def star_color(indptr, indices, n):
    """A star coloring (one int per vertex, colors 0..k-1) of the symmetric pattern with few
    colors: the better of largest-first (by degree) and natural order. A tridiagonal pattern
    gets 3 colors, an arrowhead 2."""
    indptr, indices = np.asarray(indptr, np.int64), np.asarray(indices, np.int64)
    degrees = np.diff(indptr)
    best = None
    for order in (np.argsort(-degrees, kind="stable").astype(np.int64), np.arange(n, dtype=np.int64)):
        colors = greedy_star(indptr, indices, order)
        if best is None or colors.max(initial=-1) < best.max(initial=-1):
            best = colors
    return best


def is_star_coloring(indptr, indices, colors):
    """Whether adjacent vertices differ and no path on four vertices has two colors: on no edge
    (w, x) have both w another neighbor of x's color and x another neighbor of w's color (then
    every off-diagonal entry can be read from B = H S, in row w or in row x)."""
    for w in range(len(indptr) - 1):
        neighbors = [x for x in indices[indptr[w]:indptr[w + 1]] if x != w]
        seen = np.bincount(colors[neighbors], minlength=int(colors.max(initial=0)) + 1) if neighbors else None
        for x in neighbors:
            if colors[x] == colors[w]:
                return False
            others = [y for y in indices[indptr[x]:indptr[x + 1]] if y != x and y != w]
            if seen[colors[x]] >= 2 and any(colors[y] == colors[w] for y in others):
                return False
    return True
