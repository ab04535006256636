import json
import subprocess
import sys

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
                           tmp_path / "x.png"), "corrupt")
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
               "--batch-size", "40", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr()
    assert "pair accuracy" in printed.out and "%" in printed.err   # final metrics + progress bar
    assert W.read_meta(out)["train"]["epochs"] == 1


def test_train_defaults_are_the_library_defaults():
    """The CLI must not carry its own copy of the training defaults (it once did, stale)."""
    from siamese_core.cli import build_parser
    from siamese_core.config import TrainConfig
    args = build_parser().parse_args(["train", "--out", "x"])
    assert (args.batch_size, args.lr, args.embedding_dim, args.loss, args.filters, args.block,
            args.top_convs) == (
        TrainConfig.batch_size, TrainConfig.learning_rate, TrainConfig.embedding_dim,
        TrainConfig.loss, TrainConfig.filters, TrainConfig.block, TrainConfig.top_convs)


def test_readme_command_rebuilds_the_shipped_network():
    """The shipped model's command in the README must describe the network its metadata
    records, although the defaults have moved on since it was trained."""
    import re
    import shlex

    from siamese_core.cli import build_parser
    from siamese_core.model import ModelConfig
    readme = (ROOT / "README.md").read_text()
    cmd = re.search(r"^python -m siamese_core (train .*--out weights/default)$", readme, re.M)
    args = build_parser().parse_args(shlex.split(cmd.group(1)))
    shipped = ModelConfig.from_dict(W.read_meta(W.default_prefix())["model"])
    assert (tuple(args.filters), args.block, args.top_convs, args.embedding_dim) == (
        shipped.filters, shipped.block, shipped.top_convs, shipped.embedding_dim)
    assert (args.epochs, args.lr, args.margin, args.batch_size) == (80, 6e-3, 1.0, 100)


def test_train_rejects_bad_filters(capsys):
    from siamese_core.cli import build_parser
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--out", "x", "--filters", "8,x"])
    assert "comma-separated integers" in capsys.readouterr().err
