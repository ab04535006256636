import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from siamese_core.augment import affine_matrices, random_affine  # noqa: E402


def _warp(img, angle=0.0, scale=1.0, sx=0.0, sy=0.0):
    m = affine_matrices(tf.constant([angle]), tf.constant([scale]), tf.constant([sx]),
                        tf.constant([sy]), img.shape[0])
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.constant(img[None, ..., None]), transforms=m, output_shape=img.shape[:2],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT").numpy()[0, ..., 0]


def test_identity_matrix():
    m = affine_matrices(tf.zeros(1), tf.ones(1), tf.zeros(1), tf.zeros(1), 28).numpy()
    np.testing.assert_allclose(m[0], [1, 0, 0, 0, 1, 0, 0, 0], atol=1e-6)


def test_shift_moves_content_by_whole_pixels():
    img = np.zeros((28, 28), np.float32)
    img[10, 12] = 255.0
    out = _warp(img, sx=2.0, sy=-3.0)
    assert out[7, 14] == pytest.approx(255.0)     # right 2, up 3
    assert out.sum() == pytest.approx(255.0)


def test_quarter_turn_about_the_centre():
    img = np.zeros((28, 28), np.float32)
    img[13, 20] = 1.0                       # right of the centre (13.5, 13.5), on row 13
    out = _warp(img, angle=np.pi / 2)
    y, x = np.unravel_index(np.argmax(out), out.shape)
    # a quarter turn keeps the distance to the centre (6.5 px) and moves the point off its row
    assert np.hypot(y - 13.5, x - 13.5) == pytest.approx(np.hypot(13 - 13.5, 20 - 13.5), abs=1.0)
    assert abs(x - 13.5) < 1.5


def test_wide_images_turn_about_their_own_centre():
    """A 20 x 40 image (a wide input) turns and shifts about (19.5, 9.5), and keeps its shape;
    its shifts scale with each side."""
    img = np.zeros((20, 40), np.float32)
    img[9:11, 19:21] = 1.0                          # the centre
    m = affine_matrices(tf.constant([np.pi / 2]), tf.ones(1), tf.zeros(1), tf.zeros(1), 20,
                        width=40)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.constant(img[None, ..., None]), transforms=m, output_shape=(20, 40),
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT").numpy()[0, ..., 0]
    np.testing.assert_allclose(out, img, atol=1e-5)   # the centre stays where it is
    x = tf.constant(np.random.default_rng(0).random((5, 20, 40, 1)), tf.float32)
    warped = random_affine(x, 1.0, keras.random.SeedGenerator(0))
    assert warped.shape == (5, 20, 40, 1)


def test_zoom_in_spreads_a_stroke():
    img = np.zeros((28, 28), np.float32)
    img[8:20, 13:15] = 1.0
    out = _warp(img, scale=1.1)
    assert (out > 0.5).sum() > (img > 0.5).sum()


def test_strength_zero_is_exactly_the_input_and_one_changes_it():
    x = np.random.default_rng(0).uniform(0, 255, (8, 28, 28, 1)).astype(np.float32)
    seed = keras.random.SeedGenerator(3)
    np.testing.assert_array_equal(random_affine(tf.constant(x), 0.0, seed).numpy(), x)
    y = random_affine(tf.constant(x), 1.0, seed).numpy()
    assert y.shape == x.shape
    assert not np.allclose(y, x)
    # each image gets its own transform
    diffs = [np.abs(y[i] - x[i]).mean() for i in range(8)]
    assert len(set(np.round(diffs, 3))) > 1


def test_seeded_draws_repeat():
    x = np.random.default_rng(1).uniform(0, 255, (4, 28, 28, 1)).astype(np.float32)
    a = random_affine(tf.constant(x), 1.0, keras.random.SeedGenerator(5)).numpy()
    b = random_affine(tf.constant(x), 1.0, keras.random.SeedGenerator(5)).numpy()
    np.testing.assert_array_equal(a, b)


def test_flip_mirrors_half_of_the_images_and_nothing_else_at_strength_zero():
    """Faces mirrored are the same face (issue 21): with ``flip`` each image is either itself
    or exactly its mirror image at strength 0, about half of each; without it, never mirrored."""
    x = np.random.default_rng(0).uniform(0, 255, (64, 20, 20, 1)).astype(np.float32)
    seed = keras.random.SeedGenerator(5)
    y = random_affine(tf.constant(x), 0.0, seed, flip=True).numpy()
    same = np.array([np.allclose(y[i], x[i], atol=1e-3) for i in range(64)])
    mirrored = np.array([np.allclose(y[i], x[i, :, ::-1], atol=1e-3) for i in range(64)])
    assert (same ^ mirrored).all()
    assert 16 < mirrored.sum() < 48
    z = random_affine(tf.constant(x), 0.0, seed).numpy()
    np.testing.assert_array_equal(z, x)


def test_nearest_fill_repeats_the_edge_instead_of_black():
    """Photos have no background: a shifted photo repeats its edge (NEAREST), ink gets 0."""
    x = np.full((4, 20, 20, 1), 200.0, np.float32)
    seed = keras.random.SeedGenerator(2)
    ink = random_affine(tf.constant(x), 1.0, seed).numpy()
    photo = random_affine(tf.constant(x), 1.0, keras.random.SeedGenerator(2), fill="NEAREST").numpy()
    assert ink.min() < 100 and photo.min() == pytest.approx(200.0)
