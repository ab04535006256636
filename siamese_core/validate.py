"""One validation layer for the numbers and paths users give (CLI flags, the Train form, library
calls, weights files): each check returns the clean value or raises ``DataError`` with one line
that names the value. No TensorFlow, no Streamlit: the CLI checks everything before the slow
import, the app before it starts a worker."""
from __future__ import annotations

import math
import os
from pathlib import Path

from .errors import DataError

MAX_SEED = 2**32 - 1          # numpy and Keras seeds are unsigned 32-bit


def number(name: str, value, lo: float | None = None, hi: float | None = None, *,
           lo_open: bool = False, integer: bool = False, error=DataError):
    """``value`` as a finite float (or int with ``integer``) within [lo, hi] (``lo_open``: lo
    excluded); otherwise ``error`` naming ``name`` and the allowed range."""
    try:
        if isinstance(value, bool) or value is None:
            raise TypeError
        v: float
        if integer:
            f = float(value)
            if not math.isfinite(f) or f != int(f):
                raise ValueError
            v = int(f)
        else:
            v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise error(f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}") \
            from None
    if not integer and not math.isfinite(v):
        raise error(f"{name} must be finite, got {value!r}")
    low_bad = lo is not None and (v <= lo if lo_open else v < lo)
    if low_bad or (hi is not None and v > hi):
        raise error(f"{name} must be {_range(lo, hi, lo_open)}, got {value!r}")
    return v


def _range(lo, hi, lo_open: bool) -> str:
    if lo is not None and hi is not None:
        return f"{'greater than' if lo_open else 'between'} {lo:g}" + \
               (f" and at most {hi:g}" if lo_open else f" and {hi:g}")
    if lo is not None:
        return f"{'greater than' if lo_open else 'at least'} {lo:g}"
    return f"at most {hi:g}"


def seed(value, name: str = "seed") -> int:
    """A seed numpy and Keras both take: an integer in [0, 2**32 - 1]."""
    return number(name, value, 0, MAX_SEED, integer=True)


def writable_prefix(prefix: str | os.PathLike, name: str = "output") -> Path:
    """Check, before any work, that files ``PREFIX.*`` can be created: the nearest existing
    ancestor is a writable directory and nothing on the way is a file. Returns the path."""
    p = Path(prefix).expanduser()
    if str(prefix).strip() == "" or p.name in ("", ".", ".."):
        raise DataError(f"{name} {str(prefix)!r} is not a file name prefix (e.g. runs/mine)")
    parent = p.parent
    while not parent.exists():
        if parent.is_symlink():          # a dangling link: mkdir would fail later
            raise DataError(f"{name}: {parent} is a broken symbolic link")
        parent = parent.parent
    if not parent.is_dir():
        raise DataError(f"{name}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(f"{name}: cannot write in {parent} (permission denied)")
    for suffix in (".json", ".onnx", ".weights.h5"):
        f = Path(str(p) + suffix)
        if f.exists() and f.is_dir():
            raise DataError(f"{name}: {f} is a directory")
    return p


def writable_file(path: str | os.PathLike, name: str = "output") -> Path:
    """Like ``writable_prefix`` for one file path (e.g. a montage PNG)."""
    p = Path(path).expanduser()
    writable_prefix(p.with_suffix(""), name)
    if p.is_dir():
        raise DataError(f"{name}: {p} is a directory")
    return p
