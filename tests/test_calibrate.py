import numpy as np
import pytest

from siamese_core.calibrate import (
    accuracy_at,
    calibrate,
    confidence,
    one_shot_accuracy,
    pairwise_distances,
    pca_2d,
)


def test_separable_distances():
    c = calibrate(np.array([0.1, 0.2, 0.6, 0.7]), np.array([1, 1, 0, 0]))
    assert c.threshold == pytest.approx(0.4)      # midway between 0.2 and 0.6
    assert c.accuracy == 1.0 and c.roc_auc == 1.0 and c.eer == 0.0
    assert c.n_pairs == 4


def test_overlapping_distances_hand_computed():
    # Sorted: 0.1 same, 0.3 diff, 0.5 same, 0.7 diff. Cutting after 0.1 or after 0.5 gets 3/4.
    d, y = np.array([0.1, 0.5, 0.3, 0.7]), np.array([1, 1, 0, 0])
    c = calibrate(d, y)
    assert c.accuracy == pytest.approx(0.75)
    assert c.threshold == pytest.approx(0.2)
    assert accuracy_at(d, y, c.threshold) == pytest.approx(0.75)
    # AUC: of the 4 (same, diff) pairs, same is closer in 3 -> 0.75.
    assert c.roc_auc == pytest.approx(0.75)


def test_confidence_is_half_at_threshold_and_grows_with_margin():
    assert confidence(0.5, 0.5, 10.0) == pytest.approx(0.5)
    assert confidence(0.1, 0.5, 10.0) == pytest.approx(1 / (1 + np.exp(-4.0)))
    assert confidence(0.9, 0.5, 10.0) == pytest.approx(1 / (1 + np.exp(-4.0)))


def test_one_class_calibration_is_an_error():
    with pytest.raises(ValueError):
        calibrate(np.array([0.1, 0.2]), np.array([1, 1]))


def test_one_shot_perfect_and_random_embeddings():
    labels = np.repeat(np.arange(10), 20)
    perfect = np.eye(10)[labels]
    assert one_shot_accuracy(perfect, labels, 500, 0) == 1.0
    rnd = np.random.default_rng(0).normal(size=(200, 8))
    assert 0.03 < one_shot_accuracy(rnd, labels, 2000, 0) < 0.2   # chance is 0.1


def test_pairwise_distances_and_pca():
    a = np.array([[0.0, 0.0], [3.0, 4.0]])
    np.testing.assert_allclose(pairwise_distances(a, a), [[0, 5], [5, 0]], atol=1e-12)
    x = np.array([[1.0, 0, 0], [-1, 0, 0], [0, 2, 0], [0, -2, 0]])
    p = pca_2d(x)
    assert p.shape == (4, 2)
    assert abs(p[2, 0]) == pytest.approx(2.0)   # largest variance first
