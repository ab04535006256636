"""Zip archives of a user's dataset: crafted attacks are refused with one line, nothing is ever
written, good archives give classes at any depth."""
import io
import os
import stat
import zipfile

import numpy as np
import pytest
from PIL import Image

from siamese_core import DataError, load_dataset
from siamese_core import archive
from siamese_core.archive import scan_zip


def png(i: int = 0, size: int = 40) -> bytes:
    arr = np.full((size, size), 255, np.uint8)
    arr[5:size - 5, 8 + i:14 + i] = 0
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def make_zip(path, members: dict, tweak=None):
    """members: name -> bytes; ``tweak(ZipInfo)`` edits each member's header before writing."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if tweak:
                tweak(info)
            z.writestr(info, data)
    return path


def good_members(prefix: str = "") -> dict:
    return {f"{prefix}{c}/{i}.png": png(i) for c in ("Greek/alpha", "Greek/beta", "Latin/a")
            for i in range(3)}


def test_good_archive_classes_at_any_depth_single_top_folder_stripped(tmp_path):
    z = make_zip(tmp_path / "d.zip", {**good_members("omniglot/"), "omniglot/README.txt": b"x",
                                      "__MACOSX/omniglot/._a.png": b"junk"})
    tree = scan_zip(z, "zip:d.zip")
    assert list(tree.classes) == ["Greek/alpha", "Greek/beta", "Latin/a"]
    assert any("README.txt" in n for n in tree.notes)          # said, not silently dropped
    assert not any("MACOSX" in n for n in tree.notes)          # OS clutter: silently ignored
    ds = load_dataset(f"zip:{z}", "train")
    assert ds.class_names == ["Greek/alpha", "Greek/beta", "Latin/a"]


@pytest.mark.parametrize("name, why", [
    ("../evil/x.png", "outside the archive"),
    ("a/../../x.png", "outside the archive"),
    ("/etc/x.png", "absolute path"),
    ("C:/x.png", "absolute path"),
])
def test_zip_slip_is_refused(tmp_path, name, why):
    z = make_zip(tmp_path / "d.zip", {**good_members(), name: png()})
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(DataError, match=why) as e:
        load_dataset(f"zip:{z}")
    assert "\n" not in str(e.value)
    assert sorted(os.listdir(tmp_path)) == before              # nothing written anywhere here


def test_symlink_member_is_refused(tmp_path):
    def link(info):
        if info.filename == "a/link.png":
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
    z = make_zip(tmp_path / "d.zip", {**good_members(), "a/link.png": b"/etc/passwd"}, link)
    with pytest.raises(DataError, match="symbolic link"):
        scan_zip(z, "zip")


def test_encrypted_member_is_refused(tmp_path):
    z = make_zip(tmp_path / "d.zip", good_members())
    raw = bytearray(z.read_bytes())
    # Set bit 0 (encrypted) of the general-purpose flags in the central directory (offset 8
    # of each record), where readers learn it; zipfile cannot write encrypted members itself.
    i = raw.find(b"PK\x01\x02")
    raw[i + 8] |= 0x1
    z.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="encrypted"):
        scan_zip(z, "zip")


def test_zip_bomb_is_refused_before_decompressing(tmp_path):
    z = make_zip(tmp_path / "d.zip", {**good_members(), "a/bomb.png": b"\0" * (8 << 20)})
    assert (tmp_path / "d.zip").stat().st_size < 100_000
    with pytest.raises(DataError, match="zip bomb"):
        scan_zip(z, "zip")


def test_oversized_member_and_total_are_refused(tmp_path, monkeypatch):
    z = make_zip(tmp_path / "d.zip", good_members())
    one = len(png(0))
    monkeypatch.setattr(archive, "MAX_MEMBER_BYTES", one - 1)
    with pytest.raises(DataError, match="per image"):
        scan_zip(z, "zip")
    monkeypatch.setattr(archive, "MAX_MEMBER_BYTES", 1 << 20)
    monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 3 * one)
    with pytest.raises(DataError, match="total more than"):
        scan_zip(z, "zip")


def test_hundred_thousand_empty_members_are_refused_from_the_listing(tmp_path):
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for i in range(100_000):
            z.writestr(f"d/{i}.png", b"")
    with pytest.raises(DataError, match="entries; at most"):
        scan_zip(path, "zip")


def test_too_many_images(tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "MAX_IMAGES", 5)
    with pytest.raises(DataError, match="at most 5"):
        scan_zip(make_zip(tmp_path / "d.zip", good_members()), "zip")


def test_nested_zip_is_not_opened(tmp_path):
    inner = make_zip(tmp_path / "inner.zip", good_members())
    z = make_zip(tmp_path / "d.zip", {"data/inner.zip": inner.read_bytes()})
    with pytest.raises(DataError, match="no PNG/JPEG images"):
        load_dataset(f"zip:{z}")


@pytest.mark.parametrize("content, message", [
    (b"", "not a zip archive"),
    (b"PK\x03\x04 this is not really a zip", "not a zip archive"),
    (b"\x89PNG\r\n\x1a\n", "not a zip archive"),
])
def test_not_an_archive(tmp_path, content, message):
    p = tmp_path / "d.zip"
    p.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_dataset(f"zip:{p}")


def test_missing_archive():
    with pytest.raises(DataError, match="no such file"):
        load_dataset("zip:/nonexistent/d.zip")


def test_member_corrupted_after_listing_is_skipped_with_its_name(tmp_path):
    """A member whose bytes do not match its CRC is reported by name, the rest still loads."""
    z = make_zip(tmp_path / "d.zip", {**good_members(), "Latin/a/9.png": png(4)})
    raw = bytearray(z.read_bytes())
    # Flip a byte inside the stored (deflated) data of the last member.
    info = zipfile.ZipFile(z).getinfo("Latin/a/9.png")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    raw[start + info.compress_size // 2] ^= 0xFF
    z.write_bytes(bytes(raw))
    ds = load_dataset(f"zip:{z}", "train")
    assert any("Latin/a/9.png" in n for n in ds.notes)
    assert ds.class_names == ["Greek/alpha", "Greek/beta", "Latin/a"]


def test_a_member_with_broken_compressed_data_is_skipped_with_its_name(tmp_path):
    z = make_zip(tmp_path / "d.zip", {**good_members(), "Latin/a/9.png": png(4)})
    info = zipfile.ZipFile(z).getinfo("Latin/a/9.png")
    raw = bytearray(z.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for k in range(5):                     # the deflate stream's first bytes: zlib.error
        raw[start + k] ^= 0xFF
    z.write_bytes(bytes(raw))
    ds = load_dataset(f"zip:{z}", "train")
    assert any("Latin/a/9.png" in n and "cannot read" in n for n in ds.notes)


def test_special_files_are_refused_before_anything_is_read(tmp_path):
    """Issue 24, item 19: `zip:/dev/zero` read until memory ran out; `zip:<fifo>` hung and
    ignored Ctrl-C. Only regular files are opened as archives, their size checked first."""
    from pathlib import Path
    fifo = tmp_path / "pipe.zip"
    os.mkfifo(fifo)
    for path in (Path("/dev/zero"), fifo, tmp_path):
        with pytest.raises(DataError, match="not a regular file"):
            scan_zip(path, f"zip:{path}")
    with pytest.raises(DataError, match="no such file"):
        scan_zip(tmp_path / "missing.zip", "zip:missing.zip")
