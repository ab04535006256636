"""Where a server keeps the models its users train: one folder per run under a private root.

The root is created 0700 and must be a real directory owned by this user (never a symbolic
link), so nobody else can read the models, plant files or redirect writes and deletions. Workers
write with umask 077 (files 0600). Pruning deletes only folders this module could have made: a
run-id name, a real directory, and nothing inside but model files. Disk use is bounded: runs and
uploads go a day after their last change (kept runs after 30 days, at most 20 of them on a
server), and all of them together may take ``store_limit()`` bytes: past it, new ones are
refused until pruning makes room.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import SiameseError
from .weights import atomic_write_text, paths, read_meta

RETENTION_S = 24 * 3600           # runs older than this are deleted when a new run starts
KEPT = ".kept.json"               # in a run folder: pruning leaves the run alone for longer:
KEPT_RETENTION_S = 30 * 24 * 3600  # a kept run goes this long after its last change
MAX_KEPT_TOTAL = 20               # kept runs on one server (all sessions together)
# All runs and uploads of one root together: past this, new uploads and runs are refused until
# pruning makes room ($SIAMESE_RUNS_MAX_MB overrides it).
MAX_STORE_BYTES = 2 << 30
PRUNE_EVERY_S = 600.0             # ``prune_now_and_then``: at most this often per process
MAX_NAME = 80
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
# What a run folder may hold: NAME.json / NAME.onnx / NAME.weights.h5, an uploaded dataset
# (dataset.zip), a session's galleries (gallery-<model>.sqlite, with SQLite's journal while it
# writes) and their temporary files.
_MODEL_FILE = re.compile(r"^\.?[\w.-]+?\.(json|onnx|weights\.h5|zip|tmp|sqlite|sqlite-journal)$")
DATASET_FILE = "dataset.zip"


class StorageError(SiameseError):
    """The runs folder cannot be used safely."""


def default_root() -> Path:
    """``$SIAMESE_RUNS_DIR``, else ``$XDG_CACHE_HOME/siamese-studio/runs`` (``~/.cache/...``):
    under the user's home, not the shared temporary folder where others can plant links."""
    env = os.environ.get("SIAMESE_RUNS_DIR")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "siamese-studio" / "runs"


def private_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (mode 0700; missing parents too) or check it: a real directory, not a
    symbolic link, owned by this user; group/other permissions are removed. ``StorageError``
    otherwise."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise StorageError(f"cannot create the runs folder {path}: {e.strerror}") from None
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise StorageError(f"the runs folder {path} is a symbolic link or not a directory; "
                           f"refusing to use it (set SIAMESE_RUNS_DIR to another folder)")
    if st.st_uid != os.getuid():
        raise StorageError(f"the runs folder {path} belongs to another user; refusing to use it")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def new_run(root: str | os.PathLike, name: str) -> Path:
    """The model prefix for a new run, ``ROOT/<run id>/<name>``, under a checked private root.
    The run's folder itself is created when the model is saved (by a worker with umask 077), so
    a run that fails or is killed before saving leaves nothing behind."""
    safe = re.sub(r"[^\w.-]+", "_", name).strip("._") or "model"
    return private_dir(root) / uuid.uuid4().hex / safe[:80]


def save_dataset(root: str | os.PathLike, data: bytes) -> Path:
    """Store an uploaded dataset archive as ``ROOT/<run id>/dataset.zip`` (0600, written to a
    temporary name and renamed): private to whoever knows the id, pruned like the runs."""
    folder = private_dir(root) / uuid.uuid4().hex
    os.mkdir(folder, 0o700)
    path, tmp = folder / DATASET_FILE, folder / (DATASET_FILE + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path


def remove_dataset(path: str | os.PathLike) -> None:
    """Delete a folder ``save_dataset`` made (and nothing else)."""
    folder = Path(path).parent
    if Path(path).name == DATASET_FILE and is_run_dir(folder):
        shutil.rmtree(folder, ignore_errors=True)


def gallery_file(root: str | os.PathLike, folder: str | None, model_id: str,
                 create: bool = True) -> Path | None:
    """A session's gallery for one model: ``ROOT/<folder id>/gallery-<model id>.sqlite`` (the
    file itself is made by ``Gallery``). A ``folder`` that is not a run-id folder here (None,
    expired, made up) becomes a new private one with ``create``, else the answer is None.
    Pruned like the runs: a day after its last change."""
    root = private_dir(root)
    if folder is None or not _RUN_ID.match(folder) or not is_run_dir(root / folder):
        if not create:
            return None
        folder = uuid.uuid4().hex
        os.mkdir(root / folder, 0o700)
    return root / folder / f"gallery-{re.sub(r'[^0-9a-f]', '', model_id)[:16]}.sqlite"


def is_run_dir(p: Path) -> bool:
    """True for a folder this module could have made (see the module docstring)."""
    try:
        st = os.lstat(p)
    except OSError:
        return False
    if not (stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and _RUN_ID.match(p.name)):
        return False
    try:
        return all(_MODEL_FILE.match(f.name) and f.is_file() and not f.is_symlink()
                   for f in p.iterdir())
    except OSError:
        return False


def prune(root: str | os.PathLike, max_age_s: float = RETENTION_S,
          keep: Iterable[str | os.PathLike | None] = (), now: float | None = None) -> int:
    """Delete the run folders under ``root`` whose newest file is older than ``max_age_s``,
    except those holding a model in ``keep``; returns how many went. Anything that is not a run
    folder (``is_run_dir``) is left alone, and a root that is not a private directory is not
    touched at all."""
    root = Path(root)
    try:
        st = os.lstat(root)
    except OSError:
        return 0
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        return 0
    now = time.time() if now is None else now
    kept = {paths(k)["json"].parent.name for k in keep if k}
    removed = 0
    for run in root.iterdir():
        if run.name in kept or not is_run_dir(run):
            continue
        try:
            age = KEPT_RETENTION_S if (run / KEPT).is_file() else max_age_s
            newest = max([f.lstat().st_mtime for f in run.iterdir()] + [run.lstat().st_mtime])
            if now - newest > age:
                shutil.rmtree(run)     # fd-based on Linux: never follows a link inside
                removed += 1
        except OSError:      # another process pruned or wrote it meanwhile: skip it
            continue
    return removed


_last_prune: dict[str, float] = {}


def prune_now_and_then(root: str | os.PathLike, keep: Iterable[str | os.PathLike | None] = (),
                       every_s: float = PRUNE_EVERY_S) -> int:
    """``prune``, at most every ``every_s`` seconds per root in this process: cheap enough for
    every page run, so expired runs and uploads go even when nobody trains."""
    now = time.monotonic()
    if now - _last_prune.get(str(root), -every_s) < every_s:
        return 0
    _last_prune[str(root)] = now
    return prune(root, keep=keep)


def store_limit() -> int:
    """The bytes all runs and uploads of a root may take (``MAX_STORE_BYTES``, or
    ``$SIAMESE_RUNS_MAX_MB``)."""
    env = os.environ.get("SIAMESE_RUNS_MAX_MB", "").strip()
    return int(float(env) * (1 << 20)) if env else MAX_STORE_BYTES


def usage(root: str | os.PathLike) -> int:
    """Bytes held by the run folders under ``root`` (nothing else is counted or followed)."""
    total = 0
    try:
        folders = [r for r in Path(root).iterdir() if is_run_dir(r)]
    except OSError:
        return 0
    for run in folders:
        try:
            total += sum(f.lstat().st_size for f in run.iterdir())
        except OSError:
            continue
    return total


def make_room(root: str | os.PathLike, need: int,
              keep: Iterable[str | os.PathLike | None] = ()) -> None:
    """Before storing ``need`` more bytes: prune what has expired, then ``StorageError`` if the
    root would still pass ``store_limit`` (nobody's recent data is deleted to make room)."""
    prune(root, keep=keep)
    limit, used = store_limit(), usage(root)
    if used + need > limit:
        raise StorageError(f"the server's space for trained models and uploads is full "
                           f"({used / 2**20:,.0f} of {limit / 2**20:,.0f} MB in use); remove "
                           f"datasets and runs you no longer need, or try again later (they are "
                           f"deleted a day after their last use)")


def kept_count(root: str | os.PathLike) -> int:
    """How many runs under ``root`` are kept (all sessions)."""
    try:
        return sum(1 for r in Path(root).iterdir() if is_run_dir(r) and (r / KEPT).is_file())
    except OSError:
        return 0


# --- one session's runs: describe, rename, keep, delete ------------------------------------------

@dataclass(frozen=True)
class RunInfo:
    """What a list of runs shows about one saved model."""

    prefix: str
    name: str              # the user's name for it (the file name until renamed)
    created: str
    dataset: str
    loss: str
    accuracy: float        # test pair accuracy, or validation's for models without a test split
    on_test: bool
    kept: bool


def run_name(prefix: str | os.PathLike, meta: dict) -> str:
    """A run's name: the user's (``rename``), else its file name."""
    return str(meta.get("display_name") or Path(prefix).name)


def headline_accuracy(meta: dict) -> tuple[float, bool]:
    """A model's pair accuracy to show first, and whether it is the test split's (else
    validation's: models saved without a test split)."""
    test = meta.get("test") or {}
    if "pair_accuracy" in test:
        return float(test["pair_accuracy"]), True
    return float(meta.get("metrics", {}).get("pair_accuracy", float("nan"))), False


def describe(prefix: str | os.PathLike) -> RunInfo | None:
    """A saved run's summary, or None when its files are gone or unreadable."""
    try:
        meta = read_meta(prefix, verify=())
    except SiameseError:
        return None
    return RunInfo(str(prefix), run_name(prefix, meta), str(meta.get("created", "")),
                   str(meta.get("dataset", "")), str(meta.get("loss", "")),
                   *headline_accuracy(meta), (paths(prefix)["json"].parent / KEPT).is_file())


def rename(prefix: str | os.PathLike, name: str) -> None:
    """Give a run a name of the user's (stored in its JSON; the files keep theirs)."""
    name = " ".join(str(name).split())[:MAX_NAME]
    if not name:
        raise SiameseError("a run's name cannot be empty")
    meta = read_meta(prefix, verify=())
    meta["display_name"] = name
    atomic_write_text(paths(prefix)["json"], json.dumps(meta, indent=2, sort_keys=True) + "\n")


def keep(prefix: str | os.PathLike, on: bool = True) -> None:
    """Keep a run for ``KEPT_RETENTION_S`` instead of ``RETENTION_S`` (or let pruning have it
    after a day again). ``StorageError`` when the server keeps ``MAX_KEPT_TOTAL`` already."""
    marker = paths(prefix)["json"].parent / KEPT
    if on:
        if not marker.is_file() and kept_count(marker.parent.parent) >= MAX_KEPT_TOTAL:
            raise StorageError(f"this server keeps at most {MAX_KEPT_TOTAL} runs beyond a day, "
                               f"and has that many: download this one's weights instead")
        atomic_write_text(marker, "{}\n")
    else:
        marker.unlink(missing_ok=True)


def delete(prefix: str | os.PathLike) -> bool:
    """Delete a run's folder, if it is one this module could have made (``is_run_dir``)."""
    folder = paths(prefix)["json"].parent
    if not is_run_dir(folder):
        return False
    shutil.rmtree(folder, ignore_errors=True)
    return True


# --- two runs side by side -----------------------------------------------------------------------

# What a side-by-side shows of each run: (row, where in the model JSON, format).
_RESULTS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("dataset", ("dataset",), "{}"),
    ("test pair accuracy", ("test", "pair_accuracy"), "{:.2%}"),
    ("test ROC AUC", ("test", "roc_auc"), "{:.4f}"),
    ("test equal error rate", ("test", "eer"), "{:.2%}"),
    ("test one-shot (N-way)", ("test", "one_shot"), "{:.1%}"),
    ("validation pair accuracy", ("metrics", "pair_accuracy"), "{:.2%}"),
    ("validation ROC AUC", ("metrics", "roc_auc"), "{:.4f}"),
    ("threshold", ("metrics", "threshold"), "{:.3f}"),
    ("kept epoch", ("best_epoch",), "{}"),
    ("epochs trained", ("epochs_done",), "{}"),
    ("training time", ("train_seconds",), "{:.0f} s"),
)
# Settings always shown; the other training settings only where the two runs differ.
_SETTINGS_SHOWN = ("loss", "margin", "embedding_dim", "batch_size", "learning_rate", "pairing")


@dataclass(frozen=True)
class SideBySide:
    """Two (or more) runs compared: ``rows`` of (what, one text per run); ``curves`` the
    validation history of each run (run name, epoch, seconds, pair accuracy, ROC AUC), for a
    chart."""

    names: list[str]
    rows: list[tuple[str, list[str]]]
    curves: list[dict]

    @property
    def differs(self) -> set[str]:
        """The rows whose values are not all equal."""
        return {what for what, values in self.rows if len(set(values)) > 1}


def _get(meta: dict, where: tuple[str, ...]):
    for key in where:
        if not isinstance(meta, dict) or key not in meta:
            return None
        meta = meta[key]
    return meta


def _text(value, fmt: str = "{}") -> str:
    if value is None:
        return "—"
    try:
        return fmt.format(value)
    except (TypeError, ValueError):
        return str(value)


def side_by_side(prefixes: list[str | os.PathLike]) -> SideBySide:
    """The results, the settings (all that differ, plus the main ones) and the validation
    curves of saved runs, for comparing them. ``SiameseError`` if one cannot be read."""
    metas = [read_meta(p, verify=()) for p in prefixes]
    names: list[str] = []
    for p, m in zip(prefixes, metas):
        name = run_name(p, m)
        # Two runs may share a name: the run id tells them apart in the table and the chart.
        names.append(name if name not in names else f"{name} ({Path(p).parent.name[:6]})")
    rows = [(what, [_text(_get(m, where), fmt) for m in metas]) for what, where, fmt in _RESULTS]
    # A setting already shown as a result (the dataset) would give the table two rows of one
    # name: the results row stands for it.
    results = {what for what, _, _ in _RESULTS}
    keys = sorted({k for m in metas for k in (m.get("train") or {})})
    for key in keys:
        values = [_text(_get(m, ("train", key))) for m in metas]
        what = key.replace("_", " ")
        if what not in results and (key in _SETTINGS_SHOWN or len(set(values)) > 1):
            rows.append((what, values))
    curves = [{"run": name, "epoch": h.get("epoch"), "seconds": h.get("elapsed"),
               "pair accuracy": h.get("pair_accuracy"), "ROC AUC": h.get("roc_auc")}
              for name, m in zip(names, metas) for h in (m.get("history") or [])]
    return SideBySide(names, rows, curves)
