"""Images in, network inputs out (seed part C's input side).

``prepare(image, Prep(...))`` is the one transform from a raw image to what a network sees; a
model records its ``Prep`` in its metadata, and training data of user images, ``SiameseModel``
and every page go through it. Its default follows how MNIST itself was made: grayscale, white ink
on black, crop to the ink, fit into 20x20 keeping the aspect ratio, then centre the centre of
mass in a 28x28 frame. ``fit="box"`` centres the ink's bounding box instead and fills the frame
(wide images such as signatures keep their whole width).

Two kinds of image (``Prep.kind``): **ink** (drawings, characters, signatures, scans: the ink is
separated from its background and cropped) and **photo** (faces, objects, medical images: every
grey level kept, lighting evened out, the image fitted whole, as it is). Ink
preprocessing on a face keeps only its brightest parts (BENCHMARKS.md, photo kind), and photo
preprocessing on ink keeps paper texture and page position, so a model records its kind and
``detect_kind`` tells them apart for a new dataset.
"""
from __future__ import annotations

import io
import struct
import threading
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, cast

import numpy as np

from .errors import ImageError

ALLOWED_FORMATS = ["PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF"]
MAX_SIDE = 4096          # pixels; a canvas is 280, a phone photo ~4000
MAX_PIXELS = MAX_SIDE * MAX_SIDE
# Decoded images are reduced to at most this many pixels a side (JPEG already while decoding):
# the network sees 28 px, and a full-size float copy of a 16-Mpx image was ~270 MB per upload.
WORK_SIDE = 1024
# At most this many large images are decoded at once in a process (a server's sessions share
# it): a 4096 x 4096 RGBA PNG needs 64 MB while decoding, so the peak stays bounded.
_decoding = threading.BoundedSemaphore(2)
MIN_INPUT, MAX_INPUT = 16, 128   # image sizes (px) a network can be built for
# Wide inputs (signatures): the frame at most this many times as wide as it is high.
MAX_ASPECT = 4
KINDS = ("ink", "photo")
# How an image is fitted into the square frame (Prep.fit), per kind; the first is the default.
# Ink: centre of mass in 20/28 (MNIST) or the ink's box to the whole frame. Photo: the central
# square (a face in a portrait photo; nothing squeezed) or the whole image, padded.
KIND_FITS = {"ink": ("centre", "box"), "photo": ("crop", "pad")}
FITS = tuple(f for fits in KIND_FITS.values() for f in fits)
# Photos' lighting is evened out by Tan & Triggs' chain (IEEE TIP 2010): gamma, difference of
# Gaussians, two-stage contrast equalisation, tanh compression; their parameters, the sigmas
# scaled from the 48-px frame. Raw-pixel 10-way one-shot on 38 people under 23 lightings: 52 %
# on the grey levels as they are, 73 % after CLAHE, 91 % after this; on 15 people with
# expressions and glasses 59 / 62 / 69 % (bench/verification.py --peers-only, BENCHMARKS.md).
TT_GAMMA, TT_SIGMAS, TT_ALPHA, TT_TAU = 0.2, (1.0, 2.0), 0.1, 10.0
MIN_CONTRAST = 32        # grey levels between ink and background below which nothing is drawn
OUT, BOX = 28, 20


@dataclass(frozen=True)
class Prep:
    """How raw images become network inputs: ``size`` pixels high, ``width`` wide (None: a
    square). Ink: white ink on black, the ink cropped and either fitted into 20/28 of the frame
    with its centre of mass centred ("centre", as MNIST) or fitted into the whole frame with its
    box centred ("box"). Photo: grey levels kept (lighting evened out), the central part of the
    frame's shape ("crop") or the whole image padded with its edge ("pad"). ``fit=None``: the
    kind's default. Wide frames keep a wide image's shape (a signature is ~2:1) where a square
    would shrink it to half its height."""

    size: int = OUT
    fit: str | None = None
    kind: str = "ink"
    face: bool = False       # photo: crop to the face first (``crop_face``)
    width: int | None = None
    # Ink: every ink pixel at one level, the shape without its grey levels. A pen's darkness
    # is no evidence of who wrote (in the 64-writer signatures it marks the forgeries).
    binary: bool = False
    # Ink: strokes thinned to their centre line before the fit, so every stroke is about one
    # output pixel wide whatever pen drew it (in the 64-writer signatures the forgers' pens
    # are thinner as well as darker: the width alone tells forged from genuine as well as HOG).
    thin: bool = False

    def __post_init__(self):
        if not isinstance(self.size, int) or not MIN_INPUT <= self.size <= MAX_INPUT:
            raise ImageError(f"input size must be {MIN_INPUT} to {MAX_INPUT} pixels, got "
                             f"{self.size!r}")
        if self.width is None:
            object.__setattr__(self, "width", self.size)
        elif (not isinstance(self.width, int) or isinstance(self.width, bool)
              or not self.size <= self.width <= MAX_ASPECT * self.size):
            raise ImageError(f"input width must be {self.size} to {MAX_ASPECT * self.size} "
                             f"pixels (1 to {MAX_ASPECT} times the height), got {self.width!r}")
        if self.kind not in KINDS:
            raise ImageError(f"unknown image kind {self.kind!r}: use {' or '.join(KINDS)}")
        if self.face and self.kind != "photo":
            raise ImageError("the face crop is for photos: use it with the photo kind")
        if self.binary and self.kind != "ink":
            raise ImageError("binary inputs are for ink: photos keep their grey levels")
        if self.thin and self.kind != "ink":
            raise ImageError("thin strokes are for ink: photos have no strokes to thin")
        fits = KIND_FITS[self.kind]
        if self.fit is None:
            object.__setattr__(self, "fit", fits[0])
        elif self.fit not in fits:
            raise ImageError(f"fit {self.fit!r} is not for {self.kind} images: use "
                             f"{' or '.join(fits)}")

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the network inputs."""
        return self.size, cast(int, self.width)

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.width == self.size:
            del d["width"]      # square: the metadata of models before wide inputs
        if not self.binary:
            del d["binary"]     # grey levels: the metadata of models before binary inputs
        if not self.thin:
            del d["thin"]       # strokes as drawn: the metadata of models before thin strokes
        return d

    @classmethod
    def from_dict(cls, d: dict | None, size: int = OUT) -> "Prep":
        """From a model's metadata; models saved before kinds existed are ink, before widths
        square."""
        d = d or {}
        fit, width = d.get("fit"), d.get("width")
        return cls(size=int(d.get("size", size)), fit=None if fit is None else str(fit),
                   kind=str(d.get("kind", "ink")), face=d.get("face") is True,
                   width=None if width is None else int(width), binary=d.get("binary") is True,
                   thin=d.get("thin") is True)


def load_image(source: str | Path | bytes | bytearray | io.IOBase,
               work_side: int = WORK_SIDE) -> np.ndarray:
    """Open an untrusted image safely (format allow-list, size cap, first frame, bounded memory)
    -> uint8 [H, W], at most ``work_side`` pixels a side (reduced while decoding).

    Transparent images are flattened onto the background that contrasts with their ink, so a
    black-on-transparent PNG and a white-on-transparent canvas both keep their strokes.
    """
    from PIL import Image, UnidentifiedImageError

    name = f"{Path(source).name}: " if isinstance(source, (str, Path)) else ""
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # A binary file object (io.IOBase at run time; PIL's stubs name it IO[bytes]).
            with Image.open(cast(IO[bytes], source), formats=ALLOWED_FORMATS) as im:
                w, h = im.size
                if max(w, h) > MAX_SIDE or w * h > MAX_PIXELS:
                    raise ImageError(f"{name}image is {w}x{h} pixels; at most {MAX_SIDE} a side")
                if w == 0 or h == 0:
                    raise ImageError(f"{name}image is empty ({w}x{h} pixels)")
                with _decoding:
                    return _decode(im, work_side)
    except FileNotFoundError:
        raise ImageError(f"no such file: {source}") from None
    except IsADirectoryError:
        raise ImageError(f"{source} is a directory, not an image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{name}image is too large (decompression bomb?); at most "
                         f"{MAX_SIDE} pixels a side") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}not a supported image (PNG, JPEG, BMP, GIF, WebP or TIFF)") \
            from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, MemoryError) as e:
        raise ImageError(f"{name}cannot read image ({str(e)[:120]})") from None


def _decode(im, work_side: int) -> np.ndarray:
    """First frame, reduced to ``work_side`` (JPEG: by the decoder itself), then grayscale."""
    im.seek(0)
    if im.format == "JPEG":
        im.draft(im.mode, (work_side, work_side))   # DCT scaling: 1/2, 1/4, 1/8 while decoding
    im.load()
    im = _reducible(im)
    factor = -(-max(im.size) // work_side)           # ceil
    if factor > 1:
        im = im.reduce(factor)
    return _pil_gray(im)


def _reducible(im):
    """1-bit, palette and 16-bit images in a mode ``Image.reduce`` takes (it takes none of
    those), keeping transparency and the full 16-bit range ("I")."""
    if im.mode == "1":
        return im.convert("L")
    if im.mode == "P":
        return im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode.startswith("I;16"):
        return im.convert("I")
    return im


def _pil_gray(im) -> np.ndarray:
    """A PIL image of any mode -> uint8 grey. Transparency counts (``to_gray``); an image of
    more than 8 bits (16-bit, 32-bit, float) is scaled by its own brightest value when that
    exceeds 255, where ``convert("L")`` would clip a background of 1000 and ink of 30000 both
    to white and call the image blank."""
    im = _reducible(im)
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        return to_gray(np.asarray(im.convert("RGBA")))
    if im.mode.startswith("I") or im.mode == "F":
        a = np.nan_to_num(np.asarray(im.convert("F") if im.mode != "F" else im, dtype=np.float32))
        top = float(a.max()) if a.size else 0.0
        if top > 255.0:
            a = a * (255.0 / top)
        elif im.mode == "F" and 0.0 < top <= 1.0:
            a = a * 255.0                            # a float image in 0..1
        return np.clip(a, 0, 255).astype(np.uint8)
    return np.asarray(im.convert("L"))


def to_gray(image: np.ndarray) -> np.ndarray:
    """Any array image (L, RGB, RGBA; uint8 or float 0..1/0..255) -> uint8 [H, W].

    Uses OpenCV's uint8 colour conversion (same weights as Pillow's "L"): a float64 version of
    this function was 80 % of the time of a whole verdict (bench/latency.py). The alpha path
    stays in uint8 too: no float copy of a large image.
    """
    import cv2

    a = np.asarray(image)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise ImageError(f"expected a 2-D image or H x W x 1/3/4 channels, got shape {a.shape}")
    if a.dtype != np.uint8:
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
            raise ImageError(f"expected a numeric image array, got dtype {a.dtype}")
        with np.errstate(over="ignore", invalid="ignore"):   # huge values become inf, then 255
            a = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)
        if a.size and a.max() <= 1.0:
            a = a * 255.0
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        return a
    if a.shape[2] == 1:
        return np.ascontiguousarray(a[..., 0])
    a = np.ascontiguousarray(a)
    if a.shape[2] == 3:
        return cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
    gray = cv2.cvtColor(a, cv2.COLOR_RGBA2GRAY)
    alpha = np.ascontiguousarray(a[..., 3])
    if alpha.min() == 255:
        return gray
    if alpha.max() == 0:
        return np.zeros(a.shape[:2], np.uint8)
    ink = cv2.mean(gray, mask=alpha)[0]        # mean grey of the (partly) opaque pixels
    if ink < 128:   # dark ink: onto a light background, 255 - (255 - g) * alpha
        # cv2's stubs have no overload for a scalar first operand, which cv2 accepts.
        inverse = cv2.subtract(255, gray)  # type: ignore[call-overload]
        return cv2.subtract(255, cv2.multiply(inverse, alpha, scale=1 / 255))  # type: ignore[call-overload]
    return cv2.multiply(gray, alpha, scale=1 / 255)   # light ink onto black


def to_mnist_polarity(gray: np.ndarray, size: int | None = None) -> np.ndarray:
    """Invert when the background (the border) is light, optionally resize to size x size."""
    import cv2

    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    out = 255 - gray if np.median(border) > 127 else gray
    if size is not None and out.shape != (size, size):
        out = cv2.resize(out, (size, size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(out, dtype=np.uint8)


def preprocess(image, size: int = OUT) -> np.ndarray:
    """``prepare`` with the MNIST-style default at ``size`` pixels."""
    return prepare(image, Prep(size))


def image_header(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) of an encoded image from its header alone (nothing decoded),
    or None when it is not an image of ``ALLOWED_FORMATS`` (decoding then says why)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as im:
            return str(im.format), int(im.size[0]), int(im.size[1])
    except Exception:  # noqa: BLE001 - any failure here is reported by the decoding itself
        return None


def prepare(image, prep: Prep = Prep()) -> np.ndarray:
    """Any drawn, photographed or uploaded image -> uint8 [size, width] as ``prep`` says (ink:
    white ink on black).

    Accepts a path, bytes, a PIL image or an array (L/RGB/RGBA, any size, either polarity).
    Raises ``ImageError("nothing drawn ...")`` when there is no ink (a photo: one flat colour);
    never returns NaN.
    """
    gray = _work_gray(image)
    if gray.size == 0 or int(gray.max()) - int(gray.min()) < MIN_CONTRAST:
        raise ImageError("nothing drawn: the image is blank" if prep.kind == "ink" else
                         "the photo is blank (one flat colour)")
    return _prepare_photo(gray, prep) if prep.kind == "photo" else _prepare_ink(gray, prep)


def _work_gray(image) -> np.ndarray:
    """Any accepted image -> uint8 grey, at most ``WORK_SIDE`` a side."""
    import cv2

    if isinstance(image, (str, Path, bytes, bytearray, io.IOBase)):
        gray = load_image(image)
    elif hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image
        gray = _pil_gray(image)
    else:
        gray = to_gray(image)
    if max(gray.shape, default=0) > WORK_SIDE:
        f = WORK_SIDE / max(gray.shape)
        gray = cv2.resize(gray, (max(1, round(gray.shape[1] * f)), max(1, round(gray.shape[0] * f))),
                          interpolation=cv2.INTER_AREA)
    return gray


def _prepare_photo(gray: np.ndarray, prep: Prep) -> np.ndarray:
    """The central square or the whole image (padded with its own edge, so no artificial border
    appears) at ``size``, then its lighting evened out (``even_lighting``)."""
    import cv2

    size, width = prep.shape
    if prep.face:
        gray = crop_face(gray)
    h, w = gray.shape
    if prep.fit == "crop":
        # The largest central part of the frame's shape.
        ch, cw = (h, min(w, max(1, round(h * width / size)))) if w * size >= h * width else \
            (min(h, max(1, round(w * size / width))), w)
        y, x = (h - ch) // 2, (w - cw) // 2
        fitted = cv2.resize(gray[y:y + ch, x:x + cw], (width, size), interpolation=cv2.INTER_AREA)
    else:
        f = min(size / h, width / w)
        nw, nh = min(width, max(1, round(w * f))), min(size, max(1, round(h * f)))
        small = cv2.resize(gray, (nw, nh), interpolation=cv2.INTER_AREA)
        top, left = (size - nh) // 2, (width - nw) // 2
        fitted = cv2.copyMakeBorder(small, top, size - nh - top, left, width - nw - left,
                                    cv2.BORDER_REPLICATE)
    return even_lighting(fitted)


class NoFaceError(ImageError):
    """A face-crop model was given an image in which no face was found."""


# The face detector: OpenCV's frontal-face Haar cascade, which opencv-python-headless 4.x ships
# in its wheel (cv2/data; 5.x wheels dropped it) - nothing is downloaded and no TensorFlow is
# needed. Detection runs on a copy at most FACE_SIDE px a side, padded by FACE_PAD of each side
# with the image's own edge: a face that fills its frame (a face database's tight crop) has no
# context around it for the cascade's windows otherwise. The box found is widened by FACE_MARGIN
# a side, so the crop holds the whole face (the cascade's box runs from the brows to the mouth).
FACE_CASCADE = "haarcascade_frontalface_default.xml"
FACE_SIDE, FACE_PAD, FACE_MARGIN, FACE_MIN = 320, 0.25, 0.15, 0.1
_cascades = threading.local()   # CascadeClassifier.detectMultiScale is not safe across threads


def _cascade():
    import cv2

    c = getattr(_cascades, "face", None)
    if c is None:
        path = Path(getattr(getattr(cv2, "data", None), "haarcascades", "")) / FACE_CASCADE
        c = cv2.CascadeClassifier(str(path))
        if c.empty():
            raise ImageError(f"the face detector is missing ({FACE_CASCADE} is not in this "
                             f"OpenCV): pip install 'opencv-python-headless>=4.10,<5'")
        _cascades.face = c
    return c


def find_face(gray: np.ndarray) -> tuple[int, int, int, int] | None:
    """The clearest frontal face in a uint8 grey image as (x, y, w, h) in its pixels, widened by
    ``FACE_MARGIN`` and clipped to the image; None when there is none."""
    import cv2

    h, w = gray.shape
    f = min(1.0, FACE_SIDE / max(h, w))
    small = cv2.resize(gray, (max(1, round(w * f)), max(1, round(h * f))),
                       interpolation=cv2.INTER_AREA) if f < 1 else gray
    py, px = round(small.shape[0] * FACE_PAD), round(small.shape[1] * FACE_PAD)
    padded = cv2.copyMakeBorder(cv2.equalizeHist(small), py, py, px, px, cv2.BORDER_REPLICATE)
    least = max(24, round(min(small.shape) * FACE_MIN))
    found, votes = _cascade().detectMultiScale2(padded, scaleFactor=1.1, minNeighbors=5,
                                                minSize=(least, least))
    # The face the detector is surest of: the most overlapping detections (a face draws ~100,
    # a face-like patch of wallpaper a few), whose centre is in the image (not in the padding).
    inside = [(int(n), tuple(int(v) for v in r)) for r, n in zip(found, votes)
              if px <= r[0] + r[2] / 2 < px + small.shape[1]
              and py <= r[1] + r[3] / 2 < py + small.shape[0]]
    if not inside:
        return None
    x, y, bw, bh = max(inside)[1]
    m = FACE_MARGIN
    x0, y0 = (x - px - m * bw) / f, (y - py - m * bh) / f
    x1, y1 = (x - px + (1 + m) * bw) / f, (y - py + (1 + m) * bh) / f
    x0, y0, x1, y1 = max(0, round(x0)), max(0, round(y0)), min(w, round(x1)), min(h, round(y1))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return x0, y0, x1 - x0, y1 - y0


def crop_face(gray: np.ndarray) -> np.ndarray:
    """The clearest face of a grey image, cropped (``find_face``); ``NoFaceError`` when none."""
    box = find_face(gray)
    if box is None:
        raise NoFaceError("no face found: use a photo with one face, seen from the front, "
                          "in good light")
    x, y, w, h = box
    return np.ascontiguousarray(gray[y:y + h, x:x + w])


def even_lighting(gray: np.ndarray) -> np.ndarray:
    """Tan & Triggs' illumination normalisation of a uint8 image -> uint8, mid-grey 128 where
    nothing changes: shadows and highlights lose their weight, edges and features keep it."""
    import cv2

    k = gray.shape[0] / 48.0
    x = np.power(gray.astype(np.float32) / 255.0 + 1e-3, TT_GAMMA)
    x = cv2.GaussianBlur(x, (0, 0), TT_SIGMAS[0] * k) - cv2.GaussianBlur(x, (0, 0), TT_SIGMAS[1] * k)
    a, tau = TT_ALPHA, TT_TAU
    x = x / (np.mean(np.abs(x) ** a) ** (1 / a) + 1e-6)
    x = x / (np.mean(np.minimum(np.abs(x), tau) ** a) ** (1 / a) + 1e-6)
    x = tau * np.tanh(x / tau)
    return np.clip((x + tau) * (255.0 / (2 * tau)), 0, 255).astype(np.uint8)


def _ink(gray: np.ndarray) -> np.ndarray:
    """The ink of a grey image, white on black, cropped to its box."""
    import cv2

    gray = to_mnist_polarity(gray)
    # Otsu separates ink from background; TOZERO keeps the ink's anti-aliased grey levels.
    t, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    _, ink = cv2.threshold(gray, t, 255, cv2.THRESH_TOZERO)
    x, y, w, h = cv2.boundingRect(ink)  # of the non-zero pixels
    if w == 0 or h == 0:
        raise ImageError("nothing drawn: the image is blank")
    return ink[y:y + h, x:x + w]


def binary_ink(x: np.ndarray) -> np.ndarray:
    """Ink (white on black) with every ink pixel at 255: its shape without its grey levels
    (``Prep.binary``)."""
    return np.where(np.asarray(x) > 0, np.uint8(255), np.uint8(0))


def thin_strokes(ink: np.ndarray) -> np.ndarray:
    """Ink (white on black) thinned to its centre lines, one pixel wide, at 255 (``Prep.thin``):
    its shape without the pen's width. scikit-image's skeletonize (Zhang's method in 2-D)."""
    from skimage.morphology import skeletonize

    return np.where(skeletonize(np.asarray(ink) > 0), np.uint8(255), np.uint8(0))


def ink_aspect(image) -> float | None:
    """Width over height of an ink image's ink box, as the ink preprocessing crops it (None:
    blank). ~1 for characters and digits, ~2.4 for signatures."""
    try:
        h, w = _ink(_work_gray(image)).shape
    except ImageError:
        return None
    return w / h


def _prepare_ink(gray: np.ndarray, prep: Prep) -> np.ndarray:
    """Otsu's ink, cropped, fitted and centred (the module's MNIST recipe)."""
    import cv2

    size, width = prep.shape
    # The box the ink is fitted into: 20/28 of the frame (MNIST) or all of it.
    bh, bw = ((max(1, round(size * BOX / OUT)), max(1, round(width * BOX / OUT)))
              if prep.fit == "centre" else (size, width))
    crop = _ink(gray)
    if prep.thin:
        crop = thin_strokes(crop)
    h, w = crop.shape
    scale = min(bw / w, bh / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(crop, (nw, nh), interpolation=interp)
    m = cv2.moments(small)
    if m["m00"] == 0:
        raise ImageError("nothing drawn: the image is blank")
    if prep.fit == "centre":
        cx, cy = m["m10"] / m["m00"], m["m01"] / m["m00"]
    else:
        cx, cy = (nw - 1) / 2, (nh - 1) / 2
    # Translate so the centre of mass lands on the frame centre.
    # pixel-index centre, 13.5 for 28 px
    c, cw = (size - 1) / 2, (width - 1) / 2
    shift = np.array([[1, 0, cw - cx], [0, 1, c - cy]], np.float32)
    out = cv2.warpAffine(small, shift, (width, size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if out.max() == 0:
        raise ImageError("nothing drawn: the image is blank")
    if prep.binary:
        return binary_ink(out)
    # Stretch to full contrast: MNIST strokes peak at 255.
    return cv2.convertScaleAbs(out, alpha=255.0 / float(out.max()))


# Entropy (bits) of a 16-bin grey histogram: measured medians over datasets' images, ink 0.39
# (Omniglot), 0.92 (scanned signatures), 1.46 (MNIST, max 1.64); photos 2.46 (Yale faces, min
# 1.85) and 3.29 (cropped Extended Yale B) — bench/verification.py --kinds.
PHOTO_ENTROPY = 2.0


def grey_entropy(gray: np.ndarray) -> float:
    """Bits of a 16-bin histogram of ``gray``: ~0.5-1.5 for ink on a background (two levels and
    their edges), 2-4 for photographs (grey levels everywhere)."""
    h = np.bincount((np.asarray(gray, np.uint8) >> 4).ravel(), minlength=16) / max(1, gray.size)
    h = h[h > 0]
    return float(-(h * np.log2(h)).sum())


def detect_kind(images: list[np.ndarray]) -> tuple[str, str]:
    """(kind, why) for a sample of a dataset's raw grey images: photo when the median image's
    grey levels spread beyond what ink on a background gives (``PHOTO_ENTROPY``)."""
    if not images:
        return "ink", "no images to look at"
    e = float(np.median([grey_entropy(g) for g in images]))
    if e >= PHOTO_ENTROPY:
        return "photo", (f"grey levels spread like a photograph's ({e:.1f} bits of a 16-level "
                         f"histogram; drawings and scans stay under {PHOTO_ENTROPY:.0f})")
    return "ink", (f"ink on a plain background ({e:.1f} bits of a 16-level histogram; "
                   f"photographs have {PHOTO_ENTROPY:.0f} or more)")


def image_kind(image) -> str:
    """The kind one raw image looks like ("photo" or "ink"; ``detect_kind`` on one image)."""
    return detect_kind([_work_gray(image)])[0]
