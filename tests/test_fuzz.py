"""Property-based fuzzing (issue 15): any bytes or array into image decoding, preprocessing and
the IDX / folder loaders gives a network input or an ``ImageError`` / ``DataError`` — never
another exception, never NaN, never a huge allocation."""
import gzip
import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from siamese_core import DataError, ImageError, preprocess
from siamese_core.data import load_dataset, read_idx
from siamese_core.preprocess import load_image

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def assert_network_input(x, size=28):
    assert x.dtype == np.uint8 and x.shape == (size, size)
    assert int(x.max()) == 255          # full contrast, as MNIST


def valid_image_bytes(draw_w, draw_h, mode, fmt, seed) -> bytes:
    rng = np.random.default_rng(seed)
    channels = {"L": 1, "RGB": 3, "RGBA": 4, "LA": 2}[mode]
    a = rng.integers(0, 256, (draw_h, draw_w, channels), dtype=np.uint8)
    im = Image.fromarray(a[..., 0] if channels == 1 else a, mode)
    if fmt == "JPEG" and mode not in ("L", "RGB"):
        im = im.convert("RGB")
    elif fmt in ("BMP", "GIF") and mode == "LA":
        im = im.convert("RGBA")
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


@FUZZ
@given(st.binary(max_size=4096))
def test_any_bytes_are_an_image_or_an_image_error(data):
    try:
        assert_network_input(preprocess(data))
    except ImageError:
        pass


@FUZZ
@given(w=st.integers(1, 120), h=st.integers(1, 120), mode=st.sampled_from(["L", "RGB", "RGBA", "LA"]),
       fmt=st.sampled_from(["PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF"]), seed=st.integers(0, 99),
       flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8))
@pytest.mark.filterwarnings("ignore::UserWarning")   # Pillow's notes on damaged TIFF tags
def test_corrupted_real_images_are_handled(w, h, mode, fmt, seed, flips):
    """Real files of every allowed format, with bytes overwritten: the decoders' error paths."""
    data = bytearray(valid_image_bytes(w, h, mode, fmt, seed))
    for pos, val in flips:
        data[pos % len(data)] = val
    try:
        assert_network_input(preprocess(bytes(data)))
    except ImageError:
        pass


@FUZZ
@given(hnp.arrays(dtype=st.sampled_from([np.uint8, np.float32, np.float64, np.int16, np.bool_]),
                  shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=40),
                  elements=None))
def test_any_array_is_an_image_or_an_image_error(a):
    try:
        x = preprocess(a)
    except ImageError:
        return
    assert_network_input(x)
    assert not np.isnan(x.astype(np.float32)).any()


@pytest.mark.parametrize("w, h", [(100_000, 100_000), (4097, 10), (1, 70_000)])
def test_png_headers_declaring_huge_images_are_refused_before_decoding(w, h):
    """A 60-byte PNG that claims billions of pixels: refused from its header alone."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    with pytest.raises(ImageError, match="at most 4096|too large"):
        load_image(png)


@FUZZ
@given(data=st.binary(max_size=2048), gz=st.booleans(), dims=st.sampled_from([1, 3]))
def test_any_bytes_are_idx_data_or_a_data_error(data, gz, dims, tmp_path_factory):
    p = tmp_path_factory.mktemp("idx") / ("f.gz" if gz else "f")
    p.write_bytes(gzip.compress(data) if gz else data)
    try:
        a = read_idx(p, dims)
    except DataError:
        return
    assert a.dtype == np.uint8 and a.ndim == dims


@FUZZ
@given(dims=st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
                      st.integers(0, 2**32 - 1)), tail=st.binary(max_size=512), gz=st.booleans())
def test_idx_headers_with_any_sizes(dims, tail, gz, tmp_path_factory):
    """Header sizes that overflow 64 bits, or promise more or less than the file holds."""
    p = tmp_path_factory.mktemp("idxh") / ("f.gz" if gz else "f")
    raw = struct.pack(">HBB3I", 0, 8, 3, *dims) + tail
    p.write_bytes(gzip.compress(raw) if gz else raw)
    try:
        a = read_idx(p, 3)
    except DataError:
        return
    assert a.shape == dims


@FUZZ
@given(files=st.lists(st.tuples(st.sampled_from(["a", "b", "c/d", "e"]),
                                st.sampled_from(["x.png", "y.jpg", "z.jpeg", "n.txt", "w.PNG"]),
                                st.one_of(st.binary(max_size=300),
                                          st.builds(valid_image_bytes, st.integers(1, 40),
                                                    st.integers(1, 40), st.just("L"),
                                                    st.just("PNG"), st.integers(0, 9)))),
                      max_size=8))
def test_any_folder_is_a_dataset_or_a_data_error(files, tmp_path_factory):
    root = tmp_path_factory.mktemp("folder")
    for d, name, data in files:
        (root / d).mkdir(parents=True, exist_ok=True)
        (root / d / name).write_bytes(data)
    try:
        ds = load_dataset(f"folder:{root}", "train")
    except DataError:
        return
    assert ds.images.dtype == np.uint8 and len(ds.images) == len(ds.labels)


def _good_zip() -> bytes:
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for c in ("a", "b", "g/c"):
            for i in range(3):
                z.writestr(f"d/{c}/{i}.png", valid_image_bytes(30, 30, "L", "PNG", i))
    return buf.getvalue()


GOOD_ZIP = _good_zip()


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, len(GOOD_ZIP) - 1), st.integers(1, 255)),
                      min_size=1, max_size=12),
       cut=st.one_of(st.none(), st.integers(0, len(GOOD_ZIP))))
def test_any_corrupted_archive_is_a_dataset_or_a_data_error(flips, cut, tmp_path_factory):
    """Bytes flipped anywhere in a good archive (headers, central directory, compressed data)
    or the archive cut short: a dataset or one ``DataError``, and nothing written beside it."""
    data = bytearray(GOOD_ZIP)
    for pos, x in flips:
        data[pos] ^= x
    root = tmp_path_factory.mktemp("zip")
    (root / "d.zip").write_bytes(bytes(data[:cut] if cut is not None else data))
    from siamese_core.data import _user_cache
    _user_cache.clear()
    try:
        ds = load_dataset(f"zip:{root / 'd.zip'}", "train")
        assert ds.images.dtype == np.uint8 and len(ds.images) == len(ds.labels)
    except DataError as e:
        assert "\n" not in str(e)
    assert [p.name for p in root.iterdir()] == ["d.zip"]
