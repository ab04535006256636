"""Smoke runs of every benchmark script at tiny sizes, so the scripts cannot rot.
The real measurements (BENCHMARKS.md) use the scripts' defaults and stay out of CI."""
import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

BENCH = ROOT / "bench"


def run(script, *args, tmp_path):
    out = tmp_path / f"{script}.json"
    r = subprocess.run([sys.executable, str(BENCH / f"{script}.py"), *args, "--out", str(out)],
                       cwd=BENCH, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout, json.loads(out.read_text())


def test_pairs_smoke(tmp_path):
    out, data = run("pairs", "--n", "3000", "--repeat", "1", tmp_path=tmp_path)
    assert "speed-up" in out and data["speedup"] > 1
    assert data["rows"][0]["pairs"] == 6000 and data["machine"]["nproc"] >= 1


def test_latency_smoke(tmp_path):
    out, data = run("latency", "--calls", "20", "--batch", "200", tmp_path=tmp_path)
    stages = [r["stage"] for r in data["rows"]]
    assert stages == ["compare (end to end)", "preprocess x2", "inference (embed 2)"]
    assert all(r["p50 ms"] > 0 for r in data["rows"]) and data["embed_images_per_s"] > 0


@pytest.mark.parametrize("script,args", [
    ("time_to_accuracy", ["--budget", "3", "--short-budget", "2", "--max-train", "300"]),
    ("efficiency", ["--epochs", "2", "--matmul", "256", "--max-train", "400",
                    "--variants", "default"]),
    ("scale", ["--sizes", "500,1000", "--queries", "50", "--dataset", "mnist-5k"]),
    ("train_page", ["--seeds", "0", "--cold-seeds", "", "--seconds", "3", "--max-train", "300",
                    "--set", "margin=0.8"]),
])
def test_training_benchmarks_smoke(script, args, tmp_path):
    pytest.importorskip("tensorflow")
    out, data = run(script, *args, tmp_path=tmp_path)
    assert "|" in out and data["rows"]
    if script == "time_to_accuracy":
        assert {r["recipe"] for r in data["rows"]} >= {"keras-io", "pyimagesearch"}
    if script == "train_page":
        assert data["rows"][0]["run"] == "page defaults, margin=0.8, seed 0, warm"
        assert data["shipped"]["pair acc"] > 0.95 and data["config"]["seconds"] == 3
        assert data["config"]["margin"] == 0.8
        row = data["rows"][0]
        low, high = row["ci"]
        assert low <= row["difference"] <= high and 0 < row["all pairs"] <= 1
        assert data["shipped"]["all pairs"] > 0.98
    if script == "scale":
        assert set(data["slopes"]) == {"make_pairs s", "train epoch s", "embed gallery s",
                                       "50 NN queries s"}


@pytest.mark.e2e
def test_train_page_browser_smoke(tmp_path):
    """The real-browser benchmark: the app, Chromium, one short run of the Train page."""
    pytest.importorskip("playwright")
    from pathlib import Path
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("chromium not installed")
    out, data = run("train_page_browser", "--settle", "0", "--seconds", "5", "--images", "300",
                    tmp_path=tmp_path)
    (row,) = data["rows"]
    assert 5 <= row["wall s"] < 120 and row["epochs"] >= 1 and "%" in row["pair acc (val)"]
    assert row["worker CPU s"] > 1 and row["server CPU s"] > 0   # both sides are counted
    # The page's comparison with the shipped model, read back from the page: the shipped
    # model's all-pairs accuracy is fixed (README), the verdict one of three phrases.
    assert abs(row["shipped all pairs"] - 0.9878) < 1e-9 and 0 < row["all pairs"] <= 1
    assert row["verdict"] in ("significantly better", "significantly worse",
                              "no significant difference")


@pytest.mark.e2e
def test_soak_smoke(tmp_path):
    out, data = run("soak", "--sessions", "1", "--uploads", "2", "--side", "1024",
                    tmp_path=tmp_path)
    assert data["warm_mb"] > 0 and len(data["samples_mb"]) == 3 and "growth_peak_mb" in data


def test_distributed_smoke(tmp_path):
    """Two of the three parts (the speed part's runs are the same ``run`` with a clock: 40 s of
    the suite's budget for no other code)."""
    out, data = run("distributed", "--parts", "schedule,equivalence", "--seconds", "3",
                    "--equiv-steps", "2", "--max-train", "400", "--epochs", "1", "--seeds", "0",
                    tmp_path=tmp_path)
    assert data["speed"] == [] and data["same_schedule"][0]["steps"] > 0
    assert len(data["equivalence"]) == 2
    assert 0.5 <= data["same_schedule"][0]["2 workers"] <= 1


def test_distributed_keys_smoke(tmp_path):
    """The instance-key check: two workers, fresh keys then fixed ones, a row for each worker."""
    out, data = run("distributed", "--keys", "20", tmp_path=tmp_path)
    rows = data["rows"]
    assert [(r["instance keys"], r["worker"]) for r in rows] == [
        ("fresh", 0), ("fresh", 1), ("fixed", 0), ("fixed", 1)]
    assert all(r["calls"] == 20 and r["ms per call"] > 0 for r in rows) and "KB kept" in out


def test_soak_growth_is_the_slope_after_the_first_minute():
    import numpy as np
    sys.path.insert(0, str(BENCH))
    from distributed import growth_per_step
    # 1 MB in the first minute (start-up), then 2 KB a step: only the later slope counts.
    samples = [{"elapsed": t, "step": 100 * t,
                "rss_mb": 800 + (t >= 60) * (1 + 100 * (t - 60) * 2 / 1024)}
               for t in range(0, 300, 15)]
    assert growth_per_step(samples, after=60.0) == pytest.approx(2.0)
    assert np.isnan(growth_per_step(samples[:4], after=60.0))      # no sample after a minute


def test_one_shot_smoke(tmp_path):
    """bench/one_shot.py on a fake Omniglot: two zips of 4 "alphabets" of 5 "characters" (each a
    bar at its own angle), 20-way episodes only where an alphabet has 20: none here, so the
    script must say which settings it skipped rather than crash."""
    import io
    import zipfile

    import cv2
    import numpy as np
    from PIL import Image
    pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    folder = tmp_path / "omniglot"
    folder.mkdir()
    for z, alphabets in (("images_background_small1.zip", ("A", "B")),
                         ("images_background_small2.zip", ("B", "C", "D"))):
        with zipfile.ZipFile(folder / z, "w") as f:
            for a in alphabets:
                for c in range(5):
                    for w in range(6):
                        im = np.full((105, 105), 255, np.uint8)
                        t = np.pi * c / 5 + "ABCD".index(a) * 0.3 + rng.normal(0, 0.05)
                        cv2.line(im, (int(52 - 35 * np.cos(t)), int(52 - 35 * np.sin(t))),
                                 (int(52 + 35 * np.cos(t)), int(52 + 35 * np.sin(t))), 0, 6)
                        buf = io.BytesIO()
                        Image.fromarray(im).save(buf, format="PNG")
                        f.writestr(f"{z[:-4]}/{a}/character{c:02d}/{c}_{w:02d}.png", buf.getvalue())
    # Issue 23: leave one alphabet out (here two of the four folds), a second recipe on the same
    # folds and episodes, and two test-time variants of the first's models, compared paired.
    out, data = run("one_shot", str(folder), "--seconds", "2", "--episodes", "20", "--loo",
                    "--only", "C,D", "--versus", "learning_rate=0.003",
                    "--test-time", "tta,centre", tmp_path=tmp_path)
    assert [f["heldout_alphabets"] for f in data["folds"]] == [["C"], ["D"]]
    fold = data["folds"][0]
    assert fold["n_images"]["test"] == 30 and set(fold["runs"]) == {"ours", "versus"}
    assert fold["runs"]["versus"][0]["seed"] == 0 and data["versus"] == {"learning_rate": 0.003}
    rows = {r["setting"]: r for r in fold["error_percent"]}
    assert set(rows) == {"5-way 1-shot", "5-way 5-shot"}          # 20-way needs 20 characters
    keys = ("ours", "versus", "tta", "centre", "mhd", "raw_pixel_1nn")
    assert all(0 <= rows[s][k] <= 100 for s in rows for k in keys)
    assert len(rows["5-way 1-shot"]["ours_wrong"]) == 20
    assert "skipped 20-way" in out
    summary = {r["setting"]: r["stats"] for r in data["summary"] if r["folds"] == "all"}
    st = summary["5-way 1-shot"]
    assert st["folds"] == 2 and st["low"] <= st["error"] <= st["high"]
    assert st["difference"] == pytest.approx(st["error"] - st["versus_error"])
    assert st["difference_low"] <= st["difference"] <= st["difference_high"]
    for variant in ("tta", "centre"):          # the same models, scored another way
        sv = next(r for r in data["summary"] if r["folds"] == "all"
                  and r["setting"] == "5-way 1-shot")[f"stats_{variant}"]
        assert sv["error"] == st["error"] and 0 <= sv["versus_error"] <= 100
    assert data["test_time"] == ["tta", "centre"] and len(data["warps"]) == 9


def test_one_shot_bootstrap_intervals_and_the_paired_difference():
    """bench/one_shot.bootstrap: the error over folds, an interval that narrows with more
    episodes, and a paired difference that sees a one-point gain the separate intervals blur."""
    sys.path.insert(0, str(BENCH))
    try:
        from one_shot import bootstrap
    finally:
        sys.path.remove(str(BENCH))
    import numpy as np
    rng = np.random.default_rng(0)
    # 8 folds of different difficulty; recipe b gets right 1 point of the episodes a gets wrong.
    a = [rng.random(1000) < p for p in np.linspace(0.05, 0.30, 8)]
    b = [x & (rng.random(len(x)) > 0.06) for x in a]
    s = bootstrap(a, b, n_boot=500)
    assert s["error"] == pytest.approx(100 * np.mean([x.mean() for x in a]))
    assert s["low"] < s["error"] < s["high"] and s["high"] - s["low"] > 5   # alphabets differ
    assert 0 < s["difference_low"] < s["difference"] < s["difference_high"] < 2.5
    assert s["p_not_better"] == 1.0                     # a is worse in every resample
    assert bootstrap(b, a, n_boot=500)["p_not_better"] == 0.0
    same = bootstrap(a, a, n_boot=200)
    assert same["difference"] == same["difference_low"] == same["difference_high"] == 0


def test_stroke_width_measures_the_pen():
    """bench/verification.stroke_width: the mean width of a scan's strokes, whatever their
    length or darkness; the pen peers are its log and the stroke grey's."""
    sys.path.insert(0, str(BENCH))
    try:
        from verification import ink_width, pen, stroke_width
    finally:
        sys.path.remove(str(BENCH))
    import cv2
    import numpy as np

    def scan(thickness, grey=60, length=200):
        page = np.full((120, 260), 235, np.uint8)
        cv2.line(page, (20, 60), (20 + length, 60), grey, thickness)
        return page
    for t in (1, 3, 5, 9):
        drawn = int((scan(t)[:, 100] < 150).sum())     # the stroke's width as drawn, in px
        assert stroke_width(scan(t)) == pytest.approx(drawn, rel=0.1)
        assert stroke_width(scan(t, length=120)) == pytest.approx(stroke_width(scan(t)), rel=0.1)
    assert stroke_width(scan(5, grey=20)) == pytest.approx(stroke_width(scan(5, grey=90)), rel=0.15)
    assert ink_width(np.zeros((5, 5), np.uint8)) == 0
    f = pen([scan(2), scan(8, grey=20)])
    assert f["pen_width"].shape == (2, 1) and f["pen_width"][1, 0] - f["pen_width"][0, 0] > 1
    assert f["pen_grey"][0, 0] > f["pen_grey"][1, 0]       # the lighter pen, the higher grey


def test_verification_against_k_references_takes_the_median():
    """bench/verification.reference_eers: a questioned image against k genuine references of
    the claimed person is judged on the median distance, so one odd reference does not decide;
    skilled and random forgeries are scored apart."""
    sys.path.insert(0, str(BENCH))
    try:
        from verification import reference_eers
    finally:
        sys.path.remove(str(BENCH))
    import numpy as np
    # Two people, 5 genuine images each; person 0 also has 3 forgeries. Genuine pairs of a
    # person 0.2 apart, forgeries 0.5 from their person's genuine images, other people 0.9;
    # one odd genuine pair of person 0 (images 0 and 1) 2.0 apart, beyond everything.
    person = np.array([0] * 8 + [1] * 5)
    forged = np.array([False] * 5 + [True] * 3 + [False] * 5)
    dist = np.where(person[:, None] == person[None], 0.2, 0.9)
    dist[np.ix_(forged, forged)] = 0.9
    dist[np.ix_(forged, ~forged)] = dist[np.ix_(~forged, forged)] = 0.9
    dist[np.ix_(forged, ~forged & (person == 0))] = 0.5
    dist[np.ix_(~forged & (person == 0), forged)] = 0.5
    dist[0, 1] = dist[1, 0] = 2.0
    np.fill_diagonal(dist, 0)
    # Three references: the odd pair is at most one of three distances, the median is 0.2.
    three = reference_eers(dist, person, forged, 3)
    assert three["eer_random_k3"] == 0.0 and three["eer_skilled_k3"] == 0.0
    # ... while the mean is pulled by it: some genuine images of person 0 score beyond a
    # forgery.
    assert three["eer_skilled_k3_mean"] > 0
    assert set(three) == {f"eer_{kind}_k3{rule}" for kind in ("random", "skilled")
                          for rule in ("", "_mean", "_spread")}
    # One reference: where it is image 0 and the questioned image 1 (or back), the genuine
    # pair is at 2.0 and loses to every forgery.
    one = reference_eers(dist, person, forged, 1)
    assert one["eer_skilled_k1"] > 0 and one["eer_random_k1"] > 0
    assert reference_eers(dist, person, forged, 5) == {}     # nobody has more than 5 genuine


def test_verification_spread_rule_holds_each_writer_to_their_own_variation():
    """bench/verification.reference_scores' spread rule: a consistent writer (genuine pairs
    0.1 apart, forgeries 0.3) and a variable one (0.5 apart, forgeries 0.7): no distance
    separates both writers' genuine signatures from their forgeries, the mean less each
    writer's own spread does."""
    sys.path.insert(0, str(BENCH))
    try:
        from verification import reference_eers, reference_scores
    finally:
        sys.path.remove(str(BENCH))
    import numpy as np
    person = np.array([0] * 7 + [1] * 7)
    forged = np.array(([False] * 5 + [True] * 2) * 2)
    dist = np.full((14, 14), 2.0)
    for p, (g, f) in enumerate(((0.1, 0.3), (0.5, 0.7))):
        gen, forg = (person == p) & ~forged, (person == p) & forged
        dist[np.ix_(gen, gen)] = g
        dist[np.ix_(gen, forg)] = dist[np.ix_(forg, gen)] = f
    np.fill_diagonal(dist, 0)
    r = reference_eers(dist, person, forged, 3)
    assert r["eer_skilled_k3"] == r["eer_skilled_k3_mean"] == 50.0
    assert r["eer_skilled_k3_spread"] == 0.0
    s = reference_scores(dist, np.array([0, 1, 2]), np.array([3, 5]))
    np.testing.assert_allclose(s["_spread"], [0.0, 0.2])
    np.testing.assert_allclose(s[""], [0.1, 0.3])


def test_fused_distances_are_scale_free_sums():
    import numpy as np
    sys.path.insert(0, str(BENCH))
    try:
        from verification import fused
    finally:
        sys.path.remove(str(BENCH))
    a = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]])   # mean off-diagonal 2
    b = np.array([[0.0, 30.0, 10.0], [30.0, 0.0, 20.0], [10.0, 20.0, 0.0]])   # mean 20
    np.testing.assert_allclose(fused(a, b), a / 2 + b / 20)
    np.testing.assert_allclose(fused(a, 100 * a), a)          # no distance outweighs by scale


def test_verification_smoke_with_forgeries(tmp_path, signature_zip):
    """bench/verification.py on a zip with skilled forgeries: they train as negatives, the
    peers and ours report skilled-forgery EERs, and the ink shortcut is measured."""
    pytest.importorskip("tensorflow")
    out, data = run("verification", str(signature_zip), "--folds", "4", "--only-folds", "1",
                    "--recipes", "ink", "--seconds", "3", "--episodes", "50", "--way", "2",
                    "--test-time", "--binarised", "--fusion", "--set", "pixels=true",
                    tmp_path=tmp_path)
    fold = data["folds"][0]
    assert {"hog", "hog_thin", "pen_grey", "pen_width", "raw_photo", "ours_ink", "ours_ink_tta",
            "raw_ink", "ours_ink+raw", "ours_ink_tta+raw"} <= set(fold)
    # A model with its pixels (--set pixels=true) is also scored on its network's part alone.
    assert 0 < fold["ours_ink"]["pixel_weight"] < 1
    assert fold["ours_ink"]["reference_rule"] in ("median", "mean", "spread")
    assert {"ours_ink_network", "ours_ink_tta_network"} <= set(fold)
    assert fold["ours_ink_network"]["mean_distance_same"] != pytest.approx(
        fold["ours_ink"]["mean_distance_same"], rel=1e-6)
    # --binarised: each model also scored on its test inputs without grey levels (the ink
    # shortcut's check): other inputs, other distances.
    assert fold["ours_ink_binarised"]["mean_distance_same"] != pytest.approx(
        fold["ours_ink"]["mean_distance_same"], rel=1e-6)
    assert "eer_skilled" in fold["ours_ink_tta_binarised"]
    # Scored apart: the rates of a 3-s model on a tiny fold can coincide (CI saw 43.5 % and
    # 100 % for both), the genuine pairs' mean distance cannot unless TTA did nothing.
    assert fold["ours_ink_tta"]["mean_distance_same"] != pytest.approx(
        fold["ours_ink"]["mean_distance_same"], rel=1e-6)
    assert 0 <= fold["ours_ink"]["eer_skilled"] <= 100
    assert 0 <= fold["hog"]["eer_skilled_k5"] <= 100 and "eer_random_k5" in fold["ours_ink_tta"]
    assert set(data["ink_shortcut"]) == {"raw scans: stroke grey", "raw scans: stroke width",
                                         "ink inputs: mean ink level", "ink inputs: stroke width"}
    assert 0 <= fold["pen_width"]["eer_skilled"] <= 100 and "eer_random_k5" in fold["pen_grey"]


def test_verification_binarise_all_trains_without_grey_levels(tmp_path, signature_zip):
    """--binarise-all (the ink-level ablation): the ink recipe trains and is tested on inputs
    whose ink is at one level, so scoring them binarised again changes nothing."""
    pytest.importorskip("tensorflow")
    _, data = run("verification", str(signature_zip), "--folds", "4", "--only-folds", "1",
                  "--recipes", "ink", "--seconds", "3", "--episodes", "50", "--way", "2",
                  "--references", "--binarise-all", "--binarised", tmp_path=tmp_path)
    fold = data["folds"][0]
    scored = fold["ours_ink_binarised"]
    assert scored == {k: fold["ours_ink"][k] for k in scored} and "eer_skilled" in scored
    import numpy as np

    from siamese_core.preprocess import binary_ink as binary   # the transform the bench uses
    x = np.array([[0, 3, 128, 255]], np.uint8)
    assert binary(x).tolist() == [[0, 255, 255, 255]]


def test_gallery_smoke(tmp_path, photo_zip):
    """bench/gallery.py: enrol k photos of people a model never saw, identify the rest."""
    pytest.importorskip("tensorflow")
    from siamese_core.config import recipe
    from siamese_core.train import train
    out = tmp_path / "run" / "faces"
    train(recipe(f"zip:{photo_zip}", kind="photo", epochs=1, seconds=None), [], out=out)
    text, data = run("gallery", "--weights", str(out), "--shots", "1", "2", "--repeats", "2",
                     "--ratios", "1.0", "0.5", "--rule", "spread", tmp_path=tmp_path)
    assert "never trained on" in text and [r["k"] for r in data["rows"]] == [1, 2, 1, 2]
    # --rule: identities scored by another rule than the model's own (a paired comparison).
    assert data["rule"] == "spread" and data["chosen_rule"] in ("median", "mean", "spread")
    assert "identities scored by the adjusted distance" in text
    # 2 test people, both enrolled (at least 2 always are): 2 repeats x 2 people x (6 - k).
    assert [r["questions"] for r in data["rows"]] == [20, 16, 20, 16]
    # The calibrated threshold, then the stricter one of 1 % validation false accepts.
    calibrated, strict = data["rows"][0]["threshold"], data["rows"][2]["threshold"]
    assert strict <= calibrated
    for r in data["rows"]:
        assert 0 <= r["identified %"] <= r["rank-1 %"] <= 100
    # The ratio rule at r = 1 accepts whatever the threshold accepts: the same divisions give
    # the calibrated rows' rates; a stricter r identifies no more.
    by = {(r["k"], r["ratio"]): r for r in data["ratio_rule"]}
    for row in data["rows"][:2]:
        loose, strict = by[(row["k"], 1.0)], by[(row["k"], 0.5)]
        assert loose["identified % (ratio rule)"] == row["identified %"]
        assert loose["strangers accepted % (ratio rule)"] == row["stranger accepted %"]
        assert strict["identified % (ratio rule)"] <= loose["identified % (ratio rule)"]


def test_the_ratio_rule_against_the_threshold_alone_by_hand():
    import numpy as np
    sys.path.insert(0, str(BENCH))
    try:
        from gallery import ratio_rows
    finally:
        sys.path.remove(str(BENCH))

    class Model:
        threshold = 0.45
    known = np.array([[0.2, 0.5, 1], [0.4, 0.45, 1], [0.3, 0.35, 0]])   # d1, d2, right
    strange = np.array([[0.3, 0.6, 0], [0.5, 0.55, 0]])
    (row,) = ratio_rows(Model(), known, strange, k=1, ratios=[0.8])
    # Ratio rule: only the first question passes (0.4 > 0.8 * 0.45), and the first stranger.
    assert row["identified % (ratio rule)"] == 33.3
    assert row["strangers accepted % (ratio rule)"] == 50.0
    # The threshold alone identifies as many from 0.2 on, where no stranger passes.
    assert row["threshold alone, as many identified"] == 0.2
    assert row["strangers accepted % (threshold alone)"] == 0.0


def test_verification_smoke_faces_in_a_room(tmp_path, face_zip):
    """bench/verification.py --in-a-room with the face crop: photos framed like a camera's, the
    peers on the cropped faces; the photo without a face is counted, not dropped."""
    out, data = run("verification", str(face_zip), "--folds", "2", "--only-folds", "1",
                    "--peers-only", "--in-a-room", "--set", "face_crop=true", "--episodes", "50",
                    "--way", "3", tmp_path=tmp_path)
    fold = data["folds"][0]
    assert {"raw_photo", "eigenfaces", "lbp"} <= set(fold) and "ours_photo" not in fold
    assert data["args"]["in_a_room"] is True
    sys.path.insert(0, str(BENCH))
    try:
        import verification
    finally:
        sys.path.remove(str(BENCH))
    from siamese_core.preprocess import find_face
    raw = verification.in_a_room(verification.load(face_zip)[0], 0)
    assert fold["faceless"] == sum(find_face(g) is None for g in raw) >= 1   # the bare wall


def test_face_detection_smoke(tmp_path, face_zip):
    out, data = run("face_detection", str(face_zip), tmp_path=tmp_path)
    framed, room = data["rows"]
    assert (framed["framing"], room["framing"]) == ("as framed", "in a room")
    assert framed["images"] == 33 and framed["found %"] == round(100 * 32 / 33, 1)
    assert room["median face share %"] < framed["median face share %"]
