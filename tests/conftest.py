import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent     # importable: pytest's pythonpath = ["."]
# Trained models of the tests (the Train page, the e2e server) go to a private folder of the
# run, not to the user's ~/.cache/siamese-studio/runs.
os.environ["SIAMESE_RUNS_DIR"] = os.path.join(tempfile.mkdtemp(prefix="siamese-tests-"), "runs")


@pytest.fixture(scope="session")
def mnist_test():
    from siamese_core import load_dataset
    return load_dataset("mnist-5k", "test")


@pytest.fixture(scope="session")
def digit_pngs(mnist_test, tmp_path_factory):
    """Two 3s and a 7 from the validation split, saved as PNG (black ink on white, 4x size,
    like a scan) to exercise the whole preprocessing path."""
    from PIL import Image
    d = tmp_path_factory.mktemp("digits")
    threes = np.flatnonzero(mnist_test.labels == 3)
    seven = np.flatnonzero(mnist_test.labels == 7)[0]
    out = {}
    for name, i in (("three_a", threes[0]), ("three_b", threes[1]), ("seven", seven)):
        img = Image.fromarray(255 - mnist_test.images[i]).resize((112, 112), Image.BICUBIC)
        out[name] = d / f"{name}.png"
        img.save(out[name])
    return out


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built without downloads (issue 16, packaging)."""
    # Built from a copy: an in-tree build would leave build/ and *.egg-info in the checkout.
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("siamese_core", "siamese_studio", "weights"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                        "--no-build-isolation", "-w", str(dist)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return next(dist.glob("*.whl"))


@pytest.fixture(scope="session")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed; its dependencies are borrowed from this
    interpreter (``--system-site-packages``), so nothing is downloaded."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-index"]
    r = subprocess.run([*pip, str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return venv


def photo_images(n_classes: int = 8, per_class: int = 6, seed: int = 0) -> dict[str, list]:
    """Synthetic "face photos": per class a smooth random grey scene (its identity), per image
    a lighting gradient, a small shift and sensor noise: grey levels everywhere, as in a
    photograph. {class name: [uint8 H x W arrays]}."""
    import cv2
    rng = np.random.default_rng(seed)
    out = {}
    for c in range(n_classes):
        scene = cv2.GaussianBlur(rng.uniform(0, 255, (90, 76)).astype(np.float32), (0, 0), 6)
        scene = (scene - scene.min()) / (np.ptp(scene) + 1e-6) * 200 + 30
        imgs = []
        for _ in range(per_class):
            dy, dx = rng.integers(-3, 4, 2)
            img = np.roll(scene, (dy, dx), (0, 1))
            light = np.linspace(rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0), 76)[None, :]
            img = img * light + rng.normal(0, 4, img.shape)
            imgs.append(np.clip(img, 0, 255).astype(np.uint8))
        out[f"person{c:02d}"] = imgs
    return out


def cartoon_face(person: int, side: int = 100) -> np.ndarray:
    """A drawn frontal face, ``2 side`` px square, that OpenCV's Haar face detector finds: skin
    oval, brows, eyes, nose and mouth, softened; ``person`` sets their proportions (an
    identity)."""
    import cv2
    r = np.random.default_rng(person)
    eye, mouth, wide = r.uniform(0.14, 0.2), r.uniform(0.1, 0.18), r.uniform(0.38, 0.46)
    s, img = side, np.full((side * 2, side * 2), 60, np.uint8)
    cv2.ellipse(img, (s, s), (int(s * wide), int(s * 0.55)), 0, 0, 360, 200, -1)
    for ex in (-1, 1):
        cv2.ellipse(img, (s + ex * int(s * eye), s - int(s * 0.12)),
                    (int(s * 0.09), int(s * 0.045)), 0, 0, 360, 40, -1)
        cv2.line(img, (s + ex * int(s * 0.08), s - int(s * 0.24)),
                 (s + ex * int(s * 0.28), s - int(s * 0.25)), 50, max(2, s // 25))
    cv2.line(img, (s, s - int(s * 0.05)), (s, s + int(s * 0.13)), 150, max(2, s // 30))
    cv2.ellipse(img, (s, s + int(s * 0.28)), (int(s * mouth), int(s * 0.04)), 0, 0, 360, 70, -1)
    return cv2.GaussianBlur(img, (0, 0), s / 40)


def face_photos(n_people: int = 6, per_person: int = 4, seed: int = 0,
                shape: tuple[int, int] = (150, 200)) -> dict[str, list]:
    """Photos of ``cartoon_face`` people in a larger scene (a camera's view, not a face crop):
    per photo its own textured background, position, size and brightness. {name: [uint8]}."""
    import cv2
    rng = np.random.default_rng(seed)
    h, w = shape
    out = {}
    for p in range(n_people):
        imgs = []
        for _ in range(per_person):
            scene = cv2.GaussianBlur(rng.uniform(0, 255, shape).astype(np.float32), (0, 0), 8)
            scene = (scene - scene.min()) / (np.ptp(scene) + 1e-6) * 120 + 40
            side = int(rng.integers(30, 40))
            face = cartoon_face(p, side).astype(np.float32) * rng.uniform(0.85, 1.1)
            y, x = int(rng.integers(0, h - 2 * side)), int(rng.integers(0, w - 2 * side))
            scene[y:y + 2 * side, x:x + 2 * side] = face
            scene += rng.normal(0, 3, shape)
            imgs.append(np.clip(scene, 0, 255).astype(np.uint8))
        out[f"person{p:02d}"] = imgs
    return out


def signature_images(n_writers: int = 8, genuine: int = 6, forged: int = 4, seed: int = 0
                     ) -> dict[str, list]:
    """Synthetic signatures, laid out as public signature sets are: per writer a random stroke
    path (its signature), each genuine image that path with a little jitter, each forgery the
    same path traced with larger wobbles and a shifted ending (the forger's imitation); dark ink
    on white, wider than high. ``<w>/genuine`` and ``<w>/forged`` for all writers but the last,
    whose forgeries sit in ``<w>_forg`` beside ``<w>`` (the other common layout)."""
    import cv2
    rng = np.random.default_rng(seed)
    out: dict[str, list] = {}
    for w in range(n_writers):
        path = np.cumsum(rng.normal(0, 9, (12, 2)), 0) + [20, 30]
        path[:, 0] = np.linspace(12, 108, 12)

        def draw(wobble: float, tail: float) -> np.ndarray:
            img = np.full((60, 120), 250, np.uint8)
            pts = path + rng.normal(0, wobble, path.shape)
            pts[-3:] += tail
            cv2.polylines(img, [np.clip(pts, 2, [117, 57]).astype(np.int32)], False, 20, 2)
            return img
        name = f"w{w:02d}"
        genuine_imgs = [draw(1.0, 0.0) for _ in range(genuine)]
        forged_imgs = [draw(3.0, rng.uniform(-8, 8)) for _ in range(forged)]
        if w == n_writers - 1:
            out[name], out[f"{name}_forg"] = genuine_imgs, forged_imgs
        else:
            out[f"{name}/genuine"], out[f"{name}/forged"] = genuine_imgs, forged_imgs
    return out


@pytest.fixture(scope="session")
def signature_zip(tmp_path_factory) -> Path:
    """8 writers x (6 genuine + 4 skilled forgeries) (``signature_images``)."""
    return write_zip(tmp_path_factory.mktemp("signatures") / "signatures.zip",
                     signature_images())


def write_zip(path: Path, classes: dict[str, list]) -> Path:
    """{class: [uint8 arrays]} as ``<class>/<i>.png`` members of a zip."""
    import io
    import zipfile

    from PIL import Image
    with zipfile.ZipFile(path, "w") as z:
        for name, imgs in classes.items():
            for i, img in enumerate(imgs):
                buf = io.BytesIO()
                Image.fromarray(img).save(buf, "PNG")
                z.writestr(f"{name}/{i}.png", buf.getvalue())
    return path


@pytest.fixture(scope="session")
def photo_zip(tmp_path_factory) -> Path:
    """8 people x 6 synthetic photos (``photo_images``)."""
    return write_zip(tmp_path_factory.mktemp("photos") / "faces.zip", photo_images())


@pytest.fixture(scope="session")
def face_zip(tmp_path_factory) -> Path:
    """8 people x 4 photos of a face in a room (``face_photos``), and in person00's folder one
    photo of a bare wall: no face to find."""
    people = face_photos(8)
    people["person00"].append(np.random.default_rng(5).uniform(0, 255, (150, 200)).astype(
        np.uint8))
    return write_zip(tmp_path_factory.mktemp("faces") / "room_faces.zip", people)


@dataclass
class TrainedModel:
    prefix: Path
    begin: object           # the run's TrainBegin event (its notes: what loading left out)


@pytest.fixture(scope="session")
def face_model(face_zip, tmp_path_factory) -> TrainedModel:
    """A photo model with the face crop, trained once for one epoch on ``face_zip``."""
    from siamese_core.config import recipe
    from siamese_core.train import Callback, train

    class Begin(Callback):
        def on_train_begin(self, event):
            self.event = event
    out, rec = tmp_path_factory.mktemp("face_model") / "faces", Begin()
    train(recipe(f"zip:{face_zip}", kind="photo", face_crop=True, epochs=1, seconds=None,
                 batch_size=16, val_pairs=50, input_size=32), [rec], out=out)
    return TrainedModel(out, rec.event)


@pytest.fixture(scope="session")
def ink_zip(mnist_test, tmp_path_factory) -> Path:
    """6 digit classes x 5 MNIST digits, black ink on white like a scan."""
    classes = {str(d): [255 - mnist_test.images[i]
                        for i in np.flatnonzero(mnist_test.labels == d)[:5]] for d in range(6)}
    return write_zip(tmp_path_factory.mktemp("ink") / "digits.zip", classes)
