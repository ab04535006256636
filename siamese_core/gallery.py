"""A gallery of enrolled identities: new people (or characters, or anything) verified and
identified by a trained model without retraining — what a siamese network is for.

The gallery is one SQLite file: the model it belongs to (the sha256 of its ONNX graph), and per
identity its name, its samples' embeddings and a thumbnail of each. Embeddings of two models
live in different spaces, so a gallery refuses any model but its own. Each call opens its own
connection (the app calls from whichever thread runs the page). An imported gallery is read from
memory (``sqlite3.Connection.deserialize``) with its schema checked, never opened as a file, and
its rows are copied after validation: nothing of it runs or is kept as it came.
"""
from __future__ import annotations

import io
import os
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import weights
from .errors import ImageError, SiameseError
from .verdict import SiameseModel, Verdict

FORMAT = 1
MAX_NAME = 60
MAX_IDENTITIES = 200
MAX_SAMPLES = 20          # per identity: a median over more says little more
MAX_IMPORT_BYTES = 32 << 20
THUMB_SIDE = 64
MAX_THUMB_BYTES = 64 << 10
SUFFIX = ".sqlite"
_TABLES = {"info", "identities", "samples"}

_SCHEMA = """
CREATE TABLE info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE identities (
    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, created REAL NOT NULL);
CREATE TABLE samples (
    id INTEGER PRIMARY KEY,
    identity INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    embedding BLOB NOT NULL, thumbnail BLOB NOT NULL, added REAL NOT NULL);
CREATE INDEX samples_identity ON samples(identity);
"""


class GalleryError(SiameseError):
    """A gallery that cannot be used: another model's, damaged, full, or a bad name."""


@dataclass(frozen=True)
class Identity:
    """An enrolled identity: its name, how many samples and their thumbnails (PNG bytes)."""

    name: str
    samples: int
    thumbnails: tuple[bytes, ...]


@dataclass(frozen=True)
class Identification:
    """1:N: the identity a questioned image is taken for (``name``; None: unknown, no identity
    within the threshold) and every identity's verdict, nearest first (its score against each
    identity's samples, as in ``Gallery.verify``)."""

    name: str | None
    ranking: tuple[tuple[str, Verdict], ...]


def model_id(model: SiameseModel) -> str:
    """What a gallery records of its model: the sha256 of the ONNX graph."""
    return str(model.meta["sha256"]["onnx"])


def check_name(name: str) -> str:
    """A printable name of 1 to ``MAX_NAME`` characters, spaces at the ends removed."""
    name = " ".join(str(name).split())
    if not name:
        raise GalleryError("give the identity a name")
    if len(name) > MAX_NAME:
        raise GalleryError(f"a name has at most {MAX_NAME} characters (this one {len(name)})")
    if not name.isprintable():
        raise GalleryError("a name must be printable text")
    return name


def thumbnail(image) -> bytes:
    """A grey PNG of at most ``THUMB_SIDE`` a side of any accepted image (raw or prepared)."""
    import cv2

    from .preprocess import _work_gray

    gray = _work_gray(image)
    f = THUMB_SIDE / max(gray.shape)
    if f < 1:
        gray = cv2.resize(gray, (max(1, round(gray.shape[1] * f)), max(1, round(gray.shape[0] * f))),
                          interpolation=cv2.INTER_AREA)
    ok, png = cv2.imencode(".png", gray)
    if not ok:
        raise ImageError("cannot make a thumbnail of the image")
    return png.tobytes()


class Gallery:
    """Enrolled identities for one model, stored in SQLite at ``path`` (created 0600 when it
    does not exist)."""

    def __init__(self, path: str | os.PathLike, model: SiameseModel):
        self.path = Path(path)
        self.model = model
        self.model_id = model_id(model)
        self.dim = weights.embedding_size(model.meta)
        if not self.path.exists():
            self._create()
        with closing(self._connect()) as con:
            self._check(con, self.path.name)

    def _create(self) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return                   # made meanwhile by another call: checked as it is
        except OSError as e:
            raise GalleryError(f"cannot create the gallery {self.path.name}: {e.strerror}") \
                from None
        os.close(fd)
        with closing(sqlite3.connect(self.path)) as con, con:
            con.executescript(_SCHEMA)
            con.executemany("INSERT INTO info VALUES (?, ?)", [
                ("format", str(FORMAT)), ("model", self.model_id),
                ("model_name", self.model.name), ("embedding_dim", str(self.dim)),
                # Where the model was (for a page that lost it: a reload); never imported.
                ("model_path", str(self.model.prefix))])

    def _connect(self) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(self.path, timeout=10)
            con.execute("PRAGMA foreign_keys = ON")
            con.execute("PRAGMA trusted_schema = OFF")
        except sqlite3.Error as e:
            raise GalleryError(f"cannot open the gallery {self.path.name}: {e}") from None
        return con

    def _check(self, con: sqlite3.Connection, name: str) -> None:
        """The schema is a gallery's and the model is this one: ``GalleryError`` otherwise."""
        try:
            objects = con.execute("SELECT type, name FROM sqlite_master").fetchall()
            info = dict(con.execute("SELECT key, value FROM info").fetchall())
        except sqlite3.Error:
            raise GalleryError(f"{name} is not a gallery of this app (not a SQLite database "
                               "with its tables)") from None
        extra = [n for t, n in objects if t in ("trigger", "view")
                 or (t == "table" and n not in _TABLES)]
        if extra or not _TABLES <= {n for t, n in objects if t == "table"}:
            raise GalleryError(f"{name} is not a gallery of this app (it holds "
                               f"{', '.join(extra[:3]) or 'other tables'})")
        if info.get("format") != str(FORMAT):
            raise GalleryError(f"{name} is a gallery of format {info.get('format')!r}; this "
                               f"version reads format {FORMAT}")
        if info.get("model") != self.model_id:
            raise GalleryError(
                f"{name} was made with another model ({info.get('model_name', '?')}, "
                f"{str(info.get('model', ''))[:12]}); this one is {self.model.name} "
                f"({self.model_id[:12]}): their embeddings cannot be compared. Load that model "
                f"or enrol the people again with this one.")

    # -- what is enrolled ---------------------------------------------------------------------

    def names(self) -> list[str]:
        with closing(self._connect()) as con:
            return [r[0] for r in con.execute("SELECT name FROM identities ORDER BY name")]

    def identities(self) -> list[Identity]:
        """Every identity with its samples' thumbnails, by name."""
        with closing(self._connect()) as con:
            rows = con.execute("SELECT i.name, s.thumbnail FROM identities i JOIN samples s "
                               "ON s.identity = i.id ORDER BY i.name, s.id").fetchall()
        out: dict[str, list[bytes]] = {}
        for name, thumb in rows:
            out.setdefault(name, []).append(bytes(thumb))
        return [Identity(n, len(t), tuple(t)) for n, t in out.items()]

    def __len__(self) -> int:
        with closing(self._connect()) as con:
            return int(con.execute("SELECT COUNT(*) FROM identities").fetchone()[0])

    def _embeddings(self, con: sqlite3.Connection) -> dict[str, np.ndarray]:
        rows = con.execute("SELECT i.name, s.embedding FROM identities i JOIN samples s "
                           "ON s.identity = i.id ORDER BY i.name, s.id").fetchall()
        out: dict[str, list[np.ndarray]] = {}
        for name, blob in rows:
            out.setdefault(name, []).append(np.frombuffer(blob, np.float32))
        return {n: np.stack(e) for n, e in out.items()}

    # -- enrol, verify, identify --------------------------------------------------------------

    def enrol(self, name: str, inputs: np.ndarray, thumbnails: list[bytes] | None = None) -> int:
        """Add samples (prepared inputs [N, S, S], as ``SiameseModel.prepare`` makes them) to
        the identity ``name``, created when new; an image it holds already is not added again.
        Returns how many samples it has now."""
        name = check_name(name)
        x = np.asarray(inputs)
        if x.ndim == 2:
            x = x[None]
        if len(x) == 0:
            raise GalleryError("give at least one image to enrol")
        emb = self.model.embed(x)
        thumbs = thumbnails if thumbnails is not None else [thumbnail(i) for i in x]
        if len(thumbs) != len(x):
            raise GalleryError("one thumbnail per image")
        with closing(self._connect()) as con, con:
            row = con.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()
            if row is None:
                if int(con.execute("SELECT COUNT(*) FROM identities").fetchone()[0]) \
                        >= MAX_IDENTITIES:
                    raise GalleryError(f"the gallery is full ({MAX_IDENTITIES} identities): "
                                       "remove one first")
                row = (con.execute("INSERT INTO identities (name, created) VALUES (?, ?)",
                                   (name, time.time())).lastrowid,)
            known = {bytes(b) for (b,) in con.execute(
                "SELECT embedding FROM samples WHERE identity = ?", row)}
            # The same image twice (a second click on Enrol) is one sample.
            new = [(e.astype(np.float32).tobytes(), t) for e, t in zip(emb, thumbs)]
            new = [(e, t) for i, (e, t) in enumerate(new)
                   if e not in known and e not in {f for f, _ in new[:i]}]
            have = len(known)
            if not new:
                raise GalleryError(f"{'that image is' if len(x) == 1 else 'those images are'} "
                                   f"enrolled for {name} already")
            if have + len(new) > MAX_SAMPLES:
                raise GalleryError(f"{name} has {have} of at most {MAX_SAMPLES} images; "
                                   f"{len(new)} more do not fit")
            con.executemany(
                "INSERT INTO samples (identity, embedding, thumbnail, added) VALUES (?, ?, ?, ?)",
                [(row[0], e, t, time.time()) for e, t in new])
            return have + len(new)

    def enrol_images(self, name: str, images: list) -> int:
        """``enrol`` from raw images (paths, bytes, arrays): prepared as the model's training
        images were, each thumbnail made from the image as given."""
        images = list(images)
        x = []
        for k, image in enumerate(images):
            try:
                x.append(self.model.prepare(image))
            except ImageError as e:     # which image it is (no face, blank, unreadable)
                if len(images) == 1 or isinstance(image, (str, Path)):   # named already
                    raise
                raise type(e)(f"image {k + 1} of {len(images)}: {e}") from None
        return self.enrol(name, np.stack(x) if x else np.zeros((0,)),
                          [thumbnail(i) for i in images])

    def remove(self, name: str) -> bool:
        """Delete an identity and its samples; False when there was none of that name."""
        with closing(self._connect()) as con, con:
            return con.execute("DELETE FROM identities WHERE name = ?", (name,)).rowcount > 0

    def _scores(self, x: np.ndarray) -> dict[str, float]:
        """Per identity: the questioned input's score against its samples, by the model's
        rule for several references (``SiameseModel.references``)."""
        q = self.model.embed(np.asarray(x)[None])[0]
        with closing(self._connect()) as con:
            gallery = self._embeddings(con)
        rule = self.model.references
        return {n: rule.score(np.linalg.norm(e - q[None], axis=1), e) for n, e in gallery.items()}

    def verify(self, name: str, x: np.ndarray, threshold: float | None = None) -> Verdict:
        """1:1: is the prepared input ``x`` [S, S] the identity ``name``? The verdict is on the
        score of the distances to its samples, as ``SiameseModel.verify`` decides."""
        s = self._scores(x)
        if name not in s:
            raise GalleryError(f"nobody called {name!r} is enrolled")
        return self.model.verdict(s[name], threshold)

    def identify(self, x: np.ndarray, threshold: float | None = None) -> Identification:
        """1:N: which enrolled identity is the prepared input ``x``, if any?"""
        s = self._scores(x)
        if not s:
            raise GalleryError("nobody is enrolled yet")
        ranking = sorted(((n, self.model.verdict(v, threshold)) for n, v in s.items()),
                         key=lambda nv: (nv[1].distance, nv[0]))
        best = ranking[0]
        return Identification(best[0] if best[1].same else None, tuple(ranking))

    # -- export and import --------------------------------------------------------------------

    def export_bytes(self) -> bytes:
        """The whole gallery as one SQLite file's bytes (for a download)."""
        with closing(self._connect()) as con:
            return con.serialize()

    def merge_bytes(self, data: bytes, name: str = "the file") -> tuple[int, int]:
        """Import an exported gallery of this model: its identities are added (samples of a
        name already here join it, up to ``MAX_SAMPLES``). Returns (identities, samples) added.
        Everything is checked first; nothing is written when anything is wrong."""
        if len(data) > MAX_IMPORT_BYTES:
            raise GalleryError(f"{name} is {len(data) / 2**20:.1f} MB; a gallery may be at "
                               f"most {MAX_IMPORT_BYTES >> 20} MB")
        if not data.startswith(b"SQLite format 3\x00"):
            raise GalleryError(f"{name} is not a gallery exported by this app (not a SQLite "
                               "database)")
        src = sqlite3.connect(":memory:")
        try:
            try:
                src.deserialize(data)
                src.execute("PRAGMA trusted_schema = OFF")
                if src.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                    raise sqlite3.DatabaseError("damaged")
            except sqlite3.Error:
                raise GalleryError(f"{name} is damaged (SQLite cannot read it)") from None
            self._check(src, name)
            rows = src.execute("SELECT i.name, s.embedding, s.thumbnail FROM identities i "
                               "JOIN samples s ON s.identity = i.id ORDER BY i.id, s.id"
                               ).fetchall()
        finally:
            src.close()
        incoming: dict[str, list[tuple[bytes, bytes]]] = {}
        for who, emb, thumb in rows:
            who = check_name(who if isinstance(who, str) else "")
            if not (isinstance(emb, bytes) and len(emb) == 4 * self.dim
                    and np.isfinite(np.frombuffer(emb, np.float32)).all()):
                raise GalleryError(f"{name}: an embedding of {who} is not {self.dim} numbers")
            if not (isinstance(thumb, bytes) and thumb.startswith(b"\x89PNG")
                    and len(thumb) <= MAX_THUMB_BYTES):
                raise GalleryError(f"{name}: a thumbnail of {who} is not a small PNG")
            incoming.setdefault(who, []).append((emb, thumb))
        added = [0, 0]
        with closing(self._connect()) as con, con:
            for who, samples in incoming.items():
                row = con.execute("SELECT id FROM identities WHERE name = ?", (who,)).fetchone()
                if row is None:
                    if int(con.execute("SELECT COUNT(*) FROM identities").fetchone()[0]) \
                            >= MAX_IDENTITIES:
                        raise GalleryError(f"the gallery would hold more than {MAX_IDENTITIES} "
                                           "identities: nothing imported")
                    row = (con.execute("INSERT INTO identities (name, created) VALUES (?, ?)",
                                       (who, time.time())).lastrowid,)
                    added[0] += 1
                have = int(con.execute("SELECT COUNT(*) FROM samples WHERE identity = ?",
                                       row).fetchone()[0])
                room = samples[:max(0, MAX_SAMPLES - have)]
                con.executemany("INSERT INTO samples (identity, embedding, thumbnail, added) "
                                "VALUES (?, ?, ?, ?)",
                                [(row[0], e, t, time.time()) for e, t in room])
                added[1] += len(room)
        return added[0], added[1]


def describe(path: str | os.PathLike) -> dict | None:
    """What a gallery file says of itself without its model: ``model`` (sha256), ``model_name``,
    ``model_path`` and ``identities``; None when it is not a readable gallery."""
    try:
        with closing(sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)) as con:
            info = dict(con.execute("SELECT key, value FROM info").fetchall())
            info["identities"] = int(con.execute("SELECT COUNT(*) FROM identities").fetchone()[0])
    except sqlite3.Error:
        return None
    return info


def decode_thumbnail(png: bytes) -> np.ndarray:
    """A stored thumbnail as a grey array (decoded by the safe image loader)."""
    from .preprocess import load_image

    return load_image(io.BytesIO(png), work_side=THUMB_SIDE)
