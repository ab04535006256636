import io

import numpy as np
import pytest
from PIL import Image

from siamese_core import ImageError, preprocess
from siamese_core.preprocess import load_image, to_gray


def centre_of_mass(img):
    img = img.astype(float)
    ys, xs = np.indices(img.shape)
    return (ys * img).sum() / img.sum(), (xs * img).sum() / img.sum()


def test_square_is_fitted_to_20px_and_centred():
    img = np.zeros((100, 100), np.uint8)
    img[10:50, 60:80] = 255          # a 40 x 20 bar in the top-right corner
    out = preprocess(img)
    assert out.shape == (28, 28) and out.dtype == np.uint8
    ys, xs = np.nonzero(out > 127)
    assert ys.max() - ys.min() + 1 == 20          # long side scaled 40 -> 20
    assert xs.max() - xs.min() + 1 == 10          # aspect kept: 20 -> 10
    cy, cx = centre_of_mass(out)
    assert cy == pytest.approx(13.5, abs=0.5) and cx == pytest.approx(13.5, abs=0.5)
    assert out.max() == 255


def test_polarity_and_channels_do_not_matter():
    ink = np.zeros((60, 60), np.uint8)
    ink[20:40, 25:30] = 255
    white_on_black = preprocess(ink)
    black_on_white = preprocess(255 - ink)
    rgb = preprocess(np.stack([255 - ink] * 3, -1))
    np.testing.assert_array_equal(white_on_black, black_on_white)
    np.testing.assert_array_equal(white_on_black, rgb)


def test_rgba_canvas_and_transparent_png():
    stroke = np.zeros((280, 280), np.uint8)
    stroke[60:220, 130:150] = 255
    # Canvas style: white stroke, transparent black elsewhere.
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[..., :3] = stroke[..., None]
    canvas[..., 3] = stroke
    # Upload style: black ink on a transparent background.
    png = np.zeros((280, 280, 4), np.uint8)
    png[..., 3] = stroke
    a, b = preprocess(canvas), preprocess(png)
    np.testing.assert_array_equal(a, b)
    assert a.sum() > 0


def test_float_and_pil_inputs():
    img = np.zeros((40, 40), np.float32)
    img[10:30, 18:22] = 1.0
    out = preprocess(img)
    assert np.isfinite(out.astype(float)).all() and out.max() == 255
    np.testing.assert_array_equal(preprocess(Image.fromarray((img * 255).astype(np.uint8))), out)


@pytest.mark.parametrize("blank", [np.zeros((280, 280)), np.full((50, 50), 255),
                                   np.full((280, 280, 4), 0), np.full((20, 20, 3), 128)])
def test_blank_is_a_clear_error(blank):
    with pytest.raises(ImageError, match="nothing drawn"):
        preprocess(blank.astype(np.uint8))


def test_faint_noise_is_blank():
    noise = np.random.default_rng(0).integers(0, 10, (100, 100)).astype(np.uint8)
    with pytest.raises(ImageError, match="nothing drawn"):
        preprocess(noise)


def test_bytes_and_bad_files(tmp_path):
    buf = io.BytesIO()
    img = np.zeros((30, 30), np.uint8)
    img[5:25, 14:16] = 255
    Image.fromarray(img).save(buf, format="PNG")
    assert preprocess(buf.getvalue()).max() == 255
    with pytest.raises(ImageError, match="not a supported image"):
        load_image(b"this is not an image")
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "missing.png")
    huge = tmp_path / "huge.png"
    Image.new("L", (5000, 8)).save(huge)
    with pytest.raises(ImageError, match="at most"):
        load_image(huge)


def test_animated_gif_uses_first_frame(tmp_path):
    a = np.zeros((30, 30), np.uint8)
    a[5:25, 10:12] = 255
    frames = [Image.fromarray(a), Image.fromarray(np.zeros_like(a))]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:])
    assert preprocess(p).max() == 255


def test_to_gray_rejects_odd_shapes():
    with pytest.raises(ImageError):
        to_gray(np.zeros((4, 4, 2), np.uint8))
