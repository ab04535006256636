import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from siamese_core import DataError, load_dataset
from siamese_core.data import (DEBIAN_FASHION, class_split, read_idx, resolve_holdout,
                               stratified_split)


def test_mnist_5k_splits(mnist_test):
    train = load_dataset("mnist-5k", "train")
    val = load_dataset("mnist-5k", "val")
    assert train.images.shape == (3500, 28, 28) and train.images.dtype == np.uint8
    assert val.images.shape == (500, 28, 28) and mnist_test.images.shape == (1000, 28, 28)
    assert np.all(np.bincount(mnist_test.labels) == 100)      # stratified
    assert np.all(np.bincount(val.labels) == 50)
    assert train.class_names == [str(i) for i in range(10)]
    assert train.holdout == val.holdout == mnist_test.holdout == "image"
    # MNIST convention: white ink on a black background.
    assert np.median(train.images[:, 0, :]) == 0 and train.images.max() == 255
    # Disjoint: no image is in two splits (mnist-5k holds no duplicate images).
    seen = [{im.tobytes() for im in ds.images} for ds in (train, val, mnist_test)]
    assert len(seen[0] | seen[1] | seen[2]) == 5000


def test_mnist_5k_test_split_is_the_one_earlier_models_were_measured_on():
    """The test split is the old 20 % "test" split; validation is carved out of the old train
    split, so test images stay unseen by training and selection alike."""
    from siamese_core.data import _mnist_5k
    images, labels = _mnist_5k()
    old_test = stratified_split(labels, "test")        # the 20 % every earlier model kept out
    np.testing.assert_array_equal(load_dataset("mnist-5k", "test").images, images[old_test])


def test_class_holdout_splits_whole_classes():
    labels = np.repeat(np.arange(20), 5)
    parts = {s: class_split(labels, s) for s in ("train", "val", "test")}
    classes = {s: set(labels[i]) for s, i in parts.items()}
    assert len(classes["test"]) == 4 and len(classes["val"]) == 3 and len(classes["train"]) == 13
    assert not (classes["train"] & classes["val"]) and not (classes["train"] & classes["test"])
    assert sum(len(i) for i in parts.values()) == 100
    np.testing.assert_array_equal(class_split(labels, "test"), parts["test"])   # deterministic


def test_holdout_resolution():
    assert resolve_holdout("zip:x.zip", "auto", 6) == "class"
    assert resolve_holdout("zip:x.zip", "auto", 5) == "image"
    assert resolve_holdout("mnist-5k", "auto", 10) == "image"
    assert resolve_holdout("mnist-5k", "class", 10) == "class"
    with pytest.raises(DataError, match="at least 6 classes"):
        resolve_holdout("folder:x", "class", 5)
    with pytest.raises(DataError, match="unknown holdout"):
        resolve_holdout("folder:x", "people", 10)


def test_mnist_5k_class_holdout():
    test = load_dataset("mnist-5k", "test", holdout="class")
    train = load_dataset("mnist-5k", "train", holdout="class")
    assert len(set(test.labels)) == 2 and not set(test.labels) & set(train.labels)


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
    parts = [load_dataset(f"idx:{tmp_path}", s) for s in ("train", "val", "test")]
    # No t10k files: the three splits divide the train files' images between them.
    order = np.argsort(np.concatenate([p.images[:, 0, 0] for p in parts]), kind="stable")
    np.testing.assert_array_equal(np.concatenate([p.images for p in parts])[order],
                                  x[np.argsort(x[:, 0, 0], kind="stable")])
    np.testing.assert_array_equal(np.sort(np.concatenate([p.labels for p in parts])), np.sort(y))
    test = parts[2]
    assert len(test) == 4 and set(test.labels) == {0, 1, 2, 3}
    # With t10k files, test is theirs and train + val are the train files.
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{sfx}", x[:8], gz)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{sfx}", y[:8], gz)
    np.testing.assert_array_equal(load_dataset(f"idx:{tmp_path}", "test").images, x[:8])
    assert len(load_dataset(f"idx:{tmp_path}", "train")) + len(
        load_dataset(f"idx:{tmp_path}", "val")) == 20


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
    parts = [load_dataset(f"folder:{tmp_path}", s) for s in ("train", "val", "test")]
    train = parts[0]
    assert train.class_names == ["alice", "bob"] and train.holdout == "image"  # 2 < 6 classes
    assert train.images.shape[1:] == (28, 28) and sum(len(p) for p in parts) == 10
    assert train.images[0, 0, 0] == 0              # light background inverted to black
    assert any("notes.txt" in n for n in train.notes)


def test_folder_classes_at_any_depth_and_what_is_skipped(tmp_path):
    for cls in ("Greek/alpha", "Greek/beta", "Latin/a"):
        (tmp_path / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(stroke_image(i)).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "Latin" / "b").mkdir()
    Image.fromarray(stroke_image(0)).save(tmp_path / "Latin" / "b" / "only.png")
    (tmp_path / "Greek" / "beta" / "2.png").write_bytes(b"not a png")
    ds = load_dataset(f"folder:{tmp_path}", "train")
    assert ds.class_names == ["Greek/alpha", "Greek/beta", "Latin/a"]
    notes = " | ".join(ds.notes)
    assert "Greek/beta/2.png" in notes and "skipped" in notes
    assert "Latin/b" in notes and "left out" in notes


def stroke_image(i: int) -> np.ndarray:
    arr = np.full((40, 40), 255, np.uint8)
    arr[8:32, 10 + i:16 + i] = 0
    return arr


@pytest.mark.parametrize("setup, message", [
    ({"only/a.png": "ink"}, "need at least 2"),
    ({"a/1.png": "ink", "a/2.png": "ink", "b/1.png": "bad"}, "need at least 2"),
    ({"a/1.png": "blank", "a/2.png": "blank", "b/1.png": "ink", "b/2.png": "ink"},
     "need at least 2"),
    ({"readme.txt": "text"}, "no PNG/JPEG images"),
    ({"top.png": "ink"}, "no PNG/JPEG images"),
])
def test_folder_errors_are_one_line_naming_the_cause(tmp_path, setup, message):
    for rel, kind in setup.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if kind == "ink":
            Image.fromarray(stroke_image(0)).save(p)
        elif kind == "blank":
            Image.new("L", (20, 20), 255).save(p)
        else:
            p.write_bytes(b"not an image")
    with pytest.raises(DataError, match=message) as e:
        load_dataset(f"folder:{tmp_path}")
    assert "\n" not in str(e.value) and str(tmp_path) in str(e.value)


def test_training_loader_and_compare_give_identical_network_inputs(tmp_path):
    """One image file, two paths: the folder loader (training) and SiameseModel.prepare (the
    app, the CLI's compare) under the model's recorded preprocessing."""
    from siamese_core.preprocess import Prep, prepare
    from siamese_core.verdict import SiameseModel

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            arr = np.full((50, 90), 250, np.uint8)
            arr[10:40, 5:85] = rng.integers(0, 120, (30, 80))
            Image.fromarray(arr).save(tmp_path / cls / f"{i}.jpg", quality=90)
    for prep in (Prep(28), Prep(40, "box")):
        parts = [load_dataset(f"folder:{tmp_path}", s, "image", prep) for s in
                 ("train", "val", "test")]
        loaded = np.concatenate([p.images for p in parts])
        model = SiameseModel.__new__(SiameseModel)
        model.meta = {"model": {"input_size": prep.size}, "preprocess": prep.to_dict()}
        direct = [model.prepare(tmp_path / c / f"{i}.jpg") for c in "ab" for i in range(2)]
        assert loaded.shape == (4, prep.size, prep.size)
        assert sorted(x.tobytes() for x in loaded) == sorted(x.tobytes() for x in direct)
        np.testing.assert_array_equal(direct[0], prepare(tmp_path / "a" / "0.jpg", prep))


def test_unknown_spec_and_split():
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("cifar")
    with pytest.raises(DataError, match="unknown split"):
        load_dataset("mnist-5k", "dev")


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


def test_dataset_kind_looks_at_the_images(photo_zip, ink_zip, tmp_path):
    """Issue 21: an uploaded dataset's kind is chosen from a sample of its images, with the
    reason; the recipe follows it, and the loaded images are prepared as that kind."""
    from siamese_core.config import recipe
    from siamese_core.data import dataset_kind
    kind, why = dataset_kind(f"zip:{photo_zip}")
    assert kind == "photo" and "photograph" in why
    assert dataset_kind(f"zip:{ink_zip}")[0] == "ink"
    assert dataset_kind("mnist-5k")[0] == "ink"
    cfg = recipe(f"zip:{photo_zip}")
    assert (cfg.kind, cfg.prep.fit, cfg.flip, cfg.rotated_classes) == ("photo", "crop", True, False)
    ds = load_dataset(f"zip:{photo_zip}", "train", prep=cfg.prep)
    assert ds.images.shape[1:] == (48, 48) and (ds.images == 0).mean() < 0.05   # no ink cut
    with pytest.raises(DataError, match="no such file"):
        dataset_kind(f"zip:{tmp_path / 'gone.zip'}")


def test_faces_in_scenes_get_the_face_crop_and_face_crops_do_not(face_zip, photo_zip, tmp_path):
    """Issue 21, 4: the recipe for photos crops to the face when the sampled photos show faces
    as a small part of a scene (a camera's), not for a face database's framing, nor for photos
    without faces; an option given wins."""
    from siamese_core.config import recipe
    from siamese_core.data import dataset_faces
    from tests.conftest import cartoon_face, write_zip
    rooms = dataset_faces(f"zip:{face_zip}")
    assert rooms.sampled == 33 and rooms.with_face == 32 and rooms.face_share < 0.15
    assert rooms.scenes and recipe(f"zip:{face_zip}").face_crop is True
    assert recipe(f"zip:{face_zip}", face_crop=False).face_crop is False
    tight = write_zip(tmp_path / "crops.zip", {f"p{p}": [cartoon_face(p, 40)[12:68, 16:64]] * 3
                                               for p in range(4)})
    crops = dataset_faces(f"zip:{tight}")
    assert crops.with_face == crops.sampled == 12 and crops.face_share > 0.5 and not crops.scenes
    assert recipe(f"zip:{tight}").face_crop is False
    blobs = dataset_faces(f"zip:{photo_zip}")
    assert blobs.with_face == 0 and not blobs.scenes and recipe(f"zip:{photo_zip}").face_crop is False
    assert dataset_faces("mnist-5k").sampled == 0


def test_wide_ink_gets_a_wide_frame_and_characters_do_not(signature_zip, ink_zip, photo_zip,
                                                           tmp_path):
    """Issue 21, 2: the ink recipe's inputs are 56 x 112 when the sampled ink boxes are at least
    ``WIDE_INK_ASPECT`` times as wide as high (signatures), square otherwise (characters, a
    signature turned upright); photos are never widened; an option given wins."""
    from siamese_core.config import recipe
    from siamese_core.data import WIDE_INK_ASPECT, dataset_ink_aspect
    from tests.conftest import signature_images, write_zip
    wide = dataset_ink_aspect(f"zip:{signature_zip}")
    assert wide is not None and 2.5 < wide < 4         # drawn 96 px wide, ~30 px high
    assert recipe(f"zip:{signature_zip}").input_aspect == 2.0
    assert recipe(f"zip:{signature_zip}").prep.shape == (56, 112)
    # A shape given is the user's: square means the square recipe, a size keeps the frame wide.
    assert recipe(f"zip:{signature_zip}", input_aspect=1.0).prep.shape == (40, 40)
    assert recipe(f"zip:{signature_zip}", input_size=40).prep.shape == (40, 80)
    assert dataset_ink_aspect(f"zip:{ink_zip}") < WIDE_INK_ASPECT
    assert recipe(f"zip:{ink_zip}").input_aspect == 1.0
    assert recipe(f"zip:{photo_zip}").input_aspect == 1.0
    upright = write_zip(tmp_path / "upright.zip", {k: [np.ascontiguousarray(i.T) for i in v]
                                                   for k, v in signature_images().items()})
    assert dataset_ink_aspect(f"zip:{upright}") < 1 / 2.5
    assert recipe(f"zip:{upright}").input_aspect == 1.0
    assert dataset_ink_aspect("mnist-5k") is None


def test_ink_with_skilled_forgeries_trains_on_binary_ink(signature_zip, ink_zip, photo_zip,
                                                          tmp_path):
    """Issue 21, 6 (the ink shortcut): a dataset with forged folders gets binary ink inputs with
    thin strokes (no pen darkness or width to tell forgeries by), counted from the folder names
    alone; characters and photos keep their grey levels and strokes; an option given wins."""
    from siamese_core.config import recipe
    from siamese_core.data import dataset_forged_folders
    from tests.conftest import signature_images, write_zip
    assert dataset_forged_folders(f"zip:{signature_zip}") == 8
    assert recipe(f"zip:{signature_zip}").binary_ink and recipe(f"zip:{signature_zip}").prep.binary
    assert not recipe(f"zip:{signature_zip}", binary_ink=False).prep.binary
    assert recipe(f"zip:{signature_zip}").prep.thin
    # ... and the pixels beside the network (measured on signatures with forgeries only).
    assert recipe(f"zip:{signature_zip}").pixels and not recipe(f"zip:{signature_zip}",
                                                                pixels=False).pixels
    assert not recipe(f"zip:{signature_zip}", thin_ink=False).prep.thin
    for other in (ink_zip, photo_zip):
        assert dataset_forged_folders(f"zip:{other}") == 0 and not recipe(f"zip:{other}").binary_ink
    genuine = write_zip(tmp_path / "genuine.zip", {k: v for k, v in signature_images().items()
                                                   if not k.endswith(("forged", "_forg"))})
    assert not recipe(f"zip:{genuine}").binary_ink       # signatures without forgeries: grey
    assert not recipe(f"zip:{genuine}").pixels and not recipe(f"zip:{ink_zip}").pixels
    assert not recipe(f"zip:{genuine}").thin_ink and not recipe(f"zip:{ink_zip}").prep.thin
    assert dataset_forged_folders("mnist-5k") == 0 and not recipe("mnist-5k").binary_ink
    with pytest.raises(DataError, match="binary inputs are for ink"):
        recipe(f"zip:{photo_zip}", binary_ink=True).prep
    with pytest.raises(DataError, match="thin strokes are for ink"):
        recipe(f"zip:{photo_zip}", thin_ink=True).prep


def _glyphs(n: int, side: int = 64) -> list[np.ndarray]:
    rng = np.random.default_rng(n)
    out = []
    for i in range(n):
        a = np.zeros((side, side), np.uint8)
        x, y = rng.integers(5, side // 2, 2)
        a[y:y + side // 3, x:x + 4] = 255
        out.append(a)
    return out


def test_the_pixels_one_dataset_decodes_are_bounded(tmp_path, monkeypatch):
    """Issue 24, 9: decoding time follows pixels, not bytes: 16,000 copies of one flat 4096 x
    4096 PNG (8 MB zipped) kept a core busy for an hour. The images' declared sizes are added
    up from their headers and the load stops, in one line, once they pass the bound."""
    from siamese_core import data
    from tests.conftest import write_zip
    assert data.MAX_DATASET_PIXELS == 4_000_000_000
    spec = f"zip:{write_zip(tmp_path / 'd.zip', {c: _glyphs(5) for c in 'abcd'})}"
    decoded = []
    real = data.prepare
    monkeypatch.setattr(data, "prepare", lambda *a: decoded.append(1) or real(*a))
    monkeypatch.setattr(data, "MAX_DATASET_PIXELS", 10 * 64 * 64)
    with pytest.raises(DataError, match=r"d\.zip: its images hold more than 4\.096e-05 billion "
                                        r"pixels; .*shrink the images to 1024 px"):
        load_dataset(spec, "train")
    assert len(decoded) == 10                     # the 11th image's header stopped it
    monkeypatch.setattr(data, "MAX_DATASET_PIXELS", 20 * 64 * 64)
    assert len(load_dataset(spec, "train", "image").class_names) == 4


def test_other_formats_under_png_names_are_read_and_said(tmp_path):
    """Issue 24, 20: GIF, WebP and TIFF files named .png were read without a word."""
    import io
    import zipfile
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as z:
        for c in "ab":
            for i, im in enumerate(_glyphs(4)):
                buf = io.BytesIO()
                fmt = {0: "GIF", 1: "WEBP", 2: "TIFF"}.get(i, "PNG") if c == "a" else "PNG"
                Image.fromarray(im).save(buf, fmt)
                z.writestr(f"{c}/{i}.png", buf.getvalue())
    ds = load_dataset(f"zip:{tmp_path / 'd.zip'}", "train", "image")
    assert len(ds.class_names) == 2
    (note,) = [n for n in ds.notes if "another format" in n]
    assert note.startswith("3 image(s) in another format than their name says, read as what "
                           "they are: a/0.png (GIF); a/1.png (WEBP); a/2.png (TIFF)"), note


def test_a_name_listed_twice_in_a_zip_counts_once_and_is_said(tmp_path):
    """Issue 24, 20: an archive listing one member name twice counted it as two images."""
    import io
    import warnings
    import zipfile

    from siamese_core.data import summarize
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)     # zipfile: "Duplicate name"
        with zipfile.ZipFile(tmp_path / "d.zip", "w") as z:
            for c in "ab":
                for i, im in enumerate(_glyphs(4)):
                    buf = io.BytesIO()
                    Image.fromarray(im).save(buf, "PNG")
                    z.writestr(f"{c}/{i}.png", buf.getvalue())
                    if c == "a" and i == 0:
                        z.writestr(f"{c}/{i}.png", buf.getvalue())
    s = summarize(f"zip:{tmp_path / 'd.zip'}", "image")
    assert s.counts == [4, 4]
    assert any(n.startswith("1 repeated entries (a name listed twice; the first is used) "
                            "ignored: a/0.png") for n in s.notes), s.notes


def test_a_dataset_training_would_refuse_says_so_when_summarised(tmp_path):
    """Issue 24, 20: three classes of two images each left the validation split empty; the
    upload was accepted without a word and only training refused it. The hint's image count is
    the real one: 14 images a class leave one in validation, 15 leave two."""
    from siamese_core.data import MIN_IMAGES_IMAGE_HOLDOUT, summarize
    from tests.conftest import write_zip
    s = summarize(f"zip:{write_zip(tmp_path / 'd.zip', {c: _glyphs(2) for c in 'abc'})}")
    assert s.splits["val"] == (0, 0)
    assert s.refused == ("the validation split is empty: hold-out by image gives validation and "
                         "test a share of each class's images, so give every class at least 15 "
                         "images, or hold out whole classes")
    n = MIN_IMAGES_IMAGE_HOLDOUT
    short = summarize(f"zip:{write_zip(tmp_path / 'e.zip', {c: _glyphs(n - 1) for c in 'abc'})}")
    assert short.refused.startswith("class 'a' has a single image in the validation split")
    assert f"at least {n} images" in short.refused
    assert summarize(f"zip:{write_zip(tmp_path / 'f.zip', {c: _glyphs(n) for c in 'abc'})}") \
        .refused is None


def test_forgeries_belong_to_their_writer_as_negatives_never_a_class(signature_zip):
    """Issue 21, 3: ``<w>/genuine`` + ``<w>/forged`` made two classes per writer, as if the
    forgeries were a person. They are the writer's negatives, split with the writer."""
    from siamese_core.data import summarize
    spec = f"zip:{signature_zip}"
    parts = {s: load_dataset(spec, s) for s in ("train", "val", "test")}
    assert parts["train"].class_names == [f"w{w:02d}" for w in range(8)]
    assert sum(p.n_forgeries for p in parts.values()) == 32
    for p in parts.values():           # whole writers held out, their forgeries with them
        assert p.holdout == "class" and set(p.forgery_of) == set(p.labels)
        assert p.forgeries.shape[1:] == p.images.shape[1:]
        assert len(p) == 6 * len(set(p.labels)) and p.n_forgeries == 4 * len(set(p.labels))
    sub = parts["train"].subset(np.flatnonzero(parts["train"].labels == parts["train"].labels[0]))
    assert sub.n_forgeries == 4 and set(sub.forgery_of) == {parts["train"].labels[0]}
    s = summarize(spec)
    assert s.counts == [6] * 8 and s.forged == [4] * 8
    assert any(n.startswith("32 skilled forgeries of 8 people") for n in s.notes), s.notes
    by_image = load_dataset(spec, "test", "image")
    assert by_image.n_forgeries and set(by_image.forgery_of) <= set(by_image.labels)


def test_few_held_out_classes_are_said_with_the_interval():
    """Issue 21, 6: whole classes held out, fewer than FEW_HELD_OUT in validation or test: the
    note says how many, quotes the test interval, and suggests the alternatives; with enough
    classes, or images held out, nothing is said."""
    from siamese_core.data import FEW_HELD_OUT, few_held_out_note
    test = {"pair_accuracy": 0.84, "pair_accuracy_low": 0.70, "pair_accuracy_high": 0.93}
    note = few_held_out_note("class", 2, 3, test)
    assert note.startswith("Few classes held out: validation has 2 and test 3")
    assert "95 % interval 70.0% to 93.0% over the test classes and their images)" in note
    assert "add classes, or hold out images of every class" in note
    assert "only the images vary" in few_held_out_note("class", 2, 2, test)
    assert few_held_out_note("class", 2, None).startswith("Few classes held out: validation has 2,")
    assert few_held_out_note("class", FEW_HELD_OUT, FEW_HELD_OUT, test) is None
    assert few_held_out_note("image", 2, 2, test) is None
