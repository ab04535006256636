import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from siamese_core import ImageError, SiameseModel, WeightsError
from siamese_core import weights as W
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def model():
    return SiameseModel.load()


def test_shipped_model_loads(model):
    assert 0 < model.threshold < 2
    assert model.meta["dataset"] == "mnist-5k"
    assert model.meta["metrics"]["pair_accuracy"] >= 0.985


def test_embed_shapes_and_unit_norm(model, mnist_test):
    e = model.embed(mnist_test.images[:10])
    assert e.shape == (10, 64) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-4)
    np.testing.assert_allclose(model.embed(mnist_test.images[0]), e[:1], atol=1e-6)


def test_compare_real_digits(model, digit_pngs):
    same = model.compare(digit_pngs["three_a"], digit_pngs["three_b"])
    diff = model.compare(digit_pngs["three_a"], digit_pngs["seven"])
    assert same.same and not diff.same
    assert same.distance < model.threshold < diff.distance
    assert 0.5 <= same.confidence <= 1 and 0.5 <= diff.confidence <= 1
    assert set(same.to_dict()) == {"distance", "same", "confidence", "threshold"}


def test_compare_is_symmetric_and_self_distance_zero(model, mnist_test):
    a, b = mnist_test.images[0], mnist_test.images[5]
    assert model.compare(a, b).distance == pytest.approx(model.compare(b, a).distance, abs=1e-5)
    v = model.compare(a, a)
    assert v.distance < 1e-3 and v.same


def test_validation_pairs_accuracy(model, mnist_test):
    from siamese_core.verdict import evaluate
    r = evaluate(model, mnist_test, n_pairs=4000, seed=5, episodes=1000)
    assert r["pair_accuracy"] >= 0.98 and r["one_shot_10way"] >= 0.9
    assert r["all_pairs_accuracy"] >= 0.98 and r["all_pairs_images"] == len(mnist_test)


def test_all_pairs_accuracy_on_a_stratified_subset_past_the_cap(model, mnist_test, monkeypatch):
    from siamese_core import calibrate, verdict
    monkeypatch.setattr(calibrate, "ALL_PAIRS_MAX", 200)
    r = verdict.evaluate(model, mnist_test, n_pairs=1000, seed=5, episodes=100)
    assert r["all_pairs_images"] == 200 and 0.95 <= r["all_pairs_accuracy"] <= 1.0


def test_blank_canvas_is_an_image_error(model, mnist_test):
    with pytest.raises(ImageError, match="nothing drawn"):
        model.compare(np.zeros((280, 280, 4), np.uint8), mnist_test.images[0])


def copy_model(tmp_path):
    target = tmp_path / "m"
    for kind, p in W.paths(W.default_prefix()).items():
        W.paths(target)[kind].write_bytes(p.read_bytes())
    return target


def test_corrupt_or_missing_files_are_refused(tmp_path):
    target = copy_model(tmp_path)
    onnx = W.paths(target)["onnx"]
    onnx.write_bytes(onnx.read_bytes()[:-1] + b"\x00")
    with pytest.raises(WeightsError, match="checksum"):
        SiameseModel.load(target)
    W.paths(target)["json"].write_text("{not json")
    with pytest.raises(WeightsError, match="corrupt model metadata"):
        SiameseModel.load(target)
    with pytest.raises(WeightsError, match="no model"):
        SiameseModel.load(tmp_path / "nothing")


def test_any_of_the_three_names_loads(tmp_path):
    target = copy_model(tmp_path)
    for suffix in (".json", ".onnx", ".weights.h5", ""):
        assert SiameseModel.load(str(target) + suffix).threshold > 0


def test_compare_never_imports_tensorflow():
    code = (
        "import sys, json, numpy as np\n"
        "import siamese_core\n"
        "from siamese_core import SiameseModel, load_dataset\n"
        "m = SiameseModel.load()\n"
        "ds = load_dataset('mnist-5k', 'test')\n"
        "v = m.compare(ds.images[0], ds.images[1])\n"
        "print(json.dumps({'tf': 'tensorflow' in sys.modules, 'keras': 'keras' in sys.modules,"
        " 'd': v.distance}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["tf"] is False and r["keras"] is False and r["d"] > 0


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow")
def test_onnx_matches_keras_for_shipped_model(model, mnist_test):
    _, emb, meta = W.load_keras(W.default_prefix())
    x = mnist_test.images[:64]
    keras_e = np.asarray(emb(x[..., None].astype("float32"), training=False))
    assert np.abs(model.embed(x) - keras_e).max() <= 1e-4


def test_compare_models_against_itself_and_a_miscalibrated_copy(model, mnist_test, tmp_path):
    from siamese_core.verdict import compare_models, evaluate
    same = compare_models(model, model, mnist_test, n_boot=200)
    assert same["difference"] == 0 and same["verdict"] == "no significant difference"
    assert same["accuracy_a"] == pytest.approx(evaluate(model, mnist_test, n_pairs=1000,
                                                        episodes=100)["all_pairs_accuracy"])
    # The same network with its threshold at 0.05: nearly every pair is called "different", so
    # about half of the balanced accuracy is gone.
    target = copy_model(tmp_path)
    meta = json.loads(W.paths(target)["json"].read_text())
    meta["calibration"]["threshold"] = 0.05
    W.paths(target)["json"].write_text(json.dumps(meta))
    bad = SiameseModel.load(target)
    r = compare_models(model, bad, mnist_test, n_boot=200)
    assert r["verdict"] == "significantly better" and r["accuracy_b"] < 0.6
    assert r["low"] <= r["difference"] <= r["high"] and r["n_images"] == len(mnist_test)
    assert compare_models(bad, model, mnist_test, n_boot=200)["verdict"] == "significantly worse"


def test_one_shot_guess_majority_and_tie_break():
    from siamese_core.verdict import one_shot_guess
    gallery = np.array([[0.0], [0.1], [0.2], [0.3], [5.0]])
    labels = np.array([7, 3, 3, 7, 9])
    guess, idx, dist = one_shot_guess(np.array([0.0]), gallery, labels, k=3)
    assert guess == 3 and list(idx) == [0, 1, 2]            # 3 has two of the three nearest
    guess, idx, _ = one_shot_guess(np.array([0.0]), gallery, labels, k=4)
    assert guess == 7                                       # 2-2 tie: the nearest one's class
    np.testing.assert_allclose(dist, [0.0, 0.1, 0.2])


def test_verify_against_references(model, mnist_test):
    threes = mnist_test.images[mnist_test.labels == 3]
    sevens = mnist_test.images[mnist_test.labels == 7]
    r = model.verify(threes[0], threes[:10])                 # threes[0] is not its own reference
    assert r.verdict.same and len(r.distances) == 9
    assert np.all(np.diff(r.distances) >= 0)
    assert r.verdict.distance == pytest.approx(np.median(r.distances))
    assert not model.verify(threes[0], sevens[:10]).verdict.same
    # A threshold below the median distance turns the same references into "not".
    assert not model.verify(threes[0], threes[:10], threshold=r.verdict.distance - 1e-3).verdict.same
    with pytest.raises(ImageError, match="other than the questioned"):
        model.verify(threes[0], threes[:1])


def test_verify_scores_by_the_models_reference_rule(model, mnist_test):
    """A model that chose the spread rule on validation (``references`` in its metadata)
    judges references by it: the mean distance less the references' own spread."""
    from siamese_core.references import ReferenceRule, spread
    threes = mnist_test.images[mnist_test.labels == 3]
    assert model.references == ReferenceRule("median")       # recorded by none: the median
    ruled = SiameseModel(model._session, {**model.meta, "references": {
        "rule": "spread", "typical": 0.25}}, model.prefix)
    r = ruled.verify(threes[0], threes[1:6])
    e = model.embed(threes[1:6])
    assert r.verdict.distance == pytest.approx(r.distances.mean() - spread(e) + 0.25, abs=1e-5)
    assert r.verdict.distance != pytest.approx(float(np.median(r.distances)), abs=1e-3)


def test_class_references_and_judged_pairs(model, mnist_test):
    from dataclasses import replace

    from siamese_core.verdict import class_references, judge_pairs
    train = replace(mnist_test, labels=np.where(mnist_test.labels < 7, mnist_test.labels, 0))
    val = mnist_test.subset(np.flatnonzero(mnist_test.labels == 7))
    test = mnist_test.subset(np.flatnonzero(mnist_test.labels >= 8))
    refs = class_references({"train": train, "val": val, "test": test})
    # Held-out classes first, each with the split that holds it: test, then validation.
    assert list(refs)[:4] == ["8", "9", "7", "0"]
    assert [refs[c][1] for c in ("8", "9", "7", "0", "3")] == ["test", "test", "val", "train",
                                                               "train"]
    assert len(refs["8"][0]) == 100 and len(refs["7"][0]) == 100 and len(refs["3"][0]) == 100
    emb = model.embed(mnist_test.images)
    montage, right = judge_pairs(mnist_test, emb, model.threshold, seed=1)
    assert montage.ndim == 3 and montage.shape[2] == 3 and 45 <= right <= 49
    # A threshold below every distance calls all pairs different: right on the negatives only.
    from siamese_core.pairs import DIFFERENT, make_pairs
    _, right = judge_pairs(mnist_test, emb, -1.0, seed=1)
    assert right == int((make_pairs(mnist_test.labels, 1, n_pairs=49).label == DIFFERENT).sum())
