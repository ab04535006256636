import os

from siamese_core import weights as W

DAY = 24 * 3600


def make_run(root, name, age_s, now):
    run = root / name
    run.mkdir()
    for suffix in (".json", ".onnx", ".weights.h5"):
        f = run / f"mnist-5k-contrastive{suffix}"
        f.write_text("x")
        os.utime(f, (now - age_s, now - age_s))
    os.utime(run, (now - age_s, now - age_s))
    return run / "mnist-5k-contrastive"


def test_prune_runs_removes_old_runs_only(tmp_path):
    now = 1_800_000_000.0
    old = make_run(tmp_path, "old", 2 * DAY, now)
    in_use = make_run(tmp_path, "in_use", 3 * DAY, now)
    fresh = make_run(tmp_path, "fresh", 3600, now)
    # An old run with one file written recently (a save in progress) is not old.
    touched = make_run(tmp_path, "touched", 2 * DAY, now)
    os.utime(touched.with_suffix(".json"), (now - 60, now - 60))
    (tmp_path / "stray.txt").write_text("not a run")
    assert W.prune_runs(tmp_path, DAY, keep=[str(in_use), None], now=now) == 1
    assert not old.parent.exists()
    assert in_use.parent.exists() and fresh.parent.exists() and touched.parent.exists()
    assert (tmp_path / "stray.txt").exists()
    assert W.prune_runs(tmp_path / "missing", DAY) == 0
