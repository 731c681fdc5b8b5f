"""Sparse Jacobians: the pattern from the sparsity pass, a column coloring, one compressed pass.

    P = fwdad.sparse.jacobian_sparsity(f, x, w)     # f.sparsity(x, w): found from the code, once
    J = fwdad.sparse.sparse_jacobian(f, x, w)       # f.jacobian(x, w, sparse=True): CSR per argument

The columns of the pattern are the active arguments' elements in order (each flattened in C
order), its rows the output's elements. A column coloring groups columns that share no row;
one vector-mode pass with one direction per color gives the compressed Jacobian B = J S, and
entry (i, j) of J is B[i, color(j)].
"""
import hashlib
import weakref

import numba
import numpy as np

from .. import coloring
from ..cache import numba_can_cache
from ..errors import FwdadError, OptionError, SparsityError

WORD_BITS = 64
CACHE = numba_can_cache(__file__)
_PATTERNS = weakref.WeakKeyDictionary()       # ForwardFunction -> {call key: Sparsity}
_COLORED = {}                                 # digest of a user's pattern -> Sparsity
_COLORED_LIMIT = 64


def scipy_sparse():
    try:
        import scipy.sparse
    except ImportError:
        raise FwdadError("sparse Jacobians need SciPy, for its CSR matrices.\nWhat to do: pip install "
                         "'fwdad[sparse]' (or pip install scipy).") from None
    return scipy.sparse


class Sparsity:
    """The sparsity pattern of a Jacobian: `matrix` (a boolean scipy.sparse.csr_array, output
    elements x active input elements), `per_argument` (one CSR per argument, None for the inactive
    ones), and `colors`, a column coloring computed once and kept with the pattern.

    `local` is True when the pattern holds at the point where it was found only (local=True)."""

    def __init__(self, matrix, arguments, local=False):
        self.matrix = matrix.tocsr().astype(bool)
        self.matrix.sort_indices()
        self.arguments = arguments          # ((position, size), ...) of the active arguments
        self.local = local
        self._coloring = None
        self._check = None          # the check direction v of the compressed pass
        self._seeds = {}            # argument shapes and dtypes -> seed matrices

    @property
    def shape(self):
        return self.matrix.shape

    @property
    def nnz(self):
        return int(self.matrix.nnz)

    @property
    def colors(self):
        """One color per column (0..n_colors-1): no two columns of a color share a row."""
        if self._coloring is None:
            self._coloring = coloring.color_columns(self.matrix.indptr, self.matrix.indices, self.shape[1])
        return self._coloring

    @property
    def n_colors(self):
        return int(self.colors.max(initial=-1)) + 1

    @property
    def per_argument(self):
        out, start = {}, 0
        for position, size in self.arguments:
            out[position] = self.matrix[:, start:start + size]
            start += size
        return tuple(out.get(i) for i in range(max(out, default=-1) + 1))

    def toarray(self):
        return self.matrix.toarray()

    def __repr__(self):
        kind = "local " if self.local else ""
        return (f"<fwdad.sparse.Sparsity {kind}{self.shape[0]}x{self.shape[1]}, {self.nnz} nonzeros, "
                f"{self.n_colors} colors>")


# ---- detection -----------------------------------------------------------------------------------
def seed_words(shape, offset, words):
    """Input sets for one argument: element j of it (flattened) holds bit offset + j alone."""
    size = int(np.prod(shape, dtype=np.int64))
    seeds = np.zeros((size, words), np.uint64)
    bits = offset + np.arange(size)
    seeds[np.arange(size), bits // WORD_BITS] = np.left_shift(np.uint64(1), (bits % WORD_BITS).astype(np.uint64))
    return seeds.reshape(tuple(shape) + (words,))


def words_to_pattern(words, n_rows, n_columns):
    """A boolean CSR matrix from per-row uint64 words (bit j of word w: column 64 w + j)."""
    sparse = scipy_sparse()
    if n_rows == 0:                                   # an empty output: no entries
        return sparse.csr_array((0, n_columns), dtype=bool)
    indptr, indices = set_bits(np.ascontiguousarray(words, dtype=np.uint64).reshape(n_rows, -1), n_columns)
    return sparse.csr_array((np.ones(len(indices), bool), indices, indptr), shape=(n_rows, n_columns))


@numba.njit(cache=CACHE)
def set_bits(words, n_columns):
    """The CSR structure (row pointers, sorted column indices) of the set bits of each row's
    words, skipping zero words (a sparse pattern's rows are mostly zero words)."""
    indptr = np.zeros(words.shape[0] + 1, np.int64)
    count = 0
    for r in range(words.shape[0]):
        for w in range(words.shape[1]):
            word = words[r, w]
            while word:
                word &= word - np.uint64(1)
                count += 1
        indptr[r + 1] = count
    indices = np.empty(count, np.int64)
    p = 0
    for r in range(words.shape[0]):
        for w in range(words.shape[1]):
            word = words[r, w]
            bit = 0
            while word:
                if word & np.uint64(1):
                    indices[p] = 64 * w + bit
                    p += 1
                word >>= np.uint64(1)
                bit += 1
    return indptr, indices


def output_kind_required(f, spec, who):
    kind = spec.types.return_kind
    if kind is None or kind.shape == "tuple":
        raise FwdadError(f"{f.__name__}.{who} needs a function returning one float scalar or float "
                         f"array, not {spec.types.return_type}.\nWhat to do: return one array (stack "
                         "the outputs), or differentiate each output separately.")


def run(f, spec, dispatcher, args):
    """dispatcher(*args) through ForwardFunction.run: errors at the user's line, warm-up once."""
    return f.run(spec, dispatcher, args)


def jacobian_sparsity(f, *args, local=False, **kwargs):
    """The sparsity pattern of f's Jacobian for arguments like these (a Sparsity).

    By default it holds at every value of the float arguments (active or not) with these
    shapes and these integer arguments: branches on their values contribute both sides. With
    local=True it holds at this point only (the branches taken here)."""
    who = f"{f.__name__}.sparsity"
    args = f.option_arguments(who, args, kwargs, ("local",))
    return detect(f, args, bool(local))


def untouched(f, args):
    """args with copies of the arrays the function writes into (itself or through a helper):
    runs that only look (detection, the output's size, all but one compressed direction) leave
    the caller's arrays as they are, so the Jacobian is taken at the values passed in."""
    written = f.unit.written_parameters()
    return tuple(a.copy() if i in written and isinstance(a, np.ndarray) else a for i, a in enumerate(args))


def input_sets(args, active):
    """(the seeds: input i's own bit per element of each active argument, their (position, size)
    pairs, the number of inputs)."""
    sizes = [int(np.size(args[i])) for i in active]
    total = sum(sizes)
    words = max(1, -(-total // WORD_BITS))
    seeds, offset = [], 0
    for i, size in zip(active, sizes):
        seeds.append(seed_words(np.shape(args[i]), offset, words))
        offset += size
    return seeds, tuple(zip(active, sizes)), total


def detect(f, args, local):
    args = untouched(f, args)
    active = f.active_positions(args)
    spec = f.specialization(args, active, "sparsity_local" if local else "sparsity")
    output_kind_required(f, spec, "sparsity")
    seeds, arguments, total = input_sets(args, active)
    value, sets = run(f, spec, spec.jvp, tuple(args) + tuple(seeds))
    rows = int(np.size(value))
    matrix = words_to_pattern(sets, rows, total)
    return Sparsity(matrix, arguments, local)


def call_key(args):
    """What a global pattern depends on besides float values: types, shapes, and the values of
    the other arguments (ints, bools, integer arrays by content)."""
    key = []
    for value in args:
        if isinstance(value, np.ndarray):
            content = b"" if value.dtype.kind in "fc" else hashlib.blake2b(
                np.ascontiguousarray(value).view(np.uint8), digest_size=16).digest()
            key.append((value.dtype.str, value.shape, content))
        elif isinstance(value, (float, np.floating)):
            key.append(type(value))
        else:
            key.append((type(value), repr(value)))
    return tuple(key)


def cached_pattern(f, args, store=_PATTERNS, find=None):
    """The global pattern for arguments like these, found once (`find`: detect by default)."""
    patterns = store.setdefault(f, {})
    key = call_key(args)
    if key not in patterns:
        patterns[key] = (find or detect)(f, args, False)
    return patterns[key]


# ---- a user's pattern ----------------------------------------------------------------------------
def user_pattern(f, sparsity, args, active, n_rows):
    """A Sparsity from what the user passed: a Sparsity, a scipy.sparse matrix or a dense array
    over all active columns; colored once per distinct pattern."""
    sizes = [int(np.size(args[i])) for i in active]
    expected = (n_rows, sum(sizes))
    if isinstance(sparsity, Sparsity):
        pattern = sparsity
    elif not (scipy_sparse().issparse(sparsity) or np.ndim(sparsity) == 2):
        raise OptionError(f"{f.__name__}.jacobian: sparsity={sparsity!r:.60} is not a pattern.\nWhat to do: "
                          "pass a fwdad.sparse.Sparsity (f.sparsity(...)), a scipy.sparse matrix or a 2-D "
                          f"boolean array of shape {expected} (output elements x active input elements).")
    else:
        pattern = colored(boolean_matrix(sparsity), tuple(zip(active, sizes)))
    if pattern.shape != expected:
        raise SparsityError(f"{f.__name__}.jacobian: the sparsity pattern has shape {pattern.shape}, but "
                            f"the Jacobian has {expected[0]} rows (output elements) and {expected[1]} "
                            f"columns (elements of the active arguments {[f.parameters[i] for i in active]}).\n"
                            f"What to do: pass the pattern of these arguments, e.g. "
                            f"{f.__name__}.sparsity(...) called with them.")
    return pattern


def boolean_matrix(sparsity):
    """A boolean CSR matrix with sorted indices and no explicit zeros, from a scipy.sparse matrix
    or an array."""
    sparse = scipy_sparse()
    matrix = sparse.csr_array(sparsity) if sparse.issparse(sparsity) else sparse.csr_array(
        np.asarray(sparsity) != 0)
    matrix = matrix.astype(bool)
    matrix.eliminate_zeros()
    matrix.sort_indices()
    return matrix


def colored(matrix, arguments, kind=Sparsity):
    """The pattern of `kind` over `matrix`, colored once per distinct matrix (a user's pattern
    passed again and again is colored once)."""
    digest = hashlib.blake2b(matrix.indptr.tobytes() + matrix.indices.tobytes() +
                             f"{matrix.shape} {kind.__name__}".encode(), digest_size=16).digest()
    pattern = _COLORED.get(digest)
    if pattern is None:
        if len(_COLORED) >= _COLORED_LIMIT:
            _COLORED.pop(next(iter(_COLORED)))
        pattern = _COLORED[digest] = kind(matrix, arguments)
    return pattern


# ---- compressed evaluation -------------------------------------------------------------------------
def check_direction(pattern):
    """A fixed random direction v, kept with the pattern: the compressed pass also computes J v,
    which the decompressed J must reproduce."""
    if pattern._check is None:
        pattern._check = np.random.default_rng(0x5ba75e).uniform(0.5, 1.5, pattern.shape[1])
    return pattern._check


def compressed_seeds(pattern, args, active):
    """The seed matrix [S | v] (fresh copies of one kept with the pattern, since a function that
    writes into its argument writes into the tangent too)."""
    key = tuple((np.shape(args[i]), getattr(args[i], "dtype", None)) for i in active)
    kept = pattern._seeds.get(key)
    if kept is None:
        kept = pattern._seeds[key] = seed_matrix(pattern, args, active)
    return [seed.copy() for seed in kept]


def seed_matrix(pattern, args, active):
    """[S | v]: S[j, color(j)] = 1, one direction per color, then the check direction v;
    argument i gets its columns' rows, shaped like it with the directions last."""
    colors, k = pattern.colors, pattern.n_colors
    v = check_direction(pattern)
    seeds, start = [], 0
    for i in active:
        size = int(np.size(args[i]))
        dtype = args[i].dtype if isinstance(args[i], np.ndarray) else np.float64
        seed = np.zeros((size, k + 1), dtype)
        seed[np.arange(size), colors[start:start + size]] = 1
        seed[:, k] = v[start:start + size]
        seeds.append(seed.reshape(np.shape(args[i]) + (k + 1,)) if np.ndim(args[i]) else
                     np.ascontiguousarray(seed[0]))
        start += size
    return seeds


def compressed_jacobian(f, args, active, seeds):
    """(value, B): the Jacobian times the seed matrix, in one vector-mode pass (K scalar passes
    where vector mode steps aside)."""
    spec = f.specialization(args, active, "vector")
    if spec.vectorizable:
        value, tangent = run(f, spec, spec.jvp, tuple(args) + tuple(seeds))
        return value, np.asarray(tangent).reshape(np.size(value), seeds[0].shape[-1])
    spec = f.specialization(args, active)
    columns, last = [], seeds[0].shape[-1] - 1
    for direction in range(last + 1):
        one = [np.ascontiguousarray(s[..., direction]) if np.ndim(s) > 1 else float(s[direction])
               for s in seeds]
        point = args if direction == last else untouched(f, args)     # written once, as one call
        value, tangent = run(f, spec, spec.jvp, tuple(point) + tuple(one))
        columns.append(np.ravel(tangent))
    return value, np.stack(columns, axis=1)


MISSED = ("the sparsity pattern misses a nonzero of the Jacobian: {what}.\nWhat to do: pass the "
          "pattern fwdad finds (f.sparsity(...), the default), or add the missing entries to yours; "
          "fwdad.sparse.check_pattern(f, *args, sparsity=yours) lists them.")


def decompress(pattern, compressed, dtype):
    """J from B = [J S | J v]: entry (i, j) is B[i, color(j)]. A nonzero that the pattern misses
    is refused, never dropped: it shows as a nonzero of B that no entry claims, or else (added
    to an entry of its color) as J v differing from the decompressed J times v."""
    sparse = scipy_sparse()
    matrix = pattern.matrix
    tolerance = 1e3 * np.finfo(dtype).eps
    data, row, kind = decompress_rows(np.ascontiguousarray(compressed), matrix.indptr, matrix.indices,
                                      pattern.colors, check_direction(pattern), tolerance)
    if kind == 1:
        raise SparsityError(MISSED.format(what=f"output element {row} depends on an input of a color "
                                          "that the pattern leaves out of that row"))
    if kind == 2:
        raise SparsityError(MISSED.format(what=f"output element {row} depends on an input that the "
                                          "pattern leaves out of that row (J v differs from the "
                                          "decompressed J times v)"))
    return sparse.csr_array((data.astype(dtype, copy=False), matrix.indices, matrix.indptr),
                            shape=matrix.shape, copy=False)


@numba.njit(cache=CACHE)
def decompress_rows(compressed, indptr, indices, colors, v, tolerance):
    """(the entries of J in the pattern's order, the first bad row or -1, why: 1 an unclaimed
    nonzero, 2 J v that J times v misses by more than rounding)."""
    k = compressed.shape[1] - 1
    data = np.empty(len(indices), compressed.dtype)
    claimed = np.full(max(k, 1), -1, np.int64)
    for r in range(compressed.shape[0]):
        for p in range(indptr[r], indptr[r + 1]):
            data[p] = compressed[r, colors[indices[p]]]
        why = row_check(compressed, r, indptr, indices, colors, data, v, claimed, tolerance)
        if why:
            return data, r, why
    return data, -1, 0


@numba.njit(cache=CACHE)
def row_check(compressed, r, indptr, indices, colors, data, v, claimed, tolerance):
    """Whether row r of the decompressed matrix (`data`) explains row r of B = [M S | M v]: 0 yes
    (or a NaN or inf row, whose entries carry it unchecked), 1 a nonzero of B in a color that no
    entry of the row claims, 2 M v differs from the row times v by more than rounding."""
    k = compressed.shape[1] - 1
    if not np.all(np.isfinite(compressed[r])):
        return 0
    rebuilt, scale = 0.0, abs(compressed[r, k])
    for p in range(indptr[r], indptr[r + 1]):
        claimed[colors[indices[p]]] = r
        rebuilt += data[p] * v[indices[p]]
        scale += abs(data[p] * v[indices[p]])
    for color in range(k):
        if claimed[color] != r and compressed[r, color] != 0:
            return 1
    if abs(rebuilt - compressed[r, k]) > tolerance * scale:
        return 2
    return 0


def sparse_jacobian(f, *args, sparsity=None, **kwargs):
    """The Jacobian of f's output with respect to each active argument, one scipy.sparse
    csr_array (output elements x argument elements, flattened in C order) per argument, None for
    the inactive ones. `sparsity`: a pattern to use instead of the detected one (a Sparsity, a
    scipy.sparse matrix or a boolean array over all active columns)."""
    who = f"{f.__name__}.jacobian"
    args = f.option_arguments(who, args, kwargs, ("sparse", "sparsity"))
    return evaluate(f, args, sparsity)


def evaluate(f, args, sparsity=None):
    active = f.active_positions(args)
    pattern = cached_pattern(f, args) if sparsity is None else None
    if pattern is None:
        rows = int(np.size(f(*untouched(f, args))))
        pattern = user_pattern(f, sparsity, args, active, rows)
    value, compressed = compressed_jacobian(f, args, active, compressed_seeds(pattern, args, active))
    dtype = np.result_type(*[args[i] for i in active])
    whole = decompress(pattern, compressed, dtype)
    out, start = [None] * len(args), 0
    for i in active:
        size = int(np.size(args[i]))
        out[i] = whole if len(active) == 1 else whole[:, start:start + size]
        start += size
    return tuple(out)


def check_pattern(f, *args, sparsity, **kwargs):
    """Raise SparsityError if `sparsity` misses an entry of the pattern fwdad detects for these
    arguments (or a nonzero of the dense Jacobian at this point); return the detected pattern."""
    args = f.option_arguments(f"{f.__name__}.check_pattern", args, kwargs, ("sparsity",))
    detected = detect(f, args, False)
    given = user_pattern(f, sparsity, args, f.active_positions(args), detected.shape[0])
    missing = detected.matrix.astype(np.int8) - detected.matrix.multiply(given.matrix).astype(np.int8)
    missing.eliminate_zeros()
    if missing.nnz:
        row, column = missing.nonzero()
        raise SparsityError(f"the given sparsity pattern misses {missing.nnz} entries of the pattern "
                            f"fwdad finds for {f.__name__}, the first at row {row[0]}, column {column[0]}.\n"
                            "What to do: use the detected pattern (returned by check_pattern), or add "
                            "those entries.")
    return detected



