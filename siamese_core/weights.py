"""Model files: ``NAME.weights.h5`` (Keras weights), ``NAME.onnx`` (embedding network for fast,
TensorFlow-free inference) and ``NAME.json`` (config, threshold, metrics, sha256 of both).

Every file is written to a temporary name and renamed into place, JSON last, so an interrupted
save never leaves a half-written model that passes the checksum.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

from . import validate as V
from .errors import WeightsError

# The shipped model: package data when installed (siamese_core/default_model), weights/ in a
# checkout (pyproject.toml maps the one to the other).
_INSTALLED = Path(__file__).resolve().parent / "default_model"
WEIGHTS_DIR = _INSTALLED if (_INSTALLED / "default.json").is_file() else \
    Path(__file__).resolve().parent.parent / "weights"
DEFAULT_NAME = "default"
FORMAT_VERSION = 1


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def paths(prefix: str | os.PathLike) -> dict[str, Path]:
    """The three files of a model, from ``weights/NAME`` (any of the suffixes is accepted)."""
    p = str(prefix)
    for suffix in (".weights.h5", ".onnx", ".json"):
        if p.endswith(suffix):
            p = p[: -len(suffix)]
    return {"h5": Path(p + ".weights.h5"), "onnx": Path(p + ".onnx"), "json": Path(p + ".json")}


def default_prefix() -> Path:
    return WEIGHTS_DIR / DEFAULT_NAME


def _tmp_for(target: Path, suffix: str) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    # mkstemp makes 0600; give the file what the process's umask allows, as open() would
    # (0644 for a user's CLI run, 0600 in a server's training worker with umask 077).
    os.chmod(name, 0o666 & ~_umask())
    return Path(name)


def _umask() -> int:
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def atomic_write_text(target: Path, text: str) -> None:
    tmp = _tmp_for(target, ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def save(prefix: str | os.PathLike, siamese, embedding, meta: dict) -> dict:
    """Write weights, ONNX export and metadata atomically; returns the metadata written."""
    p = paths(prefix)
    tmp_h5 = _tmp_for(p["h5"], ".weights.h5")      # Keras insists on this ending
    tmp_onnx = _tmp_for(p["onnx"], ".onnx")
    try:
        siamese.save_weights(str(tmp_h5))
        export_onnx(embedding, tmp_onnx)
        meta = dict(meta, format_version=FORMAT_VERSION,
                    files={"weights": p["h5"].name, "onnx": p["onnx"].name},
                    sha256={"weights": sha256(tmp_h5), "onnx": sha256(tmp_onnx)})
        os.replace(tmp_h5, p["h5"])
        os.replace(tmp_onnx, p["onnx"])
        atomic_write_text(p["json"], json.dumps(meta, indent=2, sort_keys=True) + "\n")
    finally:
        tmp_h5.unlink(missing_ok=True)
        tmp_onnx.unlink(missing_ok=True)
    return meta


def export_onnx(embedding, path: Path) -> None:
    """Export the embedding network to ONNX (needs tf2onnx), quietly."""
    import contextlib
    import io
    import warnings

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        embedding.export(str(path), format="onnx", verbose=False)


def read_meta(prefix: str | os.PathLike, verify: tuple[str, ...] = ("onnx",)) -> dict:
    """Read the JSON metadata, validate it as a whole (``check_meta``) and check the sha256 of
    the listed files ("onnx", "weights"). Any problem: ``WeightsError`` with one line."""
    p = paths(prefix)
    if not p["json"].is_file():
        raise WeightsError(f"no model at {p['json']} (expected NAME.json, NAME.onnx, NAME.weights.h5)")
    try:
        if p["json"].stat().st_size > MAX_META_BYTES:
            raise WeightsError(f"{p['json'].name}: {p['json'].stat().st_size:,} bytes is too "
                               f"large for model metadata")
        meta = json.loads(p["json"].read_text())
    except (OSError, ValueError, RecursionError) as e:
        raise WeightsError(f"{p['json'].name}: corrupt model metadata ({e})") from None
    check_meta(meta, p["json"].name)
    expected = meta["sha256"]
    for kind in verify:
        f = p["h5"] if kind == "weights" else p[kind]
        if not f.is_file():
            raise WeightsError(f"{f} is missing")
        if sha256(f) != expected[kind]:
            raise WeightsError(f"{f.name}: checksum mismatch, the file is corrupt or was replaced")
    return meta


MAX_META_BYTES = 16 << 20
_SHA = re.compile(r"^[0-9a-f]{64}$")


def check_meta(meta, name: str = "metadata") -> None:
    """Everything inference and rebuilding rely on, checked before use: the format version, the
    checksums, a finite calibration and an architecture within the ranges training allows."""
    from .config import BLOCKS, check_architecture
    from .preprocess import MAX_ASPECT, MAX_INPUT, MIN_INPUT

    def bad(what: str) -> WeightsError:
        return WeightsError(f"{name}: {what}")

    if not isinstance(meta, dict):
        raise bad("not a JSON object")
    version = meta.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise bad(f"bad format_version {version!r}")
    if version > FORMAT_VERSION:
        raise bad(f"format version {version} is newer than this program reads "
                  f"({FORMAT_VERSION}); upgrade siamese_core")
    sums = meta.get("sha256")
    if not isinstance(sums, dict) or not all(isinstance(sums.get(k), str) and _SHA.match(sums[k])
                                             for k in ("onnx", "weights")):
        raise bad("sha256 must hold the 64-hex-digit checksums of 'onnx' and 'weights'")
    cal = meta.get("calibration")
    if not isinstance(cal, dict):
        raise bad("no calibration")
    try:
        V.number("calibration threshold", cal.get("threshold"), 0, 1e6, error=WeightsError)
        V.number("calibration slope", cal.get("slope"), 0, 1e9, lo_open=True,
                 error=WeightsError)
    except WeightsError as e:
        raise bad(str(e)) from None
    m = meta.get("model")
    if not isinstance(m, dict):
        raise bad("no model architecture")
    try:
        check_architecture(m.get("embedding_dim"), m.get("filters"), m.get("top_convs", 0),
                           m.get("input_size", 28), error=WeightsError, prefix="model ")
        if m.get("input_width") is not None:
            V.number("model input_width", m["input_width"], MIN_INPUT,
                     MAX_ASPECT * MAX_INPUT, integer=True, error=WeightsError)
        if m.get("pixels") is not None:
            V.number("model pixels", m["pixels"], 0, 0.999, error=WeightsError)
    except WeightsError as e:
        raise bad(str(e)) from None
    if m.get("block", BLOCKS[-1]) not in BLOCKS or not isinstance(m.get("normalize", True), bool):
        raise bad("unknown model block or normalize setting")
    from .test_time import TEST_TIMES
    if meta.get("test_time", "none") not in TEST_TIMES:
        raise bad(f"unknown test_time {meta['test_time']!r}: this program knows "
                  f"{' and '.join(TEST_TIMES)}")
    refs = meta.get("references")
    if refs is not None:
        from .references import RULES
        if not isinstance(refs, dict) or refs.get("rule") not in RULES:
            raise bad(f"references must name a rule ({', '.join(RULES)})")
        try:
            V.number("references typical", refs.get("typical", 0.0), 0, 1e6, error=WeightsError)
        except WeightsError as e:
            raise bad(str(e)) from None
    prep = meta.get("preprocess")
    if prep is not None:
        from .errors import ImageError
        from .preprocess import Prep
        try:
            p = Prep.from_dict(prep) if isinstance(prep, dict) else None
        except (ImageError, TypeError, ValueError) as e:
            raise bad(f"preprocess: {e}") from None
        if p is None or p.size != m.get("input_size", 28):
            raise bad("preprocess must be an object whose size is the model's input_size")
        if p.width != (m.get("input_width") or p.size):
            raise bad("preprocess width must be the model's input_width")


def zip_bytes(prefix: str | os.PathLike) -> bytes:
    """A model's three files (``.weights.h5``, ``.onnx``, ``.json``) in one zip, for download."""
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for p in paths(prefix).values():
            z.write(p, p.name)
    return buf.getvalue()


def load_keras(prefix: str | os.PathLike):
    """Rebuild the architecture in code from the metadata, then load the verified weights.
    Returns (siamese, embedding, meta): ``embedding`` computes what the ONNX file does (with
    the pixels where the model has them). Never deserialises an architecture from a file."""
    from .model import ModelConfig, build_siamese, with_pixels

    meta = read_meta(prefix, verify=("weights",))
    cfg = ModelConfig.from_dict(meta["model"])
    siamese, emb = build_siamese(cfg)
    try:
        siamese.load_weights(str(paths(prefix)["h5"]))
    except (ValueError, OSError) as e:
        raise WeightsError(f"weights do not fit the architecture in the metadata ({e})") from None
    return siamese, with_pixels(emb, cfg), meta


def embedding_size(meta: dict) -> int:
    """Length of a model's embeddings (its ONNX output): the network's ``embedding_dim``, and
    one more per input pixel where the model holds its pixels (``model.PixelFusion``)."""
    m = meta["model"]
    s = int(m.get("input_size", 28))
    return int(m["embedding_dim"]) + (s * int(m.get("input_width") or s) if m.get("pixels")
                                      else 0)
