import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from siamese_core import DataError, load_dataset
from siamese_core.data import DEBIAN_FASHION, read_idx, stratified_split


def test_mnist_5k_splits(mnist_test):
    train = load_dataset("mnist-5k", "train")
    assert train.images.shape == (4000, 28, 28) and train.images.dtype == np.uint8
    assert mnist_test.images.shape == (1000, 28, 28)
    assert np.all(np.bincount(mnist_test.labels) == 100)      # stratified
    assert train.class_names == [str(i) for i in range(10)]
    # MNIST convention: white ink on a black background.
    assert np.median(train.images[:, 0, :]) == 0 and train.images.max() == 255
    # Disjoint: no validation image appears in the training split.
    tr = {im.tobytes() for im in train.images}
    assert sum(im.tobytes() in tr for im in mnist_test.images) == 0


def test_stratified_split_is_deterministic():
    labels = np.repeat(np.arange(3), 10)
    a, b = stratified_split(labels, "test"), stratified_split(labels, "test")
    np.testing.assert_array_equal(a, b)
    assert len(a) == 6 and set(np.bincount(labels[a])) == {2}
    assert len(np.intersect1d(a, stratified_split(labels, "train"))) == 0


def write_idx(path, array, gz):
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_roundtrip(tmp_path, gz):
    x = np.random.default_rng(0).integers(0, 255, (20, 28, 28)).astype(np.uint8)
    y = np.arange(20) % 4
    sfx = ".gz" if gz else ""
    write_idx(tmp_path / f"train-images-idx3-ubyte{sfx}", x, gz)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{sfx}", y, gz)
    ds = load_dataset(f"idx:{tmp_path}", "train")
    np.testing.assert_array_equal(ds.images, x)
    np.testing.assert_array_equal(ds.labels, y)
    # No t10k files: the test split is derived deterministically from train.
    test = load_dataset(f"idx:{tmp_path}", "test")
    assert len(test) == 4 and set(test.labels) == {0, 1, 2, 3}


def test_idx_corruption_is_clear(tmp_path):
    x = np.zeros((5, 28, 28), np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte", x, False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5), False)
    p = tmp_path / "train-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated"):
        load_dataset(f"idx:{tmp_path}")
    p.write_bytes(b"\x00\x00\x0d\x03" + b"\x00" * 12)
    with pytest.raises(DataError, match="magic"):
        read_idx(p, 3)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="labels file is missing"):
        load_dataset(f"idx:{tmp_path}")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no IDX files"):
        load_dataset(f"idx:{empty}")


def test_folder_dataset(tmp_path):
    for cls, value in (("alice", 40), ("bob", 200)):
        (tmp_path / cls).mkdir()
        for i in range(5):
            arr = np.full((40, 30), 255, np.uint8)
            arr[5:35, 5 + i:10 + i] = value
            Image.fromarray(arr).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "bob" / "notes.txt").write_text("ignored")
    train = load_dataset(f"folder:{tmp_path}", "train")
    test = load_dataset(f"folder:{tmp_path}", "test")
    assert train.class_names == ["alice", "bob"]
    assert train.images.shape[1:] == (28, 28) and len(train) + len(test) == 10
    assert train.images[0, 0, 0] == 0              # light background inverted to black


def test_folder_errors(tmp_path):
    (tmp_path / "only").mkdir()
    Image.new("L", (10, 10)).save(tmp_path / "only" / "a.png")
    with pytest.raises(DataError, match="need at least 2"):
        load_dataset(f"folder:{tmp_path}")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="bad.png"):
        load_dataset(f"folder:{tmp_path}")


def test_unknown_spec_and_split():
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("cifar")
    with pytest.raises(DataError, match="unknown split"):
        load_dataset("mnist-5k", "val")


def test_mnist_offline_is_one_clear_line_and_not_retried_on_every_rerun(monkeypatch, tmp_path):
    """Offline, each download try costs seconds (a subprocess importing Keras): a page rerun
    must not start another. The message names the offline choices in words fit for a page."""
    import subprocess

    import siamese_core.data as data
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(data, "_failed_downloads", {})
    data._keras_npz.cache_clear()
    calls = []

    def offline(cmd, **kw):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "Traceback ...\nException: URL fetch failure")
    monkeypatch.setattr(data.subprocess, "run", offline)
    for _ in range(3):
        with pytest.raises(DataError) as e:
            load_dataset("mnist")
    msg = str(e.value)
    assert len(calls) == 1 and "\n" not in msg
    assert "URL fetch failure" in msg and "mnist-5k" in msg and "idx:DIR" in msg
    assert "--dataset" not in msg
    clock = data.time.monotonic() + data.DOWNLOAD_RETRY_S + 1   # later, it is tried again
    monkeypatch.setattr(data.time, "monotonic", lambda: clock)
    with pytest.raises(DataError):
        load_dataset("mnist")
    assert len(calls) == 2
    data._keras_npz.cache_clear()


def test_mnist_reads_keras_cache_without_tensorflow(monkeypatch, tmp_path):
    import siamese_core.data as data
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "datasets").mkdir()
    x = np.zeros((6, 28, 28), np.uint8)
    np.savez(tmp_path / "datasets" / "mnist.npz", x_train=x, y_train=np.arange(6),
             x_test=x[:2], y_test=np.arange(2))
    data._keras_npz.cache_clear()
    assert len(load_dataset("mnist", "train")) == 6 and len(load_dataset("mnist", "test")) == 2
    data._keras_npz.cache_clear()


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian():
    ds = load_dataset("fashion-mnist", "test")
    assert ds.images.shape == (10000, 28, 28) and ds.class_names[9] == "Ankle boot"
