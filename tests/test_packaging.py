"""The library as a package: a wheel with the shipped model inside, installed in a fresh
environment outside the checkout, runs its console script (issue 16, packaging)."""
import json
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    # Built from a copy: an in-tree build would leave build/ and *.egg-info in the checkout.
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("siamese_core", "weights"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                        "--no-build-isolation", "-w", str(dist)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return next(dist.glob("*.whl"))


def test_wheel_holds_the_library_and_its_model_only(wheel):
    import siamese_core
    names = zipfile.ZipFile(wheel).namelist()
    assert wheel.name.startswith(f"siamese_pairs_studio-{siamese_core.__version__}-")
    for f in ("default.json", "default.onnx", "default.weights.h5"):
        assert f"siamese_core/default_model/{f}" in names
    assert "siamese_core/cli.py" in names
    assert not [n for n in names if n.split("/")[0] in ("tests", "pages", "bench", "ui")]
    meta = next(n for n in names if n.endswith("entry_points.txt"))
    assert "siamese = siamese_core.cli:main" in zipfile.ZipFile(wheel).read(meta).decode()


def test_installed_wheel_compares_with_its_packaged_model(wheel, tmp_path, digit_pngs):
    """A fresh venv (its dependencies borrowed from this interpreter, so no download), the wheel
    installed, the console script run from a folder outside the checkout."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-index"]
    r = subprocess.run([*pip, str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import siamese_core, siamese_core.weights as w; "
                            "print(siamese_core.__file__); print(w.default_prefix())"],
                           cwd=work, capture_output=True, text=True, timeout=120)
    module, prefix = where.stdout.split()
    assert module.startswith(str(venv)) and prefix.startswith(str(venv))
    assert prefix.endswith("siamese_core/default_model/default")
    r = subprocess.run([str(venv / "bin" / "siamese"), "compare", str(digit_pngs["three_a"]),
                        str(digit_pngs["three_b"]), "--json"], cwd=work, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["same"] is True
