"""Built-in datasets: Fashion-MNIST against a numpy parse of the same files, malformed IDX files, the corpus."""
import gzip
import os

import numpy as np
import pytest

import loom
from loom.datasets import MNIST, FashionMNIST, read_idx, text_corpus, write_idx
from loom.utils.data import DataLoader

FMNIST = "/usr/share/datasets/fashion-mnist"
needs_fmnist = pytest.mark.skipif(not os.path.isdir(FMNIST), reason="Debian package dataset-fashion-mnist missing")


def numpy_idx(path):
    """Independent reference: gzip + np.frombuffer with the IDX header parsed by hand."""
    raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


@needs_fmnist
def test_fashion_mnist_train_matches_numpy():
    ds = FashionMNIST(train=True)
    assert len(ds) == 60000
    assert tuple(ds.data.shape) == (60000, 28, 28) and ds.data.dtype == loom.uint8
    assert tuple(ds.targets.shape) == (60000,) and ds.targets.dtype == loom.int64
    targets = ds.targets.numpy()
    assert targets.min() == 0 and targets.max() == 9 and len(ds.classes) == 10
    np.testing.assert_array_equal(ds.data.numpy(), numpy_idx(f"{FMNIST}/train-images-idx3-ubyte.gz"))
    np.testing.assert_array_equal(targets, numpy_idx(f"{FMNIST}/train-labels-idx1-ubyte.gz"))
    img, label = ds[123]
    assert tuple(img.shape) == (28, 28) and label == int(targets[123])


@needs_fmnist
def test_fashion_mnist_test_split_and_transform():
    ds = FashionMNIST(train=False, transform=lambda im: im.to(loom.float32) / 255.0)
    assert len(ds) == 10000
    np.testing.assert_array_equal(ds.targets.numpy(), numpy_idx(f"{FMNIST}/t10k-labels-idx1-ubyte.gz"))
    img, label = ds[0]
    assert img.dtype == loom.float32 and 0.0 <= img.min().item() and img.max().item() <= 1.0
    x, y = next(iter(DataLoader(ds, batch_size=16)))
    assert tuple(x.shape) == (16, 28, 28) and tuple(y.shape) == (16,) and y.dtype == loom.int64


def test_mnist_from_user_files(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte", loom.from_numpy(images))       # plain
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", loom.from_numpy(labels), gzip=True)  # gzip'd
    ds = MNIST(tmp_path, train=True)
    np.testing.assert_array_equal(ds.data.numpy(), images)
    assert ds.targets.tolist() == [3, 1, 4, 1, 5]
    assert numpy_idx(str(tmp_path / "train-labels-idx1-ubyte.gz")).tolist() == [3, 1, 4, 1, 5]
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        MNIST(tmp_path, train=False)


def test_missing_fashion_mnist_names_package(tmp_path):
    with pytest.raises(ValueError, match="dataset-fashion-mnist"):
        read_idx(f"{FMNIST}/no-such-file-idx3-ubyte.gz")
    with pytest.raises(FileNotFoundError, match="no 'train-images"):
        FashionMNIST(root=tmp_path)


def header(code, dims):
    return bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


@pytest.mark.parametrize("name, content, match", [
    ("truncated", header(0x08, [4, 3]) + bytes(11), "truncated"),
    ("truncated_header", header(0x08, [4, 3])[:9], "truncated"),
    ("bad_magic", b"\x12\x34\x08\x01" + bytes(8), "bad magic"),
    ("bad_type", header(0x0A, [2]) + bytes(2), "type code"),
    ("wrong_dims", header(0x08, [2, 2]) + bytes(7), "trailing"),
    ("absurd_dims", header(0x0E, [2**32 - 1] * 4), "absurd"),
    ("empty", b"", "truncated"),
])
@pytest.mark.parametrize("compress", [False, True])
def test_malformed_idx_names_file(tmp_path, name, content, match, compress):
    path = tmp_path / (name + (".gz" if compress else ""))
    path.write_bytes(gzip.compress(content) if compress else content)
    with pytest.raises(ValueError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_gzip_stream(tmp_path):
    data = gzip.compress(header(0x08, [100, 100]) + bytes(range(256)) * 40)
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.gz") as info:
        read_idx(path)
    assert "truncated" in str(info.value) or "corrupt" in str(info.value)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
def test_idx_round_trip_dtypes(tmp_path, dtype):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == "uint8":
        arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "x.idx"
    write_idx(path, loom.from_numpy(arr))
    raw = path.read_bytes()
    # Independent check of the big-endian payload.
    np.testing.assert_array_equal(np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder(">"), offset=16).reshape(2, 3, 4),
                                  arr)
    back = read_idx(path)
    np.testing.assert_array_equal(back.numpy(), arr)


@pytest.mark.skipif(not os.path.isdir("/usr/share/games/fortunes"), reason="Debian package fortunes missing")
def test_fortunes_corpus():
    text = text_corpus()
    assert isinstance(text, str) and len(text) > 1_000_000
    assert "\n%\n" not in text
    assert text == text_corpus()  # deterministic
    assert "the" in text


def test_corpus_user_file_and_errors(tmp_path):
    p = tmp_path / "my.txt"
    p.write_text("héllo wörld\n", encoding="utf-8")
    assert text_corpus(p) == "héllo wörld\n"
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        text_corpus(tmp_path / "nope.txt")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"abc\xff")
    with pytest.raises(ValueError, match="not UTF-8"):
        text_corpus(bad)
