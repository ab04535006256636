import importlib
import io

import numpy as np
import pytest
from PIL import Image

from siamese_core import ImageError, preprocess
from siamese_core.preprocess import load_image, to_gray

# The module (the package exports a function of the same name).
PP = importlib.import_module("siamese_core.preprocess")


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


# --- the photo kind (issue 21) ----------------------------------------------------------------

def _face(light_left: float = 1.0, light_right: float = 1.0) -> np.ndarray:
    """A "face": a dark-haired oval with eyes on a mid-grey wall, lit from the sides."""
    import cv2
    img = np.full((120, 100), 150, np.float32)
    cv2.ellipse(img, (50, 62), (32, 42), 0, 0, 360, 190, -1)       # skin
    cv2.ellipse(img, (50, 30), (34, 16), 0, 180, 360, 40, -1)      # hair
    for x in (38, 62):
        cv2.circle(img, (x, 55), 5, 30, -1)                        # eyes
    cv2.line(img, (40, 88), (60, 88), 80, 3)                       # mouth
    img = cv2.GaussianBlur(img, (0, 0), 3)                          # soft, as a lens makes it
    img *= np.linspace(light_left, light_right, 100)[None, :]
    img += np.random.default_rng(1).normal(0, 6, img.shape)        # skin texture, sensor noise
    return np.clip(img, 0, 255).astype(np.uint8)


def test_photo_kind_keeps_the_dark_parts_that_ink_preprocessing_throws_away():
    """The issue's finding: Otsu + TOZERO turns a face into a mask of its bright parts. The
    photo kind keeps hair and eyes, and many grey levels."""
    face = _face()
    ink = PP.prepare(face, PP.Prep(48))
    photo = PP.prepare(face, PP.Prep(48, kind="photo"))
    assert photo.shape == (48, 48) and photo.dtype == np.uint8
    # Ink: the hair and the eyes (darker than the threshold) are gone; photo: they are features.
    assert (ink == 0).mean() > 0.4
    assert (photo == 0).mean() < 0.05 and len(np.unique(photo)) > 64
    eyes = photo[21:25, 16:32]              # the eyes' row in the central square, left side
    assert eyes.min() < 100 < photo.mean() + 40


def test_even_lighting_makes_two_lightings_of_one_face_alike():
    """A face lit from the left and the same face lit from the right: far apart as grey
    levels, close after the photo preprocessing (closer than to another face)."""
    def z(a):
        a = a.astype(np.float32).ravel()
        return (a - a.mean()) / a.std()
    left, right = _face(1.0, 0.35), _face(0.35, 1.0)
    other = np.fliplr(_face()).copy()
    other[50:60] = 200                                  # another face: no eyes, moved mouth
    p = PP.Prep(48, kind="photo")
    raw = np.linalg.norm(z(left[::2, ::2]) - z(right[::2, ::2]))
    after = np.linalg.norm(z(PP.prepare(left, p)) - z(PP.prepare(right, p)))
    to_other = np.linalg.norm(z(PP.prepare(left, p)) - z(PP.prepare(other, p)))
    assert after < 0.6 * raw and after < to_other


def test_photo_fits_crop_the_centre_or_pad_the_whole_image():
    wide = np.zeros((100, 300), np.uint8)
    wide[:, :100], wide[:, 100:200], wide[:, 200:] = 40, 128, 220      # three bands
    wide += np.random.default_rng(0).integers(0, 30, wide.shape, dtype=np.uint8)
    crop = PP.prepare(wide, PP.Prep(30, "crop", "photo"))
    pad = PP.prepare(wide, PP.Prep(30, "pad", "photo"))
    assert crop.shape == pad.shape == (30, 30)
    # The crop sees the middle band only (flat after lighting is evened out: near mid-grey);
    # the padded image shows all three bands, their edges as features.
    assert np.abs(crop.astype(int) - 128).mean() < np.abs(pad.astype(int) - 128).mean()


def test_prep_kinds_and_fits_are_checked_and_old_models_are_ink():
    assert PP.Prep(40).fit == "centre" and PP.Prep(40).kind == "ink"
    assert PP.Prep(40, kind="photo").fit == "crop"
    with pytest.raises(ImageError, match="fit 'centre' is not for photo images: use crop or pad"):
        PP.Prep(40, "centre", "photo")
    with pytest.raises(ImageError, match="unknown image kind 'x-ray'"):
        PP.Prep(40, kind="x-ray")
    assert PP.Prep.from_dict({"size": 32, "fit": "box"}) == PP.Prep(32, "box", "ink")
    p = PP.Prep(64, "pad", "photo")
    assert PP.Prep.from_dict(p.to_dict()) == p
    with pytest.raises(ImageError, match="photo is blank"):
        PP.prepare(np.full((50, 50), 90, np.uint8), PP.Prep(32, kind="photo"))


def test_binary_ink_keeps_the_shape_without_grey_levels():
    """``Prep(binary=True)``: the ink pixels of the grey preparation, all at 255 (a light and a
    dark pen give the same input); recorded only when on (older models' metadata is grey); not
    for photos."""
    pale = np.full((60, 120), 255, np.uint8)
    pale[20:40, 10:110] = 150                       # a light stroke on white paper
    dark = pale.copy()
    dark[20:40, 10:110] = 40                        # the same stroke, a darker pen
    grey, flat = PP.Prep(40, width=80), PP.Prep(40, width=80, binary=True)
    g = PP.prepare(pale, grey)
    b_pale, b_dark = PP.prepare(pale, flat), PP.prepare(dark, flat)
    assert set(np.unique(b_pale)) == {0, 255} and np.array_equal(b_pale > 0, g > 0)
    assert np.array_equal(b_pale, b_dark)
    assert len(np.unique(g)) > 2                    # grey: the stroke's anti-aliased edge
    assert "binary" not in grey.to_dict() and flat.to_dict()["binary"] is True
    assert PP.Prep.from_dict(flat.to_dict()) == flat and PP.Prep.from_dict(grey.to_dict()) == grey
    with pytest.raises(ImageError, match="binary inputs are for ink"):
        PP.Prep(48, kind="photo", binary=True)


def test_thin_strokes_keep_the_writing_without_the_pen_s_width():
    """``Prep(thin=True)``: strokes thinned to their centre line before the fit, so a fine and a
    broad pen writing the same thing give nearly the same input, where as written the broad
    one has a third more ink at 40 × 80; recorded only when on; not for photos."""
    import cv2

    def page(pen):
        im = np.full((140, 300), 240, np.uint8)
        pts = np.array([[20, 110], [80, 25], [140, 110], [200, 30], [280, 100]])
        cv2.polylines(im, [pts], False, 30, pen)
        return im
    as_written, thin = (PP.Prep(40, width=80, binary=True),
                        PP.Prep(40, width=80, binary=True, thin=True))
    fine, broad = (PP.prepare(page(3), as_written) > 0), (PP.prepare(page(12), as_written) > 0)
    assert broad.sum() > 1.3 * fine.sum()
    t_fine, t_broad = PP.prepare(page(3), thin) > 0, PP.prepare(page(12), thin) > 0
    assert abs(int(t_broad.sum()) - int(t_fine.sum())) < 0.15 * t_fine.sum()
    assert (t_fine & t_broad).sum() > 0.6 * (t_fine | t_broad).sum()     # the same centre line
    assert t_fine.sum() < fine.sum()
    one = PP.thin_strokes(np.pad(np.full((9, 60), 255, np.uint8), 5))   # a 9-px bar
    assert set(np.unique(one)) == {0, 255} and (one > 0).sum(0).max() == 1
    assert "thin" not in as_written.to_dict() and thin.to_dict()["thin"] is True
    assert PP.Prep.from_dict(thin.to_dict()) == thin
    with pytest.raises(ImageError, match="thin strokes are for ink"):
        PP.Prep(48, kind="photo", thin=True)


def test_wide_frames_keep_a_wide_image_s_shape():
    """Issue 21, 2: a signature (~2:1) fitted into a square loses half its height; a frame
    twice as wide keeps it, for ink (both fits) and photos (both fits), and old models'
    metadata (no width) is square."""
    sig = np.zeros((100, 300), np.uint8)
    sig[20:80, 10:290] = 255                       # a 60 x 280 box of ink
    square = PP.prepare(sig, PP.Prep(40))
    wide = PP.prepare(sig, PP.Prep(40, width=80))
    assert square.shape == (40, 40) and wide.shape == (40, 80)

    def extent(a):
        ys, xs = np.nonzero(a > 127)
        return ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    # centre fit: into 20/28 of the frame, aspect kept: 280 px wide -> 57 of 80 (29 of 40), so
    # the wide frame keeps twice the height
    (hs, ws), (hw, ww) = extent(square), extent(wide)
    assert (hs, hw) == (6, 12) and abs(ws - 29) <= 1 and abs(ww - 57) <= 1
    cy, cx = centre_of_mass(wide)
    assert cy == pytest.approx(19.5, abs=0.5) and cx == pytest.approx(39.5, abs=0.5)
    assert extent(PP.prepare(sig, PP.Prep(40, "box", width=80)))[1] == 80   # box: the width
    for fit in ("crop", "pad"):
        assert PP.prepare(sig // 2 + 40, PP.Prep(40, fit, "photo", width=80)).shape == (40, 80)
    p = PP.Prep(40, width=80)
    assert p.shape == (40, 80) and PP.Prep.from_dict(p.to_dict()) == p
    assert PP.Prep.from_dict({"size": 32}).shape == (32, 32) == PP.Prep(32).shape
    with pytest.raises(ImageError, match="input width must be 40 to 160 pixels"):
        PP.Prep(40, width=30)
    with pytest.raises(ImageError, match="input width must be 40 to 160 pixels"):
        PP.Prep(40, width=161)


# --- the face crop (issue 21, 4) ------------------------------------------------------------

def test_the_face_crop_finds_the_face_in_a_larger_scene():
    """A face at an offset in a 300 x 400 room: the box holds it (the face's centre, about its
    size), and the network input is the face, the same as from a tight crop of it."""
    import cv2

    from tests.conftest import cartoon_face
    face = cartoon_face(3, 60)                          # 120 x 120, the oval ~66 x 66
    room = cv2.GaussianBlur(np.random.default_rng(0).uniform(0, 255, (300, 400)).astype(
        np.float32), (0, 0), 10).clip(40, 160).astype(np.uint8)
    room[150:270, 40:160] = face
    x, y, w, h = PP.find_face(room)
    assert abs(x + w / 2 - 100) < 12 and abs(y + h / 2 - 210) < 15 and 55 < w < 120
    p = PP.Prep(48, kind="photo", face=True)
    from_room = PP.prepare(room, p).astype(float)
    from_crop = PP.prepare(face, p).astype(float)
    centre = PP.prepare(room, PP.Prep(48, kind="photo")).astype(float)  # without: the wall
    assert np.abs(from_room - from_crop).mean() < 0.4 * np.abs(centre - from_crop).mean()


def test_no_face_is_a_clear_error_and_the_crop_is_for_photos():
    wall = (np.random.default_rng(1).uniform(0, 255, (120, 160))).astype(np.uint8)
    assert PP.find_face(wall) is None
    with pytest.raises(PP.NoFaceError, match="no face found: use a photo with one face"):
        PP.prepare(wall, PP.Prep(32, kind="photo", face=True))
    assert issubclass(PP.NoFaceError, ImageError)         # every page shows it as an input problem
    with pytest.raises(ImageError, match="face crop is for photos"):
        PP.Prep(32, kind="ink", face=True)
    p = PP.Prep(48, "crop", "photo", face=True)
    assert p.to_dict()["face"] is True and PP.Prep.from_dict(p.to_dict()) == p
    assert PP.Prep.from_dict({"size": 48, "kind": "photo"}).face is False   # models before it


def test_a_missing_face_detector_says_how_to_get_it(monkeypatch, tmp_path):
    """OpenCV 5's wheels have no cascades: one line naming the package that has them."""
    import cv2
    monkeypatch.setattr(cv2.data, "haarcascades", str(tmp_path) + "/")
    monkeypatch.setattr(PP, "_cascades", __import__("threading").local())
    with pytest.raises(ImageError, match="face detector is missing.*opencv-python-headless>=4.10,<5"):
        PP.find_face(np.zeros((50, 50), np.uint8))


def test_detect_kind_tells_photos_from_ink(mnist_test):
    from tests.conftest import photo_images
    photos = [i for imgs in photo_images().values() for i in imgs]
    assert PP.detect_kind(photos)[0] == "photo"
    assert PP.detect_kind([_face(), _face(0.5, 1)])[0] == "photo"
    assert PP.detect_kind(list(mnist_test.images[:40]))[0] == "ink"
    assert PP.detect_kind(list(255 - mnist_test.images[:40]))[0] == "ink"   # a scan
    kind, why = PP.detect_kind(list(mnist_test.images[:10]))
    assert "bits" in why and "16-level" in why
    assert PP.image_kind(_face()) == "photo" and PP.image_kind(
        mnist_test.images[0]) == "ink"


def test_ink_aspect_is_the_ink_box_of_the_ink_preprocessing():
    """Width over height of the ink's box, whatever the paper around it or the ink's colour."""
    page = np.full((200, 300), 250, np.uint8)
    page[90:110, 40:240] = 30                       # a stroke 200 wide, 20 high
    assert PP.ink_aspect(page) == pytest.approx(10.0, rel=0.05)
    assert PP.ink_aspect(np.ascontiguousarray(page.T)) == pytest.approx(0.1, rel=0.05)
    assert PP.ink_aspect(255 - page) == pytest.approx(10.0, rel=0.05)     # white on black
    assert PP.ink_aspect(np.full((50, 50), 255, np.uint8)) is None        # blank


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["1", "P", "I;16"])
def test_large_1bit_palette_and_16bit_pngs_are_read(mode):
    """Issue 24, 11: a 2000-px 1-bit, palette or 16-bit PNG was refused ("image has wrong
    mode": Image.reduce takes none of them); each reads as the same stroke."""
    ink = np.zeros((2000, 2000), bool)
    ink[500:1500, 900:1100] = True
    im = {"1": lambda: Image.fromarray(ink),
          "P": lambda: Image.fromarray(ink.astype(np.uint8) * 255).convert("RGB").quantize(4),
          "I;16": lambda: Image.fromarray(ink.astype(np.uint16) * 60000)}[mode]()
    assert im.mode == mode
    gray = load_image(_png(im))
    assert gray.dtype == np.uint8 and gray.shape == (1000, 1000)   # reduced to the work side
    assert gray[500, 500] >= 250 and gray[100, 100] == 0            # stroke white, ground black
    assert PP.prepare(_png(im)).max() == 255


def test_16bit_image_is_scaled_by_its_range_not_clipped():
    """Issue 24, 11: background 1000 and ink 30000 in 16 bits were both clipped to 255 and the
    image called blank; scaled by its brightest value, the stroke stands out, from a file and
    from a PIL image alike. A flat 16-bit image is still blank."""
    a = np.full((300, 300), 1000, np.uint16)
    a[100:200, 140:160] = 30000
    for source in (_png(Image.fromarray(a)), Image.fromarray(a)):
        out = PP.prepare(source)
        assert out.max() == 255 and (out > 0).mean() < 0.5
    gray = load_image(_png(Image.fromarray(a)))
    assert gray[150, 150] == 255 and gray[10, 10] == round(1000 * 255 / 30000)
    with pytest.raises(ImageError, match="blank"):
        PP.prepare(_png(Image.fromarray(np.full((50, 50), 1000, np.uint16))))
