"""Your own images in a real browser: upload a zip -> its pairs -> train -> verify a questioned
image against a class the model never trained on; a malicious archive gets one line."""
import io
import re
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from tests.e2e.test_browser import go, metric, no_exceptions

pytestmark = pytest.mark.e2e
SHAPES = ["bar", "slash", "backslash", "cross", "ring", "box", "tee", "vee"]


def glyph(shape: str, jitter: int, seed: int) -> Image.Image:
    """A black-on-white drawing of ``shape``, moved and thickened a little per copy."""
    rng = np.random.default_rng(seed)
    im = Image.new("L", (64, 64), 255)
    d = ImageDraw.Draw(im)
    o = int(rng.integers(-jitter, jitter + 1))
    w = int(rng.integers(3, 6))
    lines = {"bar": [(32 + o, 10, 32 + o, 54)], "slash": [(12, 52, 52, 12)],
             "backslash": [(12, 12, 52, 52)], "cross": [(12, 32, 52, 32), (32, 12, 32, 52)],
             "tee": [(12, 14, 52, 14), (32, 14, 32, 54)], "vee": [(12, 12, 32, 52),
                                                                (32, 52, 52, 12)]}
    if shape == "ring":
        d.ellipse((14 + o, 14, 50 + o, 50), outline=0, width=w)
    elif shape == "box":
        d.rectangle((16, 16 + o, 48, 48 + o), outline=0, width=w)
    else:
        for line in lines[shape]:
            d.line([(x + o, y) for x, y in zip(line[::2], line[1::2])], fill=0, width=w)
    return im


def png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def glyph_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for s in SHAPES:
            for i in range(8):
                z.writestr(f"glyphs/{s}/{i}.png", png(glyph(s, 4, zlib.crc32(f"{s}{i}".encode()))))
        z.writestr("glyphs/README.txt", "eight shapes")
    return buf.getvalue()


def trained_model_and_references(name: str):
    """The model the Train page just saved (in the server's runs folder) and the references
    the verification tab uses for class ``name``."""
    import os
    from pathlib import Path

    from siamese_core import SiameseModel
    from siamese_core.data import load_dataset
    from siamese_core.verdict import class_references
    from siamese_studio.ui.verify import MAX_REFERENCES
    newest = max(Path(os.environ["SIAMESE_RUNS_DIR"]).glob("*/glyphs.zip-bce.json"),
                 key=lambda p: p.stat().st_mtime)
    m = SiameseModel.load(newest.with_suffix(""))
    splits = {s: load_dataset(m.meta["dataset"], s, m.meta["holdout"], m.prep)
              for s in ("train", "val", "test")}
    return m, class_references(splits)[name][0][:MAX_REFERENCES]


def no_server_paths(page) -> None:
    """Nothing on the page names the server's runs folder (where uploads are kept)."""
    import os
    assert os.environ["SIAMESE_RUNS_DIR"] not in page.locator("body").inner_text()


def upload(page, data: bytes, name: str) -> None:
    page.locator('input[type="file"]').first.set_input_files(
        files=[{"name": name, "mimeType": "application/zip", "buffer": data}])


def test_your_data_upload_explore_train_verify(page, server, shots):
    go(page, server, "Your data", "zip of class folders")
    # A zip-slip archive first: one line, nothing taken, the page still works.
    bad = io.BytesIO()
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("a/1.png", png(glyph("bar", 0, 0)))
        z.writestr("../../escape.png", png(glyph("bar", 0, 1)))
    upload(page, bad.getvalue(), "evil.zip")
    page.get_by_text(re.compile(r"evil\.zip: .*outside the archive")).wait_for()
    no_exceptions(page)
    no_server_paths(page)
    shots(page, "refused")

    upload(page, glyph_zip(), "glyphs.zip")
    assert metric(page, "Classes", timeout=60) == "8"
    assert metric(page, "Held out for test") == "2 classes"
    page.get_by_text("README.txt").first.wait_for()             # what was skipped is said
    shots(page, "uploaded", "your-data.png")

    go(page, server, "Pair explorer", "Look at one pair")
    page.get_by_text("your data: glyphs.zip").first.wait_for()
    assert page.locator('[data-testid="stImage"] img').count() >= 1
    shots(page, "pairs")

    go(page, server, "Train", "Set the hyperparameters")
    page.get_by_text("your data: glyphs.zip").first.wait_for()
    box = page.get_by_role("spinbutton", name="Time budget (s)")
    box.fill("20")
    box.press("Tab")
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Training finished").first.wait_for(timeout=150_000)
    page.get_by_text(re.compile(r"2 classes never seen in training")).first.wait_for()
    assert metric(page, "2-way one-shot").endswith("%")
    page.get_by_text("Few classes held out: validation has 2 and test 2").first.wait_for()
    page.get_by_text(re.compile(r"Test pair accuracy: 95 % interval")).first.wait_for()
    # The command line names the file the user uploaded, not the server's private copy.
    page.get_by_text("in the folder that holds").first.wait_for()
    assert "--dataset zip:glyphs.zip" in page.locator('[data-testid="stCode"]').first.inner_text()
    no_server_paths(page)
    shots(page, "trained")
    page.get_by_role("button", name="Use this model").first.click()
    page.get_by_text("your trained model").first.wait_for()

    go(page, server, "Compare", "Random test pairs")
    page.get_by_text("trained on your data: glyphs.zip").first.wait_for()
    page.get_by_role("tab", name="Verify against a class").click()
    select = page.get_by_role("combobox", name="Class")
    expect(select).to_have_value(re.compile(r"\(new: test split\)"))   # held-out first
    chosen = select.input_value()
    shape = re.search(r"(\w+)\s+\(new", chosen)[1]
    # Scoped to the tab: the other tabs' uploaders are in the page too.
    tab = page.get_by_role("tabpanel", name="Verify against a class")
    tab.locator('[data-testid="stRadio"]').first.get_by_text("Upload").click()
    # A questioned drawing of that class, made apart from the references.
    tab.locator('input[type="file"]').first.wait_for(state="attached")
    query = png(glyph(shape, 4, 4242))
    tab.locator('input[type="file"]').first.set_input_files(
        files=[{"name": "q.png", "mimeType": "image/png", "buffer": query}])
    page.get_by_text("Median distance").first.wait_for(timeout=30_000)
    # The page shows what the library decides for the same inputs (whether a 20-s model calls
    # this drawing of a new class "same" is the model's business, measured in bench/).
    m, refs = trained_model_and_references(shape)
    want = m.verify(m.prepare(query), refs).verdict
    assert metric(page, "Verdict") == ("match" if want.same else "no match")
    page.get_by_text(f"taken for {shape}").first.wait_for()
    assert metric(page, "Median distance") == f"{want.distance:.3f}"
    assert metric(page, "False accepts").endswith("%")
    assert metric(page, "False rejects").endswith("%")
    no_exceptions(page)
    shots(page, "verified", "verify.png")

    # Removed from the session, the dataset is still named by its file, never its server copy.
    go(page, server, "Your data", "zip of class folders")
    page.get_by_role("button", name="Remove this dataset").click()
    page.get_by_text("Upload a zip to use your own images").wait_for()
    go(page, server, "Compare", "trained on your data: glyphs.zip (removed)")
    page.get_by_text("Random test pairs").first.wait_for()
    no_server_paths(page)
    no_exceptions(page)
    shots(page, "removed")


def test_a_session_keeps_its_newest_uploads_only(page, server, shots):
    """Issue 24, 13: one tab uploaded six zips and all stayed on the server's disk. A session
    keeps its newest 3: a fourth upload deletes the oldest (its server copy too) and says so."""
    import os
    from pathlib import Path

    from siamese_studio.ui.uploads import MAX_UPLOADS_PER_SESSION
    root = Path(os.environ["SIAMESE_RUNS_DIR"])
    go(page, server, "Your data", "zip of class folders")
    data = glyph_zip()
    copies = []
    for i in range(MAX_UPLOADS_PER_SESSION + 1):
        before = set(root.glob("*/dataset.zip"))
        # A different archive each time (a repeated one is recognised and not stored again).
        upload(page, data + b"\0" * i if i else data, f"upload{i}.zip")
        page.get_by_text(f"your data: upload{i}.zip").first.wait_for(timeout=60_000)
        (new,) = set(root.glob("*/dataset.zip")) - before
        copies.append(new)
    page.get_by_text("Your oldest upload, upload0.zip, was removed").wait_for()
    assert not copies[0].exists() and all(c.exists() for c in copies[1:])
    no_exceptions(page)
    shots(page, "oldest-removed")


def test_signatures_with_forgeries_upload_train_and_report_skilled_false_accepts(page, server,
                                                                                 shots):
    """Issue 21's signature flow in a browser: a zip with forgeries → writers, genuine and
    forged counts, the pen left out (binary, thin) → train → the skilled forgeries'
    false-accept rate on the finished page, and against 5 references of a writer."""
    from tests.conftest import signature_images
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for cls, imgs in signature_images(n_writers=24, genuine=7).items():
            for i, im in enumerate(imgs):
                z.writestr(f"sigs/{cls}/{i}.png", png(Image.fromarray(im)))
    go(page, server, "Your data", "zip of class folders")
    upload(page, buf.getvalue(), "signatures.zip")
    assert metric(page, "People", timeout=60) == "24"
    assert metric(page, "Skilled forgeries") == "96"
    page.get_by_text("Genuine and forged images per person").wait_for()
    page.get_by_text("every stroke thinned to one pixel", exact=False).wait_for()   # the pen
    shots(page, "signatures")
    go(page, server, "Train", "Set the hyperparameters")
    box = page.get_by_role("spinbutton", name="Time budget (s)")
    box.fill("15")
    box.press("Tab")
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Training finished").first.wait_for(timeout=150_000)
    page.get_by_text("genuine pairs against skilled forgeries").first.wait_for()
    assert metric(page, "False accepts: skilled").endswith("%")
    assert metric(page, "Equal error rate: skilled").endswith("%")
    # Several references of a writer: the rule chosen on validation, and its test rates.
    page.get_by_text("Against 5 references").first.wait_for()
    page.get_by_text("The score of several references, by the rule chosen on validation").wait_for()
    no_exceptions(page)
    no_server_paths(page)
    shots(page, "skilled-far")
