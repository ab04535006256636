"""The runs folder: private, never through a symbolic link, and pruned of its own runs only."""
import os
import stat
from pathlib import Path

import pytest

from siamese_core import runs
from siamese_core import weights as W
from siamese_core.runs import StorageError

DAY = 24 * 3600
NOW = 1_800_000_000.0


def make_run(root, name, age_s, now=NOW):
    run = root / name
    run.mkdir()
    for suffix in (".json", ".onnx", ".weights.h5"):
        f = run / f"mnist-5k-contrastive{suffix}"
        f.write_text("x")
        os.utime(f, (now - age_s, now - age_s))
    os.utime(run, (now - age_s, now - age_s))
    return run / "mnist-5k-contrastive"


def rid(n: int) -> str:
    return f"{n:032x}"


def test_private_dir_is_created_0700_and_tightened(tmp_path):
    root = runs.private_dir(tmp_path / "a" / "runs")
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    os.chmod(root, 0o777)
    runs.private_dir(root)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


def test_private_dir_refuses_links_files_and_other_users(tmp_path, monkeypatch):
    target = tmp_path / "elsewhere"
    target.mkdir()
    os.symlink(target, tmp_path / "planted")
    with pytest.raises(StorageError, match="symbolic link"):
        runs.private_dir(tmp_path / "planted")
    with pytest.raises(StorageError, match="symbolic link"):
        runs.new_run(tmp_path / "planted", "m")
    (tmp_path / "file").write_text("x")
    with pytest.raises(StorageError, match="not a directory"):
        runs.private_dir(tmp_path / "file")
    mine = runs.private_dir(tmp_path / "mine")
    uid = os.getuid()
    monkeypatch.setattr(runs.os, "getuid", lambda: uid + 1)
    with pytest.raises(StorageError, match="another user"):
        runs.private_dir(mine)
    assert list(target.iterdir()) == []


def test_new_run_is_a_fresh_id_and_a_safe_name(tmp_path):
    a, b = runs.new_run(tmp_path, "folder:../x y"), runs.new_run(tmp_path, "folder:../x y")
    assert a.parent != b.parent and a.parent.parent == tmp_path and a.name == "folder_.._x_y"
    assert not a.parent.exists()       # made by the worker when it saves: nothing on failure


def test_prune_removes_old_runs_only(tmp_path):
    old = make_run(tmp_path, rid(1), 2 * DAY)
    in_use = make_run(tmp_path, rid(2), 3 * DAY)
    fresh = make_run(tmp_path, rid(3), 3600)
    # An old run with one file written recently (a save in progress) is not old.
    touched = make_run(tmp_path, rid(4), 2 * DAY)
    os.utime(touched.with_suffix(".json"), (NOW - 60, NOW - 60))
    (tmp_path / "stray.txt").write_text("not a run")
    assert runs.prune(tmp_path, DAY, keep=[str(in_use), None], now=NOW) == 1
    assert not old.parent.exists()
    assert in_use.parent.exists() and fresh.parent.exists() and touched.parent.exists()
    assert (tmp_path / "stray.txt").exists()
    assert runs.prune(tmp_path / "missing", DAY) == 0


def test_prune_leaves_what_it_did_not_make(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = make_run(outside, rid(9), 5 * DAY)
    root = tmp_path / "root"
    root.mkdir()
    make_run(root, "not-a-run-id", 5 * DAY)                 # a name we never use
    foreign = make_run(root, rid(5), 5 * DAY)
    (foreign.parent / "notes.txt").write_text("someone's")   # content we never write
    os.symlink(victim.parent, root / rid(6))                 # a link to a run elsewhere
    assert runs.prune(root, DAY, now=NOW) == 0
    assert victim.parent.exists() and foreign.parent.exists() and (root / "not-a-run-id").exists()
    # A root that is itself a planted link is not touched at all.
    os.symlink(outside, tmp_path / "link-root")
    assert runs.prune(tmp_path / "link-root", DAY, now=NOW) == 0 and victim.parent.exists()


def test_default_root_is_private_to_the_user(monkeypatch, tmp_path):
    monkeypatch.delenv("SIAMESE_RUNS_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert runs.default_root() == tmp_path / "siamese-studio" / "runs"
    monkeypatch.setenv("SIAMESE_RUNS_DIR", str(tmp_path / "x"))
    assert runs.default_root() == tmp_path / "x"


def test_an_uploaded_dataset_is_private_and_pruned_like_a_run(tmp_path):
    path = runs.save_dataset(tmp_path, b"PK zip bytes")
    assert path.name == "dataset.zip" and path.read_bytes() == b"PK zip bytes"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert runs.is_run_dir(path.parent) and path.parent.parent == tmp_path
    other = runs.save_dataset(tmp_path, b"x")
    assert other.parent != path.parent
    old = NOW - 2 * DAY
    for p in (path, path.parent):
        os.utime(p, (old, old))
    assert runs.prune(tmp_path, now=NOW, keep=[other]) == 1
    assert not path.exists() and other.exists()
    # remove_dataset deletes a dataset folder, and nothing that is not one.
    stranger = tmp_path / rid(7)
    stranger.mkdir()
    (stranger / "dataset.zip").write_text("x")
    (stranger / "notes.txt").write_text("mine")
    runs.remove_dataset(stranger / "dataset.zip")
    assert stranger.exists()
    runs.remove_dataset(other)
    assert not other.parent.exists()


def test_a_sessions_gallery_lives_in_a_private_run_folder_and_is_pruned(tmp_path):
    from siamese_core import SiameseModel
    from siamese_core.gallery import Gallery
    from siamese_core.gallery import model_id as gallery_model

    m = SiameseModel.load()
    assert runs.gallery_file(tmp_path, None, gallery_model(m), create=False) is None
    assert runs.gallery_file(tmp_path, "../../etc", gallery_model(m), create=False) is None
    path = runs.gallery_file(tmp_path, None, gallery_model(m))
    assert path.parent.parent == tmp_path and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.name == f"gallery-{gallery_model(m)[:16]}.sqlite" and not path.exists()
    Gallery(path, m).enrol("seven", __import__("numpy").zeros((1, 28, 28), "uint8") + 200)
    # Found again by its folder's id (a reload), and a folder the pruning may delete.
    assert runs.gallery_file(tmp_path, path.parent.name, gallery_model(m), create=False) == path
    (path.parent / "gallery.sqlite-journal").write_bytes(b"")    # SQLite's, while writing
    assert runs.is_run_dir(path.parent)
    old = NOW - 2 * DAY
    for f in (*path.parent.iterdir(), path.parent):
        os.utime(f, (old, old))
    assert runs.prune(tmp_path, now=NOW, keep=[path.parent / "gallery"]) == 0   # in use
    assert runs.prune(tmp_path, now=NOW) == 1 and not path.exists()
    assert runs.gallery_file(tmp_path, path.parent.name, gallery_model(m), create=False) is None


def saved_run(root: Path, run_id: str, name: str = "mnist-5k-contrastive", **changes) -> Path:
    """A copy of the shipped model saved as a run under ``root``, its JSON updated with
    ``changes`` (dotted keys reach into sections: ``**{"train.seed": 3}``)."""
    import json
    import shutil

    from siamese_core import weights as W
    prefix = Path(root) / run_id / name
    prefix.parent.mkdir(parents=True)
    for p in W.paths(W.default_prefix()).values():
        shutil.copy(p, prefix.parent / p.name.replace("default", prefix.name))
    meta = json.loads(W.paths(prefix)["json"].read_text())
    meta["files"] = {k: v.replace("default", prefix.name) for k, v in meta["files"].items()}
    for key, value in changes.items():
        *path, last = key.split(".")
        node = meta
        for k in path:
            node = node[k]
        node[last] = value
    W.paths(prefix)["json"].write_text(json.dumps(meta))
    return prefix


def test_describe_rename_keep_delete(tmp_path):
    """A session's runs list (issue 16): a user's name in the JSON, kept runs survive pruning,
    delete removes a run folder and nothing else."""
    import json

    prefix = saved_run(tmp_path, rid(1))
    meta = json.loads(W.paths(prefix)["json"].read_text())
    info = runs.describe(prefix)
    assert (info.name, info.dataset, info.loss, info.on_test, info.kept) == (
        "mnist-5k-contrastive", "mnist-5k", "contrastive", True, False)
    assert info.accuracy == meta["test"]["pair_accuracy"]
    runs.rename(prefix, "  my   best\nrun ")            # whitespace folded to single spaces
    assert runs.describe(prefix).name == "my best run"
    with pytest.raises(runs.SiameseError, match="cannot be empty"):
        runs.rename(prefix, "   ")
    W.read_meta(prefix)                                   # still a valid, checksummed model
    runs.keep(prefix)
    assert runs.describe(prefix).kept and runs.is_run_dir(prefix.parent)
    old = NOW - 3 * DAY
    for f in prefix.parent.iterdir():
        os.utime(f, (old, old))
    assert runs.prune(tmp_path, now=NOW) == 0 and prefix.parent.exists()
    runs.keep(prefix, False)
    assert runs.prune(tmp_path, now=NOW) == 1 and runs.describe(prefix) is None
    other = make_run(tmp_path, rid(2), 0)
    (tmp_path / "notmine").mkdir()
    assert not runs.delete(tmp_path / "notmine" / "x") and (tmp_path / "notmine").exists()
    assert runs.delete(other) and not other.parent.exists()


def test_side_by_side_shows_results_main_settings_and_what_differs(tmp_path):
    """Two runs compared (issue 16): formatted results, the main settings always, other
    settings only where they differ, equal names told apart by run id, both histories."""
    a = saved_run(tmp_path, rid(1))
    b = saved_run(tmp_path, rid(2), **{"test.pair_accuracy": 0.5, "train.learning_rate": 0.001,
                                       "train.top_convs": 1, "history": [
                                           {"epoch": 1, "elapsed": 2.0, "pair_accuracy": 0.75,
                                            "roc_auc": 0.8}]})
    sbs = runs.side_by_side([a, b])
    assert sbs.names == ["mnist-5k-contrastive", f"mnist-5k-contrastive ({rid(2)[:6]})"]
    rows = dict(sbs.rows)
    assert rows["test pair accuracy"] == ["98.89%", "50.00%"]     # 0.9889 and 0.5, as %
    assert rows["learning rate"] == ["0.006", "0.001"]
    assert rows["top convs"] == ["0", "1"]                        # shown: it differs
    assert rows["loss"] == ["contrastive", "contrastive"]         # shown: a main setting
    assert "block" not in rows and "val pairs" not in rows       # equal and not main
    assert sbs.differs == {"test pair accuracy", "learning rate", "top convs"}
    history = W.read_meta(a, verify=())["history"]
    assert len(sbs.curves) == len(history) + 1
    assert sbs.curves[-1] == {"run": sbs.names[1], "epoch": 1, "seconds": 2.0,
                              "pair accuracy": 0.75, "ROC AUC": 0.8}
    # Runs on two datasets (issue 24, 1): the dataset is one row, never a results row and a
    # settings row of the same name (the page's table needs unique row names).
    c = saved_run(tmp_path, rid(3), **{"dataset": "zip:faces.zip", "train.dataset": "zip:faces.zip"})
    whats = [w for w, _ in runs.side_by_side([a, c]).rows]
    assert len(whats) == len(set(whats)) and whats.count("dataset") == 1
    assert dict(runs.side_by_side([a, c]).rows)["dataset"] == ["mnist-5k", "zip:faces.zip"]
    runs.rename(b, "fast")
    assert runs.side_by_side([a, b]).names == ["mnist-5k-contrastive", "fast"]
    W.paths(b)["json"].unlink()
    with pytest.raises(runs.SiameseError):
        runs.side_by_side([a, b])


def test_disk_use_is_bounded_in_time_count_and_bytes(tmp_path, monkeypatch):
    """Issue 24, 13: kept runs were never pruned, any number could be kept, uploads and runs
    had no byte bound, and pruning ran only when someone pressed Train. Kept runs go after 30
    days; a server keeps at most 20; past the store's limit new data is refused (nobody's
    recent data deleted for it); the app prunes on any page run, at most every 10 minutes."""
    kept = make_run(tmp_path, rid(1), 31 * DAY)
    (kept.parent / runs.KEPT).write_text("{}\n")
    recent_kept = make_run(tmp_path, rid(2), 29 * DAY)
    (recent_kept.parent / runs.KEPT).write_text("{}\n")
    assert runs.prune(tmp_path, now=NOW) == 1
    assert not kept.parent.exists() and recent_kept.parent.exists()

    monkeypatch.setattr(runs, "MAX_KEPT_TOTAL", 2)
    a, b = make_run(tmp_path, rid(3), 0), make_run(tmp_path, rid(4), 0)
    assert runs.kept_count(tmp_path) == 1
    runs.keep(a)
    with pytest.raises(runs.StorageError, match="keeps at most 2 runs"):
        runs.keep(b)
    runs.keep(a)                                       # keeping a kept run again is fine
    runs.keep(a, False)
    runs.keep(b)

    used = runs.usage(tmp_path)
    assert used == sum(f.stat().st_size for r in (recent_kept, a, b) for f in r.parent.iterdir())
    monkeypatch.setenv("SIAMESE_RUNS_MAX_MB", str((used + 1000) / 2**20))
    runs.make_room(tmp_path, 1000)
    with pytest.raises(runs.StorageError, match=r"space for trained models and uploads is full"):
        runs.make_room(tmp_path, 1001)
    assert all(r.parent.exists() for r in (recent_kept, a, b))   # refused, nothing deleted
    monkeypatch.delenv("SIAMESE_RUNS_MAX_MB")
    assert runs.store_limit() == runs.MAX_STORE_BYTES == 2 << 30

    import time
    old = make_run(tmp_path, rid(5), 2 * DAY, now=time.time())      # prune's clock: the real one
    runs._last_prune.clear()
    assert runs.prune_now_and_then(tmp_path) == 1 and not old.parent.exists()
    old = make_run(tmp_path, rid(6), 2 * DAY, now=time.time())
    assert runs.prune_now_and_then(tmp_path) == 0 and old.parent.exists()   # not yet again
    assert runs.prune_now_and_then(tmp_path, every_s=0) == 1
