"""Image files of a user's dataset, from a folder or a zip archive, read without trusting them.

A class is the folder that holds its images, at any depth (``Greek/character01``), named by its
path relative to the dataset's root. Archives are never extracted: members are listed, checked
(paths, symlinks, encryption, sizes, compression ratio) and read into memory one at a time,
each bounded by its declared size; a member that decompresses to more than it declared fails
its CRC check in ``zipfile`` and is refused.
"""
from __future__ import annotations

import contextlib
import functools
import os
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator

from .errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# What each suffix should hold (PIL's names; a phone's JPEG may open as MPO). Other formats the
# decoder accepts (GIF, WebP, TIFF, BMP) under these names are read, and the notes say so.
SUFFIX_FORMATS = {".png": ("PNG",), ".jpg": ("JPEG", "MPO"), ".jpeg": ("JPEG", "MPO")}
MAX_IMAGES = 50_000
MAX_MEMBERS = 60_000                 # entries of an archive, folders and other files included
MAX_MEMBER_BYTES = 16 << 20          # one image, uncompressed
MAX_TOTAL_BYTES = 1 << 30            # all images of an archive, uncompressed
MAX_RATIO = 200                      # uncompressed / compressed, per member over 1 MB
MAX_ARCHIVE_BYTES = 2 << 30          # the archive itself, before anything in it is read
IGNORED = ("__MACOSX", ".")          # prefixes of names that are archive/OS clutter, not data


@dataclass
class ImageTree:
    """Where a dataset's images are: class name -> [(file name, path or zip member)], and notes
    on what was skipped."""

    source: str
    classes: dict[str, list[tuple[str, object]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    archive: Path | None = None

    @contextlib.contextmanager
    def reader(self) -> Iterator[Callable[[Any], bytes]]:
        """A function from an entry of ``classes`` to its bytes (``DataError`` if unreadable);
        an archive is opened once for all of its members."""
        if self.archive is None:
            yield _read_file
            return
        with open_regular(self.archive, self.source, MAX_ARCHIVE_BYTES) as f, \
                zipfile.ZipFile(f) as zf:
            yield functools.partial(_read_member, zf)


def _note_skipped(notes: list[str], skipped: list[str], what: str) -> None:
    if skipped:
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        shown = ", ".join(skipped[:3]) + more
        notes.append(f"{len(skipped)} {what} ignored: {shown}")


def _add(classes: dict, rel: PurePosixPath, reader, top_level: list[str],
         other: list[str]) -> None:
    if rel.suffix.lower() not in IMAGE_SUFFIXES:
        other.append(str(rel))
        return
    if len(rel.parts) == 1:
        top_level.append(str(rel))
        return
    classes.setdefault(str(rel.parent), []).append((rel.name, reader))


def _finish(tree: ImageTree, top_level: list[str], other: list[str]) -> ImageTree:
    # A zip of one folder ("omniglot/Greek/..."): classes are named below that folder.
    names = list(tree.classes)
    firsts = {n.split("/", 1)[0] for n in names}
    if len(firsts) == 1 and all("/" in n for n in names) and not top_level:
        tree.classes = {n.split("/", 1)[1]: v for n, v in tree.classes.items()}
    tree.classes = {k: sorted(v, key=lambda t: t[0]) for k, v in sorted(tree.classes.items())}
    _note_skipped(tree.notes, top_level, "image(s) outside any class folder")
    _note_skipped(tree.notes, other, "file(s) that are not PNG/JPEG images")
    n = sum(len(v) for v in tree.classes.values())
    if n == 0:
        raise DataError(f"{tree.source}: no PNG/JPEG images in class folders (expected "
                        f"<class>/<image>.png, e.g. alice/1.png, bob/1.png)")
    if n > MAX_IMAGES:
        raise DataError(f"{tree.source}: {n:,} images; at most {MAX_IMAGES:,}")
    return tree


def scan_folder(root: Path, source: str) -> ImageTree:
    """The images under ``root`` by class folder. Symlinks are not followed."""
    if not root.is_dir():
        raise DataError(f"{source}: {root} is not a directory")
    tree = ImageTree(source)
    top_level: list[str] = []
    other: list[str] = []
    count = 0
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            entries = sorted(d.iterdir())
        except OSError as e:
            raise DataError(f"{source}: cannot list {d} ({e.strerror})") from None
        for p in entries:
            if p.name.startswith(IGNORED) or p.is_symlink():
                continue
            if p.is_dir():
                stack.append(p)
            elif p.is_file():
                count += 1
                if count > MAX_MEMBERS:
                    raise DataError(f"{source}: more than {MAX_MEMBERS:,} files; use a smaller "
                                    f"folder")
                _add(tree.classes, PurePosixPath(p.relative_to(root).as_posix()), p, top_level,
                     other)
    return _finish(tree, top_level, other)


def _unsafe(info: zipfile.ZipInfo) -> str | None:
    """Why a member must not be read, or None."""
    name = info.filename
    path = PurePosixPath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    if ".." in path.parts:
        return "points outside the archive (..)"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    if info.flag_bits & 0x1:
        return "is encrypted"
    return None


def open_regular(path: Path, source: str, max_bytes: int):
    """``path`` opened for reading if it is a regular file of at most ``max_bytes`` (checked on
    the open file: a device such as /dev/zero is never read, a FIFO never waited on)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise DataError(f"{source}: no such file") from None
    except OSError as e:
        raise DataError(f"{source}: cannot open ({e.strerror})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise DataError(f"{source}: not a regular file (a device, a pipe or a folder); give a "
                        "zip archive")
    if st.st_size > max_bytes:
        os.close(fd)
        raise DataError(f"{source}: {st.st_size:,} bytes; at most {max_bytes:,}")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def scan_zip(path: Path, source: str) -> ImageTree:
    """The images of a zip archive by class folder, every member checked before any is read."""
    with open_regular(path, source, MAX_ARCHIVE_BYTES) as f:
        try:
            zf = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise DataError(f"{source}: not a zip archive ({str(e)[:80]})") from None
        with zf:
            infos = zf.infolist()
            if len(infos) > MAX_MEMBERS:
                raise DataError(f"{source}: {len(infos):,} entries; at most {MAX_MEMBERS:,}")
            tree = ImageTree(source, archive=path)
            top_level: list[str] = []
            other: list[str] = []
            total = 0
            seen: set[str] = set()
            repeated: list[str] = []
            for info in infos:
                if info.is_dir():
                    continue
                if info.filename in seen:   # a zip may list one name twice: the first counts
                    repeated.append(info.filename[:120])
                    continue
                seen.add(info.filename)
                why = _unsafe(info)
                if why:
                    raise DataError(f"{source}: {info.filename[:120]} {why}; refusing the archive")
                rel = PurePosixPath(info.filename.replace("\\", "/"))
                if any(part.startswith(IGNORED) for part in rel.parts):
                    continue
                if rel.suffix.lower() in IMAGE_SUFFIXES:
                    if info.file_size > MAX_MEMBER_BYTES:
                        raise DataError(f"{source}: {info.filename[:120]} is {info.file_size:,} "
                                        f"bytes uncompressed; at most {MAX_MEMBER_BYTES:,} per image")
                    if (info.file_size > 1 << 20
                            and info.file_size > MAX_RATIO * max(info.compress_size, 1)):
                        raise DataError(f"{source}: {info.filename[:120]} is compressed "
                                        f"{info.file_size // max(info.compress_size, 1):,}:1 "
                                        f"(a zip bomb?); refusing the archive")
                    total += info.file_size
                    if total > MAX_TOTAL_BYTES:
                        raise DataError(f"{source}: images total more than {MAX_TOTAL_BYTES:,} "
                                        f"bytes uncompressed; use a smaller archive")
                _add(tree.classes, rel, info, top_level, other)
        _note_skipped(tree.notes, repeated, "repeated entries (a name listed twice; the first "
                                            "is used)")
        return _finish(tree, top_level, other)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    try:
        with zf.open(info) as f:
            data = f.read(info.file_size + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError,
            zlib.error) as e:
        raise DataError(f"cannot read ({str(e)[:80]})") from None
    if len(data) != info.file_size:
        raise DataError("its size differs from the archive's listing")
    return data


def _read_file(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_MEMBER_BYTES:
            raise DataError(f"larger than {MAX_MEMBER_BYTES:,} bytes")
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read ({e.strerror})") from None
