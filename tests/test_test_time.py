import numpy as np
import pytest

from siamese_core.test_time import TEST_TIMES, WARPS, embedder, tta_embed, warp


def _dot(h=12, w=10, y=5, x=4) -> np.ndarray:
    img = np.zeros((1, h, w), np.uint8)
    img[0, y, x] = 200
    return img


def test_the_first_warp_is_the_image_and_shifts_move_it():
    img = _dot()
    assert WARPS[0] == (0, 1, 0, 0) and len(WARPS) == 9
    np.testing.assert_array_equal(warp(img, *WARPS[0]), img.astype(np.float32))
    moved = warp(img, 0, 1, 2, -1)              # 2 px right, 1 px up
    assert moved.dtype == np.float32 and moved.shape == img.shape
    assert moved[0, 4, 6] == 200 and moved.sum() == 200
    ch = warp(img[..., None], 0, 1, 2, -1)      # a channel axis is kept
    np.testing.assert_array_equal(ch[..., 0], moved)


def test_turns_and_zooms_keep_the_centre_and_fill_with_background():
    img = np.full((1, 9, 9), 255, np.uint8)
    turned = warp(img, 7, 1, 0, 0)
    assert turned[0, 4, 4] == pytest.approx(255) and turned[0, 0, 0] < 255   # corners: new
    zoomed_out = warp(img, 0, 0.5, 0, 0)
    assert zoomed_out[0, 0, 0] == 0 and zoomed_out[0, 4, 4] == pytest.approx(255)


def test_tta_is_the_renormalised_mean_of_the_warped_unit_embeddings():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (5, 12, 10)).astype(np.uint8)
    proj = rng.normal(size=(120, 4)).astype(np.float32)

    def embed(x):   # a linear "network", not unit length: tta must normalise each view
        return x.reshape(len(x), -1) @ proj

    views = [embed(warp(imgs, *p)) for p in WARPS]
    want = sum(v / np.linalg.norm(v, axis=1, keepdims=True) for v in views)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    got = tta_embed(embed, imgs)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1, rtol=1e-6)
    plain = embed(imgs) / np.linalg.norm(embed(imgs), axis=1, keepdims=True)
    assert np.abs(got - plain).max() > 1e-3        # the warps change something
    # An embedding the warps cannot change comes out as itself.
    const = np.array([[3.0, 4.0]], np.float32)
    np.testing.assert_allclose(tta_embed(lambda x: np.repeat(const, len(x), 0), imgs),
                               np.repeat([[0.6, 0.8]], 5, 0), rtol=1e-6)


def test_an_embedding_with_pixels_averages_the_network_part_only():
    """model.PixelFusion's embeddings: [0.8 * network, 0.6 * pixels]. TTA averages the network
    part over the warps (keeping its length) and takes the pixels of the image as it is."""
    from siamese_core.pixels import unit_pixels
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, (4, 12, 10)).astype(np.float32)
    proj = rng.normal(size=(120, 3)).astype(np.float32)

    def net(x):
        v = x.reshape(len(x), -1) @ proj
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def fused(x):
        return np.concatenate([0.8 * net(x), 0.6 * unit_pixels(x)], axis=1)
    got = tta_embed(fused, imgs, own_from=3)
    np.testing.assert_allclose(got[:, :3], 0.8 * tta_embed(net, imgs), rtol=1e-5)
    np.testing.assert_allclose(got[:, 3:], 0.6 * unit_pixels(imgs), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(embedder(fused, "tta", 3)(imgs), got)
    # Without own_from the pixels would be averaged over shifted copies: not the image's own.
    assert np.abs(tta_embed(fused, imgs)[:, 3:] - got[:, 3:]).max() > 1e-2


def test_embedder_is_the_embedding_itself_or_its_tta_form():
    def f(x):
        return np.ones((len(x), 3), np.float32)
    assert embedder(f, "none") is f and TEST_TIMES == ("none", "tta")
    np.testing.assert_allclose(embedder(f, "tta")(np.zeros((2, 4, 4))), 1 / np.sqrt(3))
    with pytest.raises(ValueError, match="unknown test_time 'flip'"):
        embedder(f, "flip")
