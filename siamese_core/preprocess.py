"""Images in, network inputs out (seed part C's input side).

``prepare(image, Prep(...))`` is the one transform from a raw image to what a network sees; a
model records its ``Prep`` in its metadata, and training data of user images, ``SiameseModel``
and every page go through it. Its default follows how MNIST itself was made: grayscale, white ink
on black, crop to the ink, fit into 20x20 keeping the aspect ratio, then centre the centre of
mass in a 28x28 frame. ``fit="box"`` centres the ink's bounding box instead and fills the frame
(wide images such as signatures keep their whole width).
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
FITS = ("centre", "box")         # how the ink is fitted into the frame (Prep.fit)
MIN_CONTRAST = 32        # grey levels between ink and background below which nothing is drawn
OUT, BOX = 28, 20


@dataclass(frozen=True)
class Prep:
    """How raw images become network inputs: ``size`` pixels a side, white ink on black, the ink
    cropped and either fitted into 20/28 of the frame with its centre of mass centred
    ("centre", as MNIST) or fitted into the whole frame with its box centred ("box")."""

    size: int = OUT
    fit: str = "centre"

    def __post_init__(self):
        if not isinstance(self.size, int) or not MIN_INPUT <= self.size <= MAX_INPUT:
            raise ImageError(f"input size must be {MIN_INPUT} to {MAX_INPUT} pixels, got "
                             f"{self.size!r}")
        if self.fit not in FITS:
            raise ImageError(f"unknown fit {self.fit!r}: use {' or '.join(FITS)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None, size: int = OUT) -> "Prep":
        d = d or {}
        return cls(size=int(d.get("size", size)), fit=str(d.get("fit", "centre")))


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
    factor = -(-max(im.size) // work_side)           # ceil
    if factor > 1:
        im = im.reduce(factor)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        return to_gray(np.asarray(im.convert("RGBA")))
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


def prepare(image, prep: Prep = Prep()) -> np.ndarray:
    """Any drawn or uploaded image -> uint8 [size, size], white ink on black, as ``prep`` says.

    Accepts a path, bytes, a PIL image or an array (L/RGB/RGBA, any size, either polarity).
    Raises ``ImageError("nothing drawn ...")`` when there is no ink; never returns NaN.
    """
    import cv2

    size = prep.size
    if isinstance(image, (str, Path, bytes, bytearray, io.IOBase)):
        gray = load_image(image)
    elif hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image
        gray = to_gray(np.asarray(image.convert("RGBA") if "A" in image.mode else image.convert("L")))
    else:
        gray = to_gray(image)
    if max(gray.shape, default=0) > WORK_SIDE:
        f = WORK_SIDE / max(gray.shape)
        gray = cv2.resize(gray, (max(1, round(gray.shape[1] * f)), max(1, round(gray.shape[0] * f))),
                          interpolation=cv2.INTER_AREA)
    box = max(1, round(size * BOX / OUT)) if prep.fit == "centre" else size
    if gray.size == 0 or int(gray.max()) - int(gray.min()) < MIN_CONTRAST:
        raise ImageError("nothing drawn: the image is blank")
    gray = to_mnist_polarity(gray)
    # Otsu separates ink from background; TOZERO keeps the ink's anti-aliased grey levels.
    t, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    _, ink = cv2.threshold(gray, t, 255, cv2.THRESH_TOZERO)
    x, y, w, h = cv2.boundingRect(ink)  # of the non-zero pixels
    if w == 0 or h == 0:
        raise ImageError("nothing drawn: the image is blank")
    crop = ink[y:y + h, x:x + w]
    scale = box / max(w, h)
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
    c = (size - 1) / 2  # pixel-index centre, 13.5 for 28 px
    shift = np.array([[1, 0, c - cx], [0, 1, c - cy]], np.float32)
    out = cv2.warpAffine(small, shift, (size, size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if out.max() == 0:
        raise ImageError("nothing drawn: the image is blank")
    # Stretch to full contrast: MNIST strokes peak at 255.
    return cv2.convertScaleAbs(out, alpha=255.0 / float(out.max()))
