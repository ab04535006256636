import os
import shutil
import subprocess
import sys
import tempfile
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
