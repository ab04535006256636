import json
import shlex
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from siamese_core import weights as W
from tests.conftest import ROOT


def cli(*args):
    return subprocess.run([sys.executable, "-m", "siamese_core", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def assert_clean_error(r, *words):
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in lines[0]


def test_pairs_montage(tmp_path):
    out = tmp_path / "m.png"
    r = cli("pairs", "--dataset", "mnist-5k", "--seed", "3", "--montage", out)
    assert r.returncode == 0, r.stderr
    assert Image.open(out).size == (7 * 192, 7 * 96)


def test_compare_json(digit_pngs):
    r = cli("compare", digit_pngs["three_a"], digit_pngs["three_b"], "--json")
    assert r.returncode == 0, r.stderr
    v = json.loads(r.stdout)
    assert set(v) == {"distance", "same", "confidence", "threshold"} and v["same"] is True
    r = cli("compare", digit_pngs["three_a"], digit_pngs["seven"])
    assert r.returncode == 0 and r.stdout.startswith("different")


def test_evaluate_json():
    r = cli("evaluate", "--dataset", "mnist-5k", "--split", "test", "--json", "--pairs", "2000")
    assert r.returncode == 0, r.stderr
    v = json.loads(r.stdout)
    for k in ("pair_accuracy", "roc_auc", "eer", "threshold", "n_pairs", "one_shot_10way"):
        assert k in v
    assert v["n_pairs"] == 2000 and v["pair_accuracy"] > 0.95 and v["one_shot_episodes"] >= 1000
    assert v["all_pairs_images"] == 1000 and v["all_pairs_accuracy"] > 0.95
    # Against 5 references of the claimed digit, by the rule the model records (the shipped
    # model records none: the median): fewer errors than single pairs.
    assert v["references_k"] == 5 and v["references_rule"] == "median"
    assert v["references_eer"] < v["eer"] and 0 <= v["references_far"] < 0.05


def test_evaluate_against_another_model():
    shipped = str(ROOT / "weights" / "default")
    r = cli("evaluate", "--weights", shipped, "--against", shipped, "--pairs", "2000")
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("against ") and "+0.00 points" in last
    assert last.endswith("no significant difference")
    assert_clean_error(cli("evaluate", "--against", "/nonexistent/model"), "no model")


def test_bad_inputs_exit_2_with_one_line(tmp_path, digit_pngs):
    assert_clean_error(cli("compare", tmp_path / "nope.png", digit_pngs["seven"]), "no such file")
    txt = tmp_path / "a.png"
    txt.write_text("hello")
    assert_clean_error(cli("compare", txt, digit_pngs["seven"]), "not a supported image")
    blank = tmp_path / "blank.png"
    Image.new("L", (280, 280), 255).save(blank)
    assert_clean_error(cli("compare", blank, digit_pngs["seven"]), "nothing drawn")
    assert_clean_error(cli("pairs", "--dataset", "nope", "--montage", tmp_path / "x.png"),
                       "unknown dataset")
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 20)
    (tmp_path / "idx" / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01"
                                                                 b"\x00")
    assert_clean_error(cli("pairs", "--dataset", f"idx:{tmp_path / 'idx'}", "--montage",
                           tmp_path / "x.png"), "longer than its header")
    bad = tmp_path / "w"
    for kind, p in W.paths(W.default_prefix()).items():
        W.paths(bad)[kind].write_bytes(p.read_bytes())
    W.paths(bad)["onnx"].write_bytes(b"garbage")
    assert_clean_error(cli("compare", "--weights", bad, digit_pngs["three_a"],
                           digit_pngs["seven"]), "checksum")


def test_train_tiny_in_process(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    from siamese_core.cli import main
    out = tmp_path / "tiny"
    rc = main(["train", "--epochs", "1", "--max-train", "200", "--max-val", "100",
               "--batch-size", "40", "--test-time", "tta", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr()
    assert "pair accuracy" in printed.out and "%" in printed.err   # final metrics + progress bar
    # The first line says the model embeds with test-time augmentation, and how to turn it off.
    first = next(line for line in printed.err.splitlines() if line.startswith("training on"))
    assert "test-time augmentation, --test-time none" in first
    assert W.read_meta(out)["train"]["epochs"] == 1


def test_train_defaults_are_the_library_defaults_and_the_user_data_recipe(ink_zip, photo_zip,
                                                                         signature_zip):
    """The CLI must not carry its own copy of the training defaults (it once did, stale). Your
    own images with no other option get the recipe measured for new classes of their kind
    (issues 13, 21): ink for drawings, photo for photographs, decided from the images."""
    from siamese_core.cli import build_parser, config_from_args
    from siamese_core.config import PHOTO_RECIPE, USER_RECIPE, TrainConfig, recipe

    def cfg(*argv):
        return config_from_args(build_parser().parse_args(["train", "--out", "x", *argv]))
    assert cfg() == TrainConfig()
    assert cfg("--seconds", "30") == TrainConfig(epochs=None, seconds=30.0)
    mine = cfg("--dataset", f"zip:{ink_zip}")
    assert mine == recipe(f"zip:{ink_zip}") and mine.loss == USER_RECIPE["loss"]
    assert mine.seconds == USER_RECIPE["seconds"] and mine.holdout == "auto"
    assert mine.rotated_classes and mine.group_batches and mine.input_size == 40
    assert mine.kind == "ink" and not mine.flip
    # Test-time augmentation (BENCHMARKS section 9): on in the recipe for both kinds, off in
    # the library defaults (the shipped digit model), and --test-time none turns it off.
    assert mine.test_time == "tta" and cfg().test_time == "none"
    assert cfg("--dataset", f"zip:{ink_zip}", "--test-time", "none").test_time == "none"
    faces = cfg("--dataset", f"zip:{photo_zip}")
    assert faces == TrainConfig(dataset=f"zip:{photo_zip}", **PHOTO_RECIPE)
    assert faces.kind == "photo" and faces.flip and not faces.rotated_classes
    assert faces.prep.fit == "crop" and faces.input_size == 48 and faces.test_time == "tta"
    assert mine.input_aspect == 1.0 and faces.input_aspect == 1.0
    # Wide ink (signatures, ~3:1 here) gets a wide frame (BENCHMARKS section 10); told a
    # shape, the recipe takes it.
    sigs = cfg("--dataset", f"zip:{signature_zip}")
    assert sigs.kind == "ink" and sigs.input_aspect == 2.0 and sigs.prep.shape == (56, 112)
    assert cfg("--dataset", f"zip:{signature_zip}", "--input-aspect", "1").prep.shape == (40, 40)
    # Told the kind, the recipe is that kind's, whatever the images look like.
    assert cfg("--dataset", f"zip:{photo_zip}", "--kind", "ink").rotated_classes
    tuned = cfg("--dataset", "folder:sig", "--kind", "ink", "--loss", "triplet", "--input-size",
                "48", "--fit", "box", "--no-augment", "--no-rotated-classes")
    assert (tuned.loss, tuned.input_size, tuned.fit, tuned.augment, tuned.seconds) == (
        "triplet", 48, "box", False, USER_RECIPE["seconds"])
    assert not tuned.rotated_classes and tuned.group_batches
    assert cfg("--group-batches").group_batches and not cfg().group_batches


def test_every_on_off_option_round_trips_both_ways(monkeypatch):
    """command_for writes --X or --no-X for each on/off setting that differs from the
    dataset's starting point, whichever way it differs (it once had no "on" spelling for
    augmentation and would have written None where a starting point had it off)."""
    from dataclasses import replace

    from siamese_core import cli, config
    for field in [o.field for o in cli.TRAIN_OPTIONS if o.kind is bool]:
        for value in (True, False):
            base = replace(config.recipe("mnist-5k"), **{field: not value})
            monkeypatch.setattr(config, "recipe", lambda spec, **kw: replace(base, **kw))
            cmd = cli.command_for(replace(base, **{field: value}), "runs/x")
            args = cli.build_parser().parse_args(shlex.split(cmd)[3:])
            assert getattr(cli.config_from_args(args), field) is value, cmd
            monkeypatch.undo()


def test_readme_command_rebuilds_the_shipped_network():
    """The shipped model's command in the README must describe the network its metadata
    records, although the defaults have moved on since it was trained."""
    import re
    import shlex

    from siamese_core.cli import build_parser
    from siamese_core.model import ModelConfig
    readme = (ROOT / "README.md").read_text()
    cmd = re.search(r"^python -m siamese_core (train .*--out weights/default)$", readme, re.M)
    from siamese_core.cli import config_from_args
    cfg = config_from_args(build_parser().parse_args(shlex.split(cmd.group(1))))
    shipped = ModelConfig.from_dict(W.read_meta(W.default_prefix())["model"])
    assert (tuple(cfg.filters), cfg.block, cfg.top_convs, cfg.embedding_dim) == (
        shipped.filters, shipped.block, shipped.top_convs, shipped.embedding_dim)
    assert (cfg.epochs, cfg.learning_rate, cfg.margin, cfg.batch_size) == (80, 6e-3, 1.0, 100)
    # The command it ran. Fields added since (kind, flip, face_crop, input_aspect, test_time,
    # forged_share, hard_weight, binary_ink, thin_ink, pixels) take the values that mean what
    # that run did (digits are ink, never mirrored, square, embedded once, grey, strokes as
    # written, the network alone; forgeries as then, had there been any); fit None is the ink
    # kind's "centre".
    ran, now = W.read_meta(W.default_prefix())["train"], cfg.to_dict()
    assert {k: now[k] for k in ran if k != "fit"} == {k: v for k, v in ran.items() if k != "fit"}
    assert cfg.prep.fit == ran["fit"] and cfg.resolved().kind == "ink" and not cfg.flip
    assert set(now) - set(ran) == {"kind", "flip", "face_crop", "input_aspect", "test_time",
                                   "forged_share", "hard_weight", "binary_ink", "thin_ink",
                                   "pixels"}
    assert not cfg.face_crop and cfg.input_aspect == 1.0 and cfg.test_time == "none"
    assert not cfg.pixels
    assert cfg.forged_share == 0.2 and cfg.hard_weight == 0 and not cfg.prep.binary
    assert not cfg.prep.thin


def test_train_rejects_bad_filters(capsys):
    from siamese_core.cli import build_parser
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--out", "x", "--filters", "8,x"])
    assert "comma-separated integers" in capsys.readouterr().err


def _weights_copy(tmp_path, name, edit=None, onnx=None):
    """A copy of the shipped model whose metadata ``edit`` changes (and whose ONNX file can be
    replaced, with a matching checksum)."""
    prefix = tmp_path / name
    src = W.paths(W.default_prefix())
    for kind, p in W.paths(prefix).items():
        p.write_bytes(src[kind].read_bytes())
    meta = json.loads(src["json"].read_text())
    if onnx is not None:
        W.paths(prefix)["onnx"].write_bytes(onnx)
        meta["sha256"]["onnx"] = W.sha256(W.paths(prefix)["onnx"])
    if edit is not None:
        edit(meta)
    W.paths(prefix)["json"].write_text(json.dumps(meta))
    return prefix


def _onnx_of_shape(side: int, dim: int) -> bytes:
    """A valid ONNX graph [N, side, side, 1] -> [N, dim] (flatten + slice), not our network."""
    from onnx import TensorProto, helper
    g = helper.make_graph(
        [helper.make_node("Flatten", ["image"], ["flat"]),
         helper.make_node("Slice", ["flat", "starts", "ends", "axes"], ["out"])],
        "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", side, side, 1])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", dim])],
        [helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
         helper.make_tensor("ends", TensorProto.INT64, [1], [dim]),
         helper.make_tensor("axes", TensorProto.INT64, [1], [1])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def _idx_dir(tmp_path, name, side=28, n=40, dims=None):
    import struct
    d = tmp_path / name
    d.mkdir()
    x = np.random.default_rng(0).integers(0, 255, (n, side, side)).astype(np.uint8)
    y = np.arange(n, dtype=np.uint8) % 4
    shape = dims or x.shape
    (d / "train-images-idx3-ubyte").write_bytes(
        struct.pack(">HBB3I", 0, 8, 3, *shape) + x.tobytes())
    (d / "train-labels-idx1-ubyte").write_bytes(struct.pack(">HBBI", 0, 8, 1, n) + y.tobytes())
    return f"idx:{d}"


def test_cli_refuses_bad_input_in_one_line(tmp_path, digit_pngs, capsys):
    """Issue 15, items 5-6: every bad value a user tried is one line and exit code 2, from the
    library's own validation (in-process: fast; TensorFlow is never reached)."""
    import math
    from siamese_core.cli import main

    a, b = digit_pngs["three_a"], digit_pngs["seven"]
    (tmp_path / "afile").write_text("x")
    nan_thr = _weights_copy(tmp_path, "nan", lambda m: m["calibration"].update(threshold=math.nan))
    cases = [
        (["evaluate", "--pairs", "0"], "--pairs must be between 10"),
        (["evaluate", "--pairs", "-5"], "--pairs must be"),
        (["evaluate", "--pairs", "1e9"], "--pairs must be between 10 and 1e+06"),
        (["evaluate", "--seed", "-1"], "seed must be between 0"),
        (["pairs", "--montage", tmp_path / "afile" / "m.png"], "is a file, not a directory"),
        (["pairs", "--montage", "x.png", "--seed", "-1"], "seed must be"),
        (["train", "--embedding-dim", "0", "--out", tmp_path / "m"], "embedding_dim must be"),
        (["train", "--embedding-dim", "-1", "--out", tmp_path / "m"], "embedding_dim must be"),
        (["train", "--seed", "-1", "--out", tmp_path / "m"], "seed must be"),
        (["train", "--seconds", "nan", "--out", tmp_path / "m"], "seconds must be finite"),
        (["train", "--seconds", "inf", "--out", tmp_path / "m"], "seconds must be finite"),
        (["train", "--lr", "1e10", "--out", tmp_path / "m"], "learning_rate must be"),
        (["train", "--lr", "-1", "--out", tmp_path / "m"], "learning_rate must be"),
        (["train", "--margin", "-1", "--out", tmp_path / "m"], "margin must be"),
        (["train", "--out", tmp_path / "afile" / "m"], "is a file, not a directory"),
        (["train", "--dataset", "nope", "--out", tmp_path / "m"], "unknown dataset"),
        (["evaluate", "--dataset", _idx_dir(tmp_path, "idx32", side=32)],
         "has 32x32 images; the model default takes 28x28"),
        (["pairs", "--montage", "x.png", "--dataset",
          _idx_dir(tmp_path, "huge", dims=(2**31, 2**31, 2**31))], "header declares"),
        (["pairs", "--montage", "x.png", "--dataset", _idx_dir(tmp_path, "idx5", side=5)],
         "images are 5x5 pixels"),
        (["compare", "--weights", _weights_copy(tmp_path, "nocal", lambda m: m.update(
            calibration={})), a, b], "calibration threshold must be a number"),
        (["compare", "--weights", _weights_copy(tmp_path, "abc", lambda m: m["calibration"].update(
            threshold="abc")), a, b], "calibration threshold must be a number"),
        (["compare", "--weights", nan_thr, a, b], "calibration threshold must be finite"),
        (["compare", "--weights", _weights_copy(tmp_path, "sha", lambda m: m["sha256"].update(
            onnx="abc")), a, b], "sha256 must hold"),
        (["compare", "--weights", _weights_copy(tmp_path, "v9", lambda m: m.update(
            format_version=9)), a, b], "newer than this program reads"),
        (["compare", "--weights", _weights_copy(tmp_path, "shape", onnx=_onnx_of_shape(32, 64)),
          a, b], "the graph takes"),
        (["compare", "--weights", _weights_copy(tmp_path, "dim", onnx=_onnx_of_shape(28, 10)),
          a, b], "the graph gives"),
        (["evaluate", "--weights", nan_thr], "calibration threshold must be finite"),
        (["compare", "--weights", _weights_copy(tmp_path, "prep", lambda m: m.update(
            preprocess={"size": 40, "fit": "centre"})), a, b], "size is the model's input_size"),
        (["compare", "--weights", _weights_copy(tmp_path, "fit", lambda m: m.update(
            preprocess={"size": 28, "fit": "stretch"})), a, b], "fit 'stretch' is not for ink images"),
        (["train", "--dataset", "mnist-5k", "--input-size", "40", "--out", tmp_path / "m"],
         "input_size applies to your own images"),
        (["train", "--input-size", "200", "--dataset", "zip:x.zip", "--out", tmp_path / "m"],
         "input_size must be between 16 and 128"),
        (["train", "--dataset", "zip:" + str(tmp_path / "afile"), "--out", tmp_path / "m"],
         "not a zip archive"),
        (["train", "--dataset", _idx_dir(tmp_path, "idx4"), "--holdout", "class", "--out",
          tmp_path / "m"], "at least 6 classes (2 each for train, validation and test); it has 4"),
    ]
    capsys.readouterr()
    for argv, words in cases:
        try:
            rc = main([str(x) for x in argv])
        except SystemExit as e:      # argparse
            rc = e.code
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and words in err[0], (argv, err)


def test_cli_errors_print_one_line(tmp_path):
    """The same, as a user sees it: a subprocess, stderr holds exactly one line, and a bad
    dataset is reported before TensorFlow is imported (no banner, no wait)."""
    code = ("import sys; from siamese_core.cli import main; rc = main(sys.argv[1:]); "
            "assert 'tensorflow' not in sys.modules, 'imported TensorFlow'; sys.exit(rc)")
    for argv, words in (
            (["train", "--dataset", "folder:/nonexistent", "--out", tmp_path / "m"],
             "is not a directory"),
            (["train", "--lr", "nan", "--out", tmp_path / "m"], "learning_rate must be finite"),
            (["evaluate", "--pairs", "0"], "--pairs must be between 10")):
        r = subprocess.run([sys.executable, "-c", code, *map(str, argv)], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
        assert_clean_error(r, words)
    assert not (tmp_path / "m.json").exists()


def test_the_first_line_says_when_the_inputs_are_wide(capsys):
    """The recipe widens the frame for wide ink (signatures): ``train`` says so, and how to
    undo it; square inputs are not mentioned."""
    from siamese_core.cli import _ConsoleProgress
    from siamese_core.train import TrainBegin
    for aspect in (2.0, 1.0):
        p = _ConsoleProgress()
        p.on_train_begin(TrainBegin({"loss": "bce", "pairing": "batch", "input_size": 40,
                                     "input_aspect": aspect}, 10, 5, 1, 1, ["a"]))
        p.abort()
        first = capsys.readouterr().err.splitlines()[0]
        assert first.startswith("training on 10 images, validating on 5 (bce loss")
        assert ("40×80 inputs (wide; --input-aspect 1 for square)" in first) == (aspect == 2)
    # Binary ink (the recipe's with skilled forgeries) is said too, with its way back.
    p = _ConsoleProgress()
    p.on_train_begin(TrainBegin({"loss": "bce", "pairing": "batch", "binary_ink": True,
                                 "thin_ink": True}, 10, 5, 1, 1, ["a"]))
    p.abort()
    first = capsys.readouterr().err.splitlines()[0]
    assert "binary ink (no pen darkness; --no-binary-ink for grey levels)" in first
    assert "thin strokes (no pen width; --no-thin-ink for strokes as written)" in first
    assert "pixels" not in first
    # The photo recipe's pixels beside the network, likewise.
    p = _ConsoleProgress()
    p.on_train_begin(TrainBegin({"loss": "triplet", "pairing": "batch", "pixels": True},
                                10, 5, 1, 1, ["a"]))
    p.abort()
    first = capsys.readouterr().err.splitlines()[0]
    assert "the inputs' pixels beside the network (--no-pixels for it alone)" in first


def test_pixels_are_the_photo_recipes_and_an_option_the_command_line_keeps(photo_zip):
    """Photos of new people train with their pixels beside the network unless
    ``--no-pixels``; ink does not (its recipe was measured without them)."""
    from siamese_core.cli import build_parser, command_for, config_from_args
    spec = f"zip:{photo_zip}"
    on = config_from_args(build_parser().parse_args(["train", "--dataset", spec, "--out", "x"]))
    off = config_from_args(build_parser().parse_args(
        ["train", "--dataset", spec, "--out", "x", "--no-pixels"]))
    assert on.prep.kind == "photo" and on.pixels and not off.pixels
    assert "--no-pixels" in command_for(off, "x") and "pixels" not in command_for(on, "x")
    ink = config_from_args(build_parser().parse_args(["train", "--dataset", spec, "--out", "x",
                                                      "--kind", "ink"]))
    assert not ink.pixels


def test_binary_ink_is_an_option_the_command_line_keeps(signature_zip):
    """``--no-binary-ink`` takes the recipe's binary ink back for a set with forgeries, and the
    Train page's command line for such a run says so (the recipe's own choice is left out)."""
    from siamese_core.cli import build_parser, command_for, config_from_args
    spec = f"zip:{signature_zip}"
    on = config_from_args(build_parser().parse_args(["train", "--dataset", spec, "--out", "x"]))
    off = config_from_args(build_parser().parse_args(
        ["train", "--dataset", spec, "--out", "x", "--no-binary-ink"]))
    assert on.prep.binary and not off.prep.binary
    assert "--no-binary-ink" in command_for(off, "x") and "binary" not in command_for(on, "x")
    # Thin strokes likewise, apart from binary ink.
    thick = config_from_args(build_parser().parse_args(
        ["train", "--dataset", spec, "--out", "x", "--no-thin-ink"]))
    assert on.prep.thin and not thick.prep.thin and thick.prep.binary
    assert "--no-thin-ink" in command_for(thick, "x") and "thin" not in command_for(on, "x")


def test_a_failed_training_leaves_no_half_drawn_bar():
    """An error during training (after the bar is drawn) must be the only thing left on the
    line: the bar is cleared, not left half-drawn above it."""
    from siamese_core.cli import _ConsoleProgress
    from siamese_core.train import TrainBegin
    p = _ConsoleProgress()
    p.on_train_begin(TrainBegin({"loss": "contrastive", "pairing": "batch"}, 10, 5, 1, 1, ["a"]))
    assert p.bar.leave
    p.abort()
    assert not p.bar.leave and p.bar.disable   # closed, and cleared rather than kept


def test_every_option_is_explained():
    """Issue 16, UX 8: `--help` documented few options and gave no examples."""
    from siamese_core.cli import build_parser
    sub = build_parser()._subparsers._group_actions[0].choices
    for name, parser in sub.items():
        undocumented = [a.dest for a in parser._actions if not a.help]
        assert not undocumented, (name, undocumented)
        assert parser.epilog and "python -m siamese_core " + name in parser.epilog, name
        text = parser.format_help()
        if "--dataset" in text:
            assert "folder:DIR" in text and "idx:DIR" in text and "mnist-5k" in text
    assert "(default: None)" not in sub["train"].format_help()
    # Defaults the recipe takes from the images are said as such.
    text = " ".join(sub["train"].format_help().split())
    assert "(default 1; your wide ink: 2)" in text
    assert "(default 28; your ink: 40; your photo: 48; your wide ink: 56)" in text


def test_train_on_a_zip_reports_held_out_classes(tmp_path, capsys):
    """`train --dataset zip:FILE`: notes on skipped files, then the test line on new classes."""
    import zipfile

    from siamese_core.cli import main
    from tests.test_train import glyph_folder
    root = glyph_folder(tmp_path / "data")
    z = tmp_path / "glyphs.zip"
    with zipfile.ZipFile(z, "w") as f:
        for p in sorted(root.rglob("*.png")):
            f.write(p, p.relative_to(root).as_posix())
        f.writestr("LICENSE.txt", "free")
    rc = main(["train", "--dataset", f"zip:{z}", "--epochs", "1", "--seconds", "60",
               "--batch-size", "16", "--out", str(tmp_path / "m")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "note: 1 file(s) that are not PNG/JPEG images ignored: LICENSE.txt" in err
    assert "test (12 images of 2 classes never seen in training): pair accuracy" in out
    assert "2-way one-shot" in out
    # Issue 21, 6: 2 validation and 2 test classes are said, with the interval.
    assert " over the test classes), ROC AUC" in out and "(95 % interval " in out
    assert "note: Few classes held out: validation has 2 and test 2" in out
    assert W.read_meta(tmp_path / "m")["train"]["loss"] == "bce"      # the recipe's


def _configs():
    from siamese_core.config import TrainConfig, demo_config, recipe
    return [
        demo_config(seed=4),
        recipe("zip:x.zip", kind="photo", seconds=120.0),
        TrainConfig(dataset="fashion-mnist", loss="triplet", margin=0.7, epochs=7, batch_size=50,
                    learning_rate=1e-3, embedding_dim=32, filters=(4, 8), block="conv-bn-pool",
                    top_convs=0, augment=False, seed=9, max_train=500, pairing="fixed"),
        recipe("folder:/data/my sigs", kind="ink", holdout="class", input_size=48, fit="box",
               rotated_classes=False, seconds=90.0, learning_rate=3e-3),
    ]


@pytest.mark.parametrize("i", range(4))
def test_copy_as_command_reproduces_the_run(i):
    """The Train page's "copy as CLI command": parsed back, the command gives the same config
    (but for the validation cadence, which is the command's own)."""
    import shlex

    from siamese_core.cli import build_parser, command_for, config_from_args
    cfg = _configs()[i]
    line = command_for(cfg, "runs/copy")
    argv = shlex.split(line)
    assert argv[:4] == ["python", "-m", "siamese_core", "train"]
    assert argv[-2:] == ["--out", "runs/copy"]
    back = config_from_args(build_parser().parse_args(argv[3:]))
    cadence = ("val_every_seconds", "val_every_epoch")
    assert {k: v for k, v in back.to_dict().items() if k not in cadence} == \
        {k: v for k, v in cfg.to_dict().items() if k not in cadence}, line


@pytest.mark.parametrize("name", ["\x1b[2J", "\x1b]0;title\x07", "x\nerror: forged line",
                                  "\u202egnp.exe"])
def test_names_reach_the_terminal_escaped_never_obeyed(tmp_path, capsys, name):
    """Issue 24, item 18: member, folder and file names with escape sequences or new lines were
    printed as they are in note: and error: lines (clear the screen, set the title, forge
    lines). Every such character is written as its escape; the error stays one line."""
    from siamese_core.cli import main
    code = main(["train", "--dataset", f"zip:{tmp_path / name}.zip", "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert all(c.isprintable() for c in err.rstrip("\n")), repr(err)
    assert repr(name[-1])[1:-1] in err or name[-1] in err


def test_skipped_files_are_noted_escaped(tmp_path, capsys):
    """The note: lines for skipped archive members go through the same escaping."""
    import zipfile

    from siamese_core.cli import main
    from tests.test_train import glyph_folder
    root = glyph_folder(tmp_path / "g", n_classes=6, per_class=6)
    z = tmp_path / "g.zip"
    with zipfile.ZipFile(z, "w") as f:
        for png in sorted(root.rglob("*.png")):
            f.write(png, png.relative_to(root))
        f.writestr("set0/c0/\x1b[2Jbad.txt", "not an image")
    main(["train", "--dataset", f"zip:{z}", "--epochs", "1", "--seconds", "1", "--out",
          str(tmp_path / "m")])
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert notes and "\x1b" not in err and "\\x1b[2Jbad.txt" in err, err[-2000:]


def test_face_crop_option_and_no_face_is_one_line(tmp_path, face_model, face_zip, ink_zip):
    """Issue 21, 4: --face-crop trains photo models that crop to the face; on ink it is refused
    before anything loads, and a photo without a face is one line naming it, not a verdict."""
    from siamese_core.cli import build_parser, config_from_args
    from tests.conftest import face_photos
    args = build_parser().parse_args(["train", "--dataset", f"zip:{face_zip}", "--face-crop",
                                      "--out", "x"])
    assert config_from_args(args).prep.face is True
    assert_clean_error(cli("train", "--dataset", f"zip:{ink_zip}", "--face-crop", "--seconds",
                           "1", "--out", tmp_path / "m"), "face crop is for photos")
    wall, face = tmp_path / "wall.png", tmp_path / "face.png"
    Image.fromarray(np.random.default_rng(3).uniform(0, 255, (90, 120)).astype(np.uint8)).save(wall)
    Image.fromarray(face_photos(1, 1, seed=4)["person00"][0]).save(face)
    assert_clean_error(cli("compare", "--weights", face_model.prefix, face, wall),
                       "wall.png: no face found")
    r = cli("compare", "--weights", face_model.prefix, face, face, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["same"] is True, r.stderr
    assert_clean_error(cli("enrol", "--gallery", tmp_path / "g.sqlite", "--weights",
                           face_model.prefix, "--name", "ada", face, wall),
                       "wall.png: no face found")


def test_enrol_and_identify(tmp_path, digit_pngs):
    g = tmp_path / "people.sqlite"
    r = cli("enrol", "--gallery", g, "--name", "three", digit_pngs["three_a"])
    assert r.returncode == 0 and r.stdout.strip() == "enrolled three: 1 image (1 identity in " \
        "people.sqlite)", r.stderr
    r = cli("enrol", "--gallery", g, "--name", "seven", digit_pngs["seven"])
    assert r.returncode == 0 and "2 identities" in r.stdout, r.stderr
    r = cli("identify", "--gallery", g, digit_pngs["three_b"])
    assert r.returncode == 0 and r.stdout.startswith("three: median distance "), r.stdout
    assert r.stdout.splitlines()[1].split()[1] == "three"          # nearest first
    r = cli("identify", "--gallery", g, digit_pngs["three_b"], "--json")
    out = json.loads(r.stdout)
    assert out["name"] == "three" and [x["name"] for x in out["ranking"]] == ["three", "seven"]
    assert out["ranking"][0]["same"] and not out["ranking"][1]["same"]
    r = cli("identify", "--gallery", g, digit_pngs["three_b"], "--name", "seven", "--json")
    assert json.loads(r.stdout)["same"] is False
    # A stranger: at a threshold nobody meets, "unknown".
    r = cli("identify", "--gallery", g, digit_pngs["three_b"], "--threshold", "0")
    assert r.returncode == 0 and r.stdout.startswith("unknown: nobody enrolled"), r.stdout
    for args, words in [
            (("identify", "--gallery", tmp_path / "none.sqlite", digit_pngs["seven"]),
             ("no gallery", "enrol someone first")),
            (("identify", "--gallery", g, digit_pngs["seven"], "--name", "bob"), ("nobody",)),
            (("identify", "--gallery", g, digit_pngs["seven"], "--top", "0"), ("--top",)),
            (("enrol", "--gallery", tmp_path / "x.db", "--name", "a", digit_pngs["seven"]),
             (".sqlite",)),
            (("enrol", "--gallery", tmp_path / "no" / "g.sqlite", "--name", "a",
              digit_pngs["seven"]), ("no such folder",)),
            (("enrol", "--gallery", g, "--name", " ", digit_pngs["seven"]), ("name",)),
            (("enrol", "--gallery", g, "--name", "a", tmp_path / "missing.png"), ("no such file",)),
            (("enrol", "--gallery", g, "--name", "three", digit_pngs["three_a"]), ("already",))]:
        assert_clean_error(cli(*args), *words)
