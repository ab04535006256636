import numpy as np
import pytest

from siamese_core.calibrate import (
    _balanced,
    _pair_matrices,
    accuracy_at,
    all_pairs_accuracy,
    calibrate,
    confidence,
    one_shot_accuracy,
    paired_bootstrap,
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


# Four images on a line: 0 and 1 are class 0, 2 and 3 class 1; threshold 0.45.
LINE = np.array([[0.0], [0.1], [0.5], [2.0]])
LINE_LABELS = np.array([0, 0, 1, 1])


def test_all_pairs_accuracy_hand_computed():
    # Same-class pairs: (0,1) d=0.1 right, (2,3) d=1.5 wrong -> 1/2. Different-class pairs:
    # (0,2) 0.5, (0,3) 2.0, (1,3) 1.9 right, (1,2) 0.4 wrong -> 3/4. Balanced: 0.625.
    assert all_pairs_accuracy(LINE, LINE_LABELS, 0.45) == pytest.approx(0.625)
    assert all_pairs_accuracy(LINE, LINE_LABELS, 10.0) == pytest.approx(0.5)   # all "same"
    with pytest.raises(ValueError, match="2 classes"):
        all_pairs_accuracy(LINE, np.zeros(4), 0.45)
    many = np.arange(2001) % 2
    with pytest.raises(ValueError, match="at most 2000 images"):
        all_pairs_accuracy(np.zeros((2001, 1)), many, 0.5)


def test_resampled_images_weight_their_pairs():
    # Image 0 drawn twice: its pairs count twice; the pair of its two copies counts nowhere.
    # Same: (0,1) x2 right, (2,3) x1 wrong -> 2/3. Different: (0,2) x2, (0,3) x2, (1,3) right,
    # (1,2) wrong -> 5/6. Balanced: 0.75.
    w = np.array([[2.0, 1, 1, 1], [1, 1, 1, 1]])
    got = _balanced(_pair_matrices(LINE, LINE_LABELS, 0.45), w)
    np.testing.assert_allclose(got, [0.75, 0.625])


def test_paired_bootstrap():
    labels = np.repeat(np.arange(4), 25)
    perfect = np.eye(4)[labels]
    same = paired_bootstrap(perfect, 0.5, perfect, 0.5, labels, n_boot=200)
    assert same["difference"] == 0 and same["low"] == 0 and same["high"] == 0
    # Model b calls every pair "same": 0.5 however the images are resampled.
    r = paired_bootstrap(perfect, 0.5, perfect, 5.0, labels, n_boot=200)
    assert r["difference"] == pytest.approx(0.5) and r["low"] == pytest.approx(0.5)
    assert r["p_a_below"] == 0.0
    # A noisy model against the perfect one: below it in every resample, the interval around
    # the point difference.
    noisy = perfect + np.random.default_rng(0).normal(0, 0.45, perfect.shape)
    r = paired_bootstrap(noisy, 1.0, perfect, 0.5, labels, n_boot=300)
    assert r["low"] < r["difference"] < r["high"] < 0 and r["p_a_below"] == 1.0


def test_holdout_interval_resamples_classes_or_images():
    """How far the all-pairs accuracy could move on other held-out data: nothing for a perfect
    model; resampling classes sees that some classes are easy and some hard, which resampling
    images alone does not; with 2 classes only the images can vary."""
    from siamese_core.calibrate import holdout_interval
    labels = np.repeat(np.arange(6), 10)
    perfect = np.eye(6)[labels]
    assert holdout_interval(perfect, labels, 0.5, True, n_boot=100) == (0.0, 0.0)
    assert holdout_interval(perfect, labels, 0.5, False, n_boot=100) == (0.0, 0.0)
    # Classes 0-2 apart from everything; 3-5 on top of each other: which classes a draw holds
    # decides the accuracy.
    centres = np.eye(6)[[0, 1, 2, 3, 3, 3]]
    emb = centres[labels] + np.random.default_rng(0).normal(0, 0.05, (60, 6))
    by_class = holdout_interval(emb, labels, 0.5, True, n_boot=300)
    by_image = holdout_interval(emb, labels, 0.5, False, n_boot=300)
    assert by_class[0] < 0 < by_class[1]
    assert by_class[1] - by_class[0] > 2 * (by_image[1] - by_image[0])
    two = labels < 2
    noisy = perfect[:, :2] + np.random.default_rng(1).normal(0, 0.5, (60, 2))
    lo, hi = holdout_interval(noisy[two], labels[two], 0.7, True, n_boot=300)
    assert lo < 0 < hi


def test_operating_points_hand_computed():
    from siamese_core.calibrate import operating_points, rates_at
    # Same pairs at 0.1, 0.2, 0.6; different pairs at 0.4, 0.8, 0.9.
    d = np.array([0.1, 0.2, 0.6, 0.4, 0.8, 0.9])
    y = np.array([1, 1, 1, 0, 0, 0])
    p = operating_points(d, y, n=6)           # quantiles of 6 distances: the distances
    assert p["threshold"] == [0.1, 0.2, 0.4, 0.6, 0.8, 0.9]
    assert p["far"] == pytest.approx([0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    assert p["frr"] == pytest.approx([2 / 3, 1 / 3, 1 / 3, 0, 0, 0])
    far, frr = rates_at(p, 0.5)                # halfway between 0.4 and 0.6
    assert far == pytest.approx(1 / 3) and frr == pytest.approx(1 / 6)


def test_one_shot_n_way_k_shot():
    from siamese_core.calibrate import one_shot_accuracy
    labels = np.repeat(np.arange(30), 6)
    perfect = np.eye(30)[labels]
    assert one_shot_accuracy(perfect, labels, 200, 0, n_way=20) == 1.0
    assert one_shot_accuracy(perfect, labels, 200, 0, n_way=5, shots=5) == 1.0
    rng = np.random.default_rng(0)
    noisy = perfect + rng.normal(0, 0.45, perfect.shape)
    one, five = (one_shot_accuracy(noisy, labels, 400, 1, n_way=20, shots=k) for k in (1, 5))
    assert five > one                          # prototypes of 5 average the noise out
    with pytest.raises(ValueError, match="20-way 6-shot needs 20 classes with 7"):
        one_shot_accuracy(perfect, labels, 10, 0, n_way=20, shots=5 + 1)


def test_evaluate_embeddings_reports_at_the_given_threshold():
    from siamese_core.calibrate import evaluate_embeddings
    labels = np.repeat(np.arange(25), 4)
    emb = np.eye(25)[labels]                   # same: distance 0; different: sqrt(2)
    r = evaluate_embeddings(emb, labels, threshold=1.0, n_pairs=1000, episodes=100)
    assert r["pair_accuracy"] == 1.0 and r["one_shot"] == 1.0 and r["n_way"] == 20
    assert r["n_classes"] == 25 and r["n_images"] == 100
    # A threshold chosen elsewhere that calls everything "same": half the pairs are wrong.
    assert evaluate_embeddings(emb, labels, 2.0, 1000, 10)["pair_accuracy"] == pytest.approx(0.5)


def test_balanced_calibration_does_not_let_a_few_negatives_in():
    """Issue 21, 3: 2,000 genuine pairs against 48 skilled forgeries: the plain accuracy is best
    when every pair is called same (98 %), so every forgery passed. Balanced, the threshold
    separates them."""
    from siamese_core.calibrate import calibrate
    rng = np.random.default_rng(0)
    d = np.concatenate([rng.normal(0.5, 0.15, 2000), rng.normal(0.8, 0.15, 48)])
    y = np.concatenate([np.ones(2000, int), np.zeros(48, int)])
    plain, balanced = calibrate(d, y), calibrate(d, y, balanced=True)
    assert (d[y == 0] <= plain.threshold).mean() > 0.6          # most forgeries let in
    assert (d[y == 0] <= balanced.threshold).mean() < 0.3
    assert (d[y == 1] > balanced.threshold).mean() < 0.3
    assert 0.7 < balanced.accuracy < 0.95
    even = rng.normal(0.5, 0.2, 200), rng.normal(1.0, 0.2, 200)   # equal sets: the same cut
    d2, y2 = np.concatenate(even), np.concatenate([np.ones(200, int), np.zeros(200, int)])
    assert calibrate(d2, y2).threshold == calibrate(d2, y2, balanced=True).threshold
