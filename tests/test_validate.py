"""One validation layer: numbers, seeds and output paths; every bad value is one line naming it."""
import math
import os

import pytest

from siamese_core import DataError
from siamese_core import validate as V
from siamese_core.config import TrainConfig


@pytest.mark.parametrize("value, kw, ok", [
    ("3", {}, 3.0), (2.5, {"lo": 0, "hi": 3}, 2.5), ("7", {"integer": True}, 7),
    ("1e3", {"integer": True}, 1000),
])
def test_number_accepts(value, kw, ok):
    assert V.number("x", value, **kw) == ok


@pytest.mark.parametrize("value, kw, words", [
    ("nan", {}, "finite"), ("inf", {}, "finite"), (float("-inf"), {}, "finite"),
    ("abc", {}, "must be a number"), (None, {}, "must be a number"), (True, {}, "a number"),
    (0, {"lo": 0, "lo_open": True}, "greater than 0"), (-1, {"lo": 0}, "at least 0"),
    (11, {"lo": 0, "hi": 10}, "between 0 and 10"), ("2.5", {"integer": True}, "an integer"),
    ("1e400", {"integer": True}, "an integer"),
])
def test_number_refuses_in_one_line(value, kw, words):
    with pytest.raises(DataError, match=words) as e:
        V.number("x", value, **kw)
    assert str(e.value).startswith("x must") and "\n" not in str(e.value)


def test_seed_range():
    assert V.seed("0") == 0 and V.seed(2**32 - 1) == 2**32 - 1
    for bad in (-1, 2**32, "1.5", "nan"):
        with pytest.raises(DataError, match="seed"):
            V.seed(bad)


def test_writable_prefix(tmp_path):
    assert V.writable_prefix(tmp_path / "new" / "deeper" / "m") == tmp_path / "new" / "deeper" / "m"
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file, not a directory"):
        V.writable_prefix(tmp_path / "file" / "m")
    with pytest.raises(DataError, match="not a file name prefix"):
        V.writable_prefix("")
    (tmp_path / "m.json").mkdir()
    with pytest.raises(DataError, match="is a directory"):
        V.writable_prefix(tmp_path / "m")
    os.symlink(tmp_path / "missing", tmp_path / "dangling")
    with pytest.raises(DataError, match="broken symbolic link"):
        V.writable_prefix(tmp_path / "dangling" / "m")


def test_writable_prefix_permission(tmp_path, monkeypatch):
    # Root may write anywhere, and CI runs as root: ask the check's own question a "no".
    monkeypatch.setattr(V.os, "access", lambda path, mode: False)
    with pytest.raises(DataError, match="permission denied"):
        V.writable_prefix(tmp_path / "m")


@pytest.mark.parametrize("kw, words", [
    ({"seconds": math.nan}, "seconds must be finite"),
    ({"seconds": math.inf}, "seconds must be finite"),
    ({"seconds": 0}, "seconds must be greater than 0"),
    ({"learning_rate": 1e10}, "learning_rate must be greater than 0 and at most 1"),
    ({"learning_rate": -1}, "learning_rate must be greater than 0"),
    ({"margin": -1}, "margin must be greater than 0"),
    ({"margin": 3}, "margin must be greater than 0 and at most 2"),
    ({"embedding_dim": 0}, "embedding_dim must be between 2 and 1024"),
    ({"embedding_dim": -1}, "embedding_dim"),
    ({"seed": -1}, "seed must be between 0"),
    ({"batch_size": 3}, "batch_size must be between 4"),
    ({"epochs": 0}, "epochs must be between 1"),
    ({"filters": ()}, "filters: give 1 to 4"),
    ({"filters": (8, 0)}, "filters must be between 1"),
    ({"top_convs": -1}, "top_convs must be between 0 and 4"),
    ({"max_train": 3}, "max_train must be between 10"),
    ({"dataset": " "}, "dataset must be a dataset spec"),
])
def test_train_config_refuses_bad_numbers(kw, words):
    with pytest.raises(DataError, match=words) as e:
        TrainConfig(**kw)
    assert "\n" not in str(e.value)
