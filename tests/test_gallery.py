"""The gallery: enrol identities without retraining, verify 1:1, identify 1:N, export/import."""
import os
import sqlite3

import numpy as np
import pytest

from siamese_core import SiameseModel
from siamese_core.gallery import (
    MAX_IMPORT_BYTES,
    MAX_SAMPLES,
    Gallery,
    GalleryError,
    check_name,
    decode_thumbnail,
    describe,
    model_id,
    thumbnail,
)


@pytest.fixture(scope="module")
def shipped():
    return SiameseModel.load()


def _other(m: SiameseModel) -> SiameseModel:
    """The same network under another model's identity (another ONNX checksum)."""
    meta = {**m.meta, "sha256": {**m.meta["sha256"], "onnx": "f" * 64}}
    return SiameseModel(m._session, meta, m.prefix.with_name("other"))


def _digits(ds, c, n, start=0):
    return ds.images[ds.labels == c][start:start + n]


def test_enrolled_digits_are_identified_and_a_stranger_is_unknown(tmp_path, shipped, mnist_test):
    g = Gallery(tmp_path / "g.sqlite", shipped)
    for c in (0, 1, 3, 7):
        assert g.enrol(f"digit {c}", _digits(mnist_test, c, 3)) == 3
    assert g.names() == ["digit 0", "digit 1", "digit 3", "digit 7"] and len(g) == 4
    right = sum(g.identify(x).name == f"digit {c}"
                for c in (0, 1, 3, 7) for x in _digits(mnist_test, c, 10, start=3))
    assert right >= 38                     # of 40 images never enrolled
    # Classes nobody enrolled mostly come out unknown (no identity within the threshold).
    unknown = sum(g.identify(x).name is None for c in (2, 4, 6) for x in _digits(mnist_test, c, 10))
    assert unknown >= 20
    x = _digits(mnist_test, 7, 1, start=20)[0]
    r = g.identify(x)
    assert [n for n, _ in r.ranking][0] == "digit 7" and len(r.ranking) == 4
    assert [v.distance for _, v in r.ranking] == sorted(v.distance for _, v in r.ranking)
    v, no = g.verify("digit 7", x), g.verify("digit 1", x)
    assert v.same and not no.same and v.threshold == shipped.threshold
    # 1:1 is the median distance to the identity's samples.
    e = shipped.embed(np.concatenate([x[None], _digits(mnist_test, 7, 3)]))
    assert v.distance == pytest.approx(float(np.median(np.linalg.norm(e[1:] - e[0], axis=1))),
                                       abs=1e-5)
    assert not g.verify("digit 7", x, threshold=v.distance / 2).same


def test_a_spread_model_scores_identities_by_their_own_spread(tmp_path, shipped, mnist_test):
    """With the spread rule (chosen on validation for signatures) each identity is held to
    its own samples' spread: 1:1 and 1:N score by ``references.ReferenceRule``."""
    from siamese_core.references import ReferenceRule, spread
    m = SiameseModel(shipped._session, {**shipped.meta, "references": {
        "rule": "spread", "typical": 0.3}}, shipped.prefix)
    g = Gallery(tmp_path / "g.sqlite", m)
    g.enrol("seven", _digits(mnist_test, 7, 4))
    g.enrol("one", _digits(mnist_test, 1, 4))
    x = _digits(mnist_test, 7, 1, start=10)[0]
    e = m.embed(np.concatenate([x[None], _digits(mnist_test, 7, 4)]))
    d = np.linalg.norm(e[1:] - e[0], axis=1)
    want = d.mean() - spread(e[1:]) + 0.3
    assert g.verify("seven", x).distance == pytest.approx(want, abs=1e-5)
    r = g.identify(x)
    assert r.ranking[0][0] == "seven" and r.ranking[0][1].distance == pytest.approx(want, abs=1e-5)
    assert ReferenceRule.from_meta(m.meta).score(d, e[1:]) == pytest.approx(want)


def test_enrol_rules(tmp_path, shipped, mnist_test):
    g = Gallery(tmp_path / "g.sqlite", shipped)
    three = _digits(mnist_test, 3, MAX_SAMPLES + 2)
    assert g.enrol("  Ada   Lovelace ", three[:2]) == 2
    assert g.names() == ["Ada Lovelace"]
    with pytest.raises(GalleryError, match="already"):       # the same image twice is one
        g.enrol("Ada Lovelace", three[:1])
    assert g.enrol("Ada Lovelace", three[1:3]) == 3
    with pytest.raises(GalleryError, match=f"at most {MAX_SAMPLES}"):
        g.enrol("Ada Lovelace", three[3:])
    assert g.identities()[0].samples == 3          # nothing of a refused enrol was written
    for bad in ("", "   ", "x" * 61, "escape\x1b[31m"):
        with pytest.raises(GalleryError):
            g.enrol(bad, three[:1])
    with pytest.raises(GalleryError, match="nobody called"):
        g.verify("Bob", three[0])
    assert g.remove("Ada Lovelace") and not g.remove("Ada Lovelace")
    with pytest.raises(GalleryError, match="nobody is enrolled"):
        g.identify(three[0])
    assert check_name(" a  b ") == "a b"


def test_the_file_is_private_and_survives_reopening(tmp_path, shipped, mnist_test):
    path = tmp_path / "g.sqlite"
    Gallery(path, shipped).enrol("seven", _digits(mnist_test, 7, 2))
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    again = Gallery(path, shipped)
    assert again.names() == ["seven"] and again.identities()[0].samples == 2
    thumb = decode_thumbnail(again.identities()[0].thumbnails[0])
    assert thumb.shape == (28, 28) and thumb.dtype == np.uint8
    # What it says of itself without a model (a reloaded page finds the model again from it).
    info = describe(path)
    assert info["model"] == model_id(shipped) and info["identities"] == 1
    assert info["model_path"] == str(shipped.prefix) and info["model_name"] == "default"
    assert describe(tmp_path / "missing.sqlite") is None


def test_a_gallery_refuses_another_model(tmp_path, shipped, mnist_test):
    path = tmp_path / "g.sqlite"
    Gallery(path, shipped).enrol("seven", _digits(mnist_test, 7, 1))
    with pytest.raises(GalleryError, match="another model"):
        Gallery(path, _other(shipped))
    data = Gallery(path, shipped).export_bytes()
    mine = Gallery(tmp_path / "h.sqlite", _other(shipped))
    with pytest.raises(GalleryError, match="another model"):
        mine.merge_bytes(data, "g.sqlite")
    assert model_id(shipped) != model_id(_other(shipped))


def test_export_and_import_round_trip(tmp_path, shipped, mnist_test):
    g = Gallery(tmp_path / "g.sqlite", shipped)
    g.enrol("three", _digits(mnist_test, 3, 2))
    g.enrol("seven", _digits(mnist_test, 7, 3))
    data = g.export_bytes()
    h = Gallery(tmp_path / "h.sqlite", shipped)
    h.enrol("seven", _digits(mnist_test, 7, 1, start=10))
    assert h.merge_bytes(data) == (1, 5)         # a new identity; seven's samples join
    assert {i.name: i.samples for i in h.identities()} == {"three": 2, "seven": 4}
    x = _digits(mnist_test, 3, 1, start=30)[0]
    assert h.identify(x).name == g.identify(x).name == "three"


def _tampered(tmp_path, shipped, mnist_test, sql: str) -> bytes:
    path = tmp_path / "t.sqlite"
    path.unlink(missing_ok=True)
    Gallery(path, shipped).enrol("seven", _digits(mnist_test, 7, 2))
    with sqlite3.connect(path) as con:
        con.executescript(sql)
    con.close()
    return path.read_bytes()


@pytest.mark.parametrize("sql, words", [
    ("CREATE TRIGGER t AFTER INSERT ON samples BEGIN DELETE FROM info; END;", "not a gallery"),
    ("CREATE VIEW v AS SELECT 1;", "not a gallery"),
    ("CREATE TABLE extra (x);", "not a gallery"),
    ("UPDATE samples SET embedding = x'00';", "not 64 numbers"),
    ("UPDATE samples SET thumbnail = x'00';", "not a small PNG"),
    ("UPDATE identities SET name = '';", "name"),
    ("UPDATE info SET value = '9' WHERE key = 'format';", "format"),
    ("DROP TABLE samples;", "not a gallery"),
])
def test_import_refuses_what_is_not_a_clean_gallery(tmp_path, shipped, mnist_test, sql, words):
    data = _tampered(tmp_path, shipped, mnist_test, sql)
    g = Gallery(tmp_path / "g.sqlite", shipped)
    g.enrol("three", _digits(mnist_test, 3, 1))
    with pytest.raises(GalleryError, match=words):
        g.merge_bytes(data, "t.sqlite")
    assert g.names() == ["three"]                 # nothing written


def test_import_refuses_bytes_that_are_no_database(tmp_path, shipped, mnist_test):
    g = Gallery(tmp_path / "g.sqlite", shipped)
    with pytest.raises(GalleryError, match="not a SQLite"):
        g.merge_bytes(b"PK\x03\x04 a zip", "x.sqlite")
    good = _tampered(tmp_path, shipped, mnist_test, "")
    with pytest.raises(GalleryError, match="damaged"):
        g.merge_bytes(good[:100] + b"\xff" * (len(good) - 100), "x.sqlite")
    with pytest.raises(GalleryError, match="at most"):
        g.merge_bytes(b"SQLite format 3\x00" + bytes(MAX_IMPORT_BYTES), "x.sqlite")
    with pytest.raises(GalleryError, match="not a gallery"):
        (tmp_path / "other.sqlite").write_bytes(b"")
        with sqlite3.connect(tmp_path / "other.sqlite") as con:
            con.execute("CREATE TABLE t (x)")
        con.close()
        Gallery(tmp_path / "other.sqlite", shipped)


def test_thumbnails_are_small_grey_pngs_of_any_input():
    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[100:300, 200:400] = (200, 120, 40)
    t = decode_thumbnail(thumbnail(rgb))
    assert t.shape == (48, 64) and 0 < t.max() < 255
