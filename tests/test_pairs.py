import numpy as np
import pytest

from siamese_core import DataError, make_pairs
from siamese_core.pairs import DIFFERENT, SAME, make_triplets, pair_montage, pk_batches


@pytest.mark.parametrize("seed", range(40))
def test_pairs_balanced_and_correct_over_many_seeds(seed):
    rng = np.random.default_rng(1000 + seed)
    n_classes = int(rng.integers(2, 12))
    labels = rng.integers(0, n_classes, int(rng.integers(30, 400)))
    labels[:2 * n_classes] = np.repeat(np.arange(n_classes), 2)  # every class has >= 2 images
    p = make_pairs(labels, seed)
    assert len(p.a) == 2 * len(labels)
    assert (p.label == SAME).sum() == (p.label == DIFFERENT).sum() == len(labels)
    same_class = labels[p.a] == labels[p.b]
    np.testing.assert_array_equal(same_class, p.label == SAME)
    assert not np.any(p.a == p.b)
    # Seed recipe: every image anchors exactly one positive and one negative pair.
    assert sorted(p.a[p.label == SAME]) == list(range(len(labels)))
    assert sorted(p.a[p.label == DIFFERENT]) == list(range(len(labels)))


def test_pairs_reproducible_and_seed_dependent():
    labels = np.repeat(np.arange(5), 10)
    a, b = make_pairs(labels, 7), make_pairs(labels, 7)
    np.testing.assert_array_equal(a.b, b.b)
    assert not np.array_equal(a.b, make_pairs(labels, 8).b)


def test_n_pairs_and_fraction():
    labels = np.repeat(np.arange(3), 4)
    p = make_pairs(labels, 0, n_pairs=101, pos_fraction=0.3)
    assert len(p.a) == 101 and (p.label == SAME).sum() == 30
    np.testing.assert_array_equal(labels[p.a] == labels[p.b], p.label == SAME)


def test_non_contiguous_labels():
    labels = np.array([7, 7, 42, 42, 42, -1, -1])
    p = make_pairs(labels, 3, n_pairs=500)
    np.testing.assert_array_equal(labels[p.a] == labels[p.b], p.label == SAME)


def test_negative_partner_classes_are_uniform():
    labels = np.repeat(np.arange(4), 1000)
    p = make_pairs(labels, 0, n_pairs=40_000, pos_fraction=0.0)
    anchors0 = labels[p.a] == 0
    counts = np.bincount(labels[p.b][anchors0], minlength=4)
    assert counts[0] == 0
    assert np.all(np.abs(counts[1:] / anchors0.sum() - 1 / 3) < 0.03)


def test_errors_are_clear():
    with pytest.raises(DataError, match="at least 2 classes"):
        make_pairs(np.zeros(10, int), 0)
    with pytest.raises(DataError, match="single image"):
        make_pairs(np.array([0, 0, 1]), 0)
    # Negatives only need no second image per class.
    p = make_pairs(np.array([0, 0, 1]), 0, n_pairs=4, pos_fraction=0.0)
    assert (p.label == DIFFERENT).all()


def test_triplets():
    labels = np.repeat(np.arange(6), 5)
    a, pos, neg = make_triplets(labels, 0)
    assert sorted(a) == list(range(30))
    assert np.all(labels[a] == labels[pos]) and np.all(a != pos)
    assert np.all(labels[a] != labels[neg])


def test_pk_batches_are_class_balanced():
    labels = np.repeat(np.arange(10), 40)
    batches = pk_batches(labels, 100, np.random.default_rng(0))
    assert len(batches) == 4
    for b in batches:
        assert np.all(np.bincount(labels[b], minlength=10) == 10)
    # One epoch walks through every image exactly once.
    assert sorted(np.concatenate(batches)) == list(range(400))


def test_montage_is_a_7x7_grid(mnist_test):
    p = make_pairs(mnist_test.labels, 0, n_pairs=49)
    m = pair_montage(mnist_test.images, p, tile=32)
    assert m.shape == (7 * 32, 7 * 64, 3) and m.dtype == np.uint8
    # Top-left tile's caption colour: green for "pos", red for "neg" (RGB).
    tile = m[:32, :64].reshape(-1, 3).astype(int)
    green = np.sum((tile[:, 1] > 150) & (tile[:, 0] < 80))
    red = np.sum((tile[:, 0] > 150) & (tile[:, 1] < 80))
    assert (green > 0) == bool(p.label[0] == SAME) and (red > 0) == bool(p.label[0] != SAME)
    # Wide inputs (40 x 80 signatures) are shown as they are, not squeezed into squares.
    wide = np.zeros((len(mnist_test.labels), 40, 80), np.uint8)
    assert pair_montage(wide, p, tile=32).shape == (7 * 32, 7 * 128, 3)
    from siamese_core.pairs import class_montage
    grid = class_montage(wide, mnist_test.labels, [str(d) for d in range(10)], tile=32)
    assert grid.shape == (10 * 32, 4 * 64, 3)


def test_group_batches_draw_their_classes_from_one_group():
    """group_batches: each batch's classes come from one group as far as it has them (hard,
    same-alphabet negatives), the rest from the others; still P x K and class-balanced."""
    from siamese_core.pairs import pk_batches
    labels = np.repeat(np.arange(60), 8)
    groups = np.repeat([0, 1, 2], 20)              # 3 "alphabets" of 20 classes
    for b in pk_batches(labels, 40, np.random.default_rng(0), groups=groups):
        classes = np.unique(labels[b])
        assert len(classes) == 10 and len(b) == 40
        assert np.bincount(groups[classes], minlength=3).max() == 10   # all from one group
    small_groups = np.array([0] * 3 + [1] * 57)                     # group 0 has 3 classes
    for b in pk_batches(labels, 40, np.random.default_rng(1), groups=small_groups):
        classes = np.unique(labels[b])
        assert len(classes) == 10                                      # filled from the rest


def test_class_groups_and_rotated_classes():
    from siamese_core.data import Dataset, class_groups, with_rotated_classes
    assert class_groups(["Greek/a", "Greek/b", "Latin/a", "solo", "Greek/a@90"]).tolist() == [
        0, 0, 1, 2, 0]
    img = np.zeros((2, 5, 5), np.uint8)
    img[0, 0, 4] = 255                              # "dot": top-right corner
    img[1, [0, 4], :] = img[1, :, [0, 4]] = 255     # "ring": a square outline, turns into itself
    ds = Dataset(img, np.array([0, 1]), ["dot", "ring"], "x", "train")
    r = with_rotated_classes(ds)
    assert r.class_names == ["dot", "ring", "dot@90", "dot@180", "dot@270"]
    assert r.labels.tolist() == [0, 1, 2, 3, 4]
    assert r.images[2, 0, 0] == r.images[3, 4, 0] == r.images[4, 4, 4] == 255
    # A split holds some of the dataset's classes (labels index all of them): only those turn.
    part = Dataset(img, np.array([1, 3]), ["p", "dot", "q", "ring"], "x", "train")
    r = with_rotated_classes(part)
    assert r.class_names == ["p", "dot", "q", "ring", "dot@90", "dot@180", "dot@270"]
    assert sorted(set(r.labels.tolist())) == [1, 3, 4, 5, 6]
    # Wide images (signatures): a quarter turn would not fit the frame, so 180 degrees only.
    wide = np.zeros((1, 4, 8), np.uint8)
    wide[0, 0, 7] = 255
    r = with_rotated_classes(Dataset(wide, np.array([0]), ["sig"], "x", "train"))
    assert r.class_names == ["sig", "sig@180"] and r.images.shape == (2, 4, 8)
    assert r.images[1, 3, 0] == 255


def test_pk_batches_when_not_all_classes_fit():
    """60 classes, batches of 40: 10 classes x 4 images per batch, each class walked through
    its images before any repeats."""
    labels = np.repeat(np.arange(60), 8)
    batches = pk_batches(labels, 40, np.random.default_rng(0))
    assert len(batches) == 12
    seen = np.concatenate(batches)
    for b in batches:
        assert len(b) == 40 and set(np.bincount(labels[b], minlength=60)) <= {0, 4}
    # 12 batches x 10 classes = 120 class draws over 60 classes: no image twice in one epoch
    # unless its class was drawn more than twice (8 images = 2 draws of 4).
    counts = np.bincount(labels[seen], minlength=60)
    for c in np.flatnonzero(counts <= 8):
        idx = seen[labels[seen] == c]
        assert len(np.unique(idx)) == len(idx)


def test_pairs_among_chosen_classes_index_the_full_labels():
    """The Explorer's class filter (issue 16: it lived in the page): pairs of chosen classes
    only, indices into the whole dataset, balanced as make_pairs."""
    from siamese_core.pairs import pairs_among
    labels = np.repeat(np.arange(5), 10)
    p = pairs_among(labels, [1, 3], 0, n_pairs=40)
    assert set(labels[p.a]) | set(labels[p.b]) == {1, 3}
    assert np.all((labels[p.a] == labels[p.b]) == (p.label == SAME))
    assert (p.label == SAME).sum() == 20
    every = pairs_among(labels, [], 0, n_pairs=40)
    np.testing.assert_array_equal(every.a, make_pairs(labels, 0, n_pairs=40).a)
    with pytest.raises(DataError):
        pairs_among(labels, [2], 0, n_pairs=10)        # one class: no negative pairs
