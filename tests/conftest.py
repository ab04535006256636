import os
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
