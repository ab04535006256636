"""Model files: ``NAME.weights.h5`` (Keras weights), ``NAME.onnx`` (embedding network for fast,
TensorFlow-free inference) and ``NAME.json`` (config, threshold, metrics, sha256 of both).

Every file is written to a temporary name and renamed into place, JSON last, so an interrupted
save never leaves a half-written model that passes the checksum.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from .errors import WeightsError

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_NAME = "default"
FORMAT_VERSION = 1


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def paths(prefix: str | Path) -> dict[str, Path]:
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
    os.chmod(name, 0o644)  # mkstemp makes 0600; model files are meant to be shared
    return Path(name)


def atomic_write_text(target: Path, text: str) -> None:
    tmp = _tmp_for(target, ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def save(prefix: str | Path, siamese, embedding, meta: dict) -> dict:
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


def read_meta(prefix: str | Path, verify: tuple[str, ...] = ("onnx",)) -> dict:
    """Read the JSON metadata and check the sha256 of the listed files ("onnx", "weights")."""
    p = paths(prefix)
    if not p["json"].is_file():
        raise WeightsError(f"no model at {p['json']} (expected NAME.json, NAME.onnx, NAME.weights.h5)")
    try:
        meta = json.loads(p["json"].read_text())
        expected = meta["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise WeightsError(f"{p['json'].name}: corrupt model metadata ({e})") from None
    for kind in verify:
        f = p["h5"] if kind == "weights" else p[kind]
        if not f.is_file():
            raise WeightsError(f"{f} is missing")
        if sha256(f) != expected.get(kind):
            raise WeightsError(f"{f.name}: checksum mismatch, the file is corrupt or was replaced")
    return meta


def load_keras(prefix: str | Path):
    """Rebuild the architecture in code from the metadata, then load the verified weights.
    Returns (siamese, embedding, meta). Never deserialises an architecture from a file."""
    from .model import ModelConfig, build_siamese

    meta = read_meta(prefix, verify=("weights",))
    siamese, emb = build_siamese(ModelConfig.from_dict(meta["model"]))
    try:
        siamese.load_weights(str(paths(prefix)["h5"]))
    except (ValueError, OSError) as e:
        raise WeightsError(f"weights do not fit the architecture in the metadata ({e})") from None
    return siamese, emb, meta


def prune_runs(root: str | Path, max_age_s: float, keep: Iterable[str | Path] = (),
               now: float | None = None) -> int:
    """Delete the run folders under ``root`` (one folder per trained model) whose newest file is
    older than ``max_age_s``, except those holding a model in ``keep``; returns how many went.
    A server keeps every model its users train, so without this the folder only grows."""
    root = Path(root)
    if not root.is_dir():
        return 0
    now = time.time() if now is None else now
    kept = {paths(k)["json"].parent.resolve() for k in keep if k}
    removed = 0
    for run in root.iterdir():
        if not run.is_dir() or run.is_symlink() or run.resolve() in kept:
            continue
        try:
            newest = max([f.stat().st_mtime for f in run.iterdir()] + [run.stat().st_mtime])
            if now - newest > max_age_s:
                shutil.rmtree(run)
                removed += 1
        except OSError:      # another process pruned or wrote it meanwhile: skip it
            continue
    return removed
