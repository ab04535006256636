import numpy as np
import pytest

from siamese_core.pixels import fusion_weight, mean_distance, unit_pixels


def _images(n=12, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 6, 5)).astype(np.float32)


def test_unit_pixels_ignore_brightness_and_contrast():
    x = _images()
    u = unit_pixels(x)
    assert u.shape == (12, 30)
    np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(u.sum(1), 0.0, atol=1e-5)            # mean removed
    np.testing.assert_allclose(unit_pixels(0.5 * x + 40), u, atol=1e-6)   # lighting evened
    # A flat image (one grey) has no pattern: zeros, never NaN.
    assert not unit_pixels(np.full((1, 6, 5), 77.0)).any()


def test_mean_distance_over_pairs_of_two_rows():
    assert mean_distance(np.eye(3)) == pytest.approx(np.sqrt(2))
    f = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])
    assert mean_distance(f) == pytest.approx((5 + 4 + 3) / 3)
    with pytest.raises(ValueError):
        mean_distance(f[:1])


def test_fusion_weight_puts_each_part_in_units_of_its_mean_distance():
    """The fused squared distance (1 - w^2) d_net^2 + w^2 d_pix^2 is proportional to
    (d_net / m_net)^2 + (d_pix / m_pix)^2 for every pair: neither part's scale decides."""
    x = _images(20)
    e = np.random.default_rng(1).normal(size=(20, 4))
    e = 0.3 * e / np.linalg.norm(e, axis=1, keepdims=True)     # a tight network: small distances
    w = fusion_weight(e, x)
    m_net, m_pix = mean_distance(e), mean_distance(unit_pixels(x))
    assert w == pytest.approx(m_net / np.hypot(m_net, m_pix))

    def d(f):
        return np.linalg.norm(f[:, None] - f[None], axis=-1)
    fused = (1 - w * w) * d(e) ** 2 + w * w * d(unit_pixels(x)) ** 2
    parts = (d(e) / m_net) ** 2 + (d(unit_pixels(x)) / m_pix) ** 2
    off = ~np.eye(20, dtype=bool)
    ratio = fused[off] / parts[off]
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-5)
    # Twice as spread embeddings weigh the pixels more, so both still count alike.
    assert fusion_weight(2 * e, x) > w
    # On many images a seeded subsample sets it, the same each time.
    big = _images(60, seed=3)
    eb = np.random.default_rng(4).normal(size=(60, 4))
    assert fusion_weight(eb, big, max_images=30, seed=5) == fusion_weight(eb, big, max_images=30,
                                                                          seed=5)
    with pytest.raises(ValueError, match="alike"):
        fusion_weight(np.zeros((5, 4)), _images(5))
