"""The app in a real browser: navigation, pairs, drawing, uploads, live training, two users."""
import io
import math
import re

import numpy as np
import pytest
from PIL import Image

from tests.harness import start_app, stop_app

pytestmark = pytest.mark.e2e
RUNNING = re.compile(r"Epoch \d+ · batch")   # the progress text; epochs can be shorter than a poll

ONE = [(140, 40 + 10 * i) for i in range(21)]
ZERO = [(140 + 70 * math.sin(t / 24 * 2 * math.pi), 140 - 100 * math.cos(t / 24 * 2 * math.pi))
        for t in range(26)]


def main(page):
    """The page body (Streamlit's header has its own Stop button while a script runs)."""
    return page.locator('[data-testid="stMain"]')


def no_exceptions(page):
    assert page.locator('[data-testid="stException"]').count() == 0


def go(page, server, link: str, ready: str):
    """Open the app at its root and follow a sidebar link, as a user does."""
    if not page.url.startswith(server):
        page.goto(server + "/")
        page.get_by_text("Three parts").wait_for()
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=link).click()
    page.get_by_text(ready).first.wait_for()


def draw(page, index: int, points):
    canvas = page.locator("canvas.upper-canvas").nth(index)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=3)
    page.mouse.up()


def metric(page, label: str, timeout: float = 20) -> str:
    """The value of an st.metric, waiting for it to appear."""
    loc = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    loc.wait_for(timeout=timeout * 1000)
    return loc.locator('[data-testid="stMetricValue"]').inner_text().strip()


def wait_metric(page, label: str, want: str, timeout: float = 20) -> None:
    """Wait until an st.metric shows ``want`` (Playwright's auto-waiting assertion)."""
    from playwright.sync_api import expect
    value = page.locator('[data-testid="stMetric"]').filter(has_text=label).first \
        .locator('[data-testid="stMetricValue"]')
    expect(value).to_have_text(want, timeout=timeout * 1000)


def test_navigation_reaches_every_page(page, server, shots):
    page.goto(server + "/")
    page.get_by_role("heading", name="Siamese pairs studio").wait_for()
    assert page.get_by_text("shipped default").count() == 1
    shots(page, "home", "home.png")
    for link, ready in [("Pair explorer", "Look at one pair"), ("Train", "Set the hyperparameters"),
                        ("Compare", "Random test pairs"), ("Home", "Three parts")]:
        go(page, server, link, ready)
        no_exceptions(page)
        shots(page, link.lower().replace(" ", "-"))


def test_explorer_montage_and_resample(page, server, shots):
    go(page, server, "Pair explorer", "Look at one pair")
    montage = page.locator('[data-testid="stImage"] img').first
    before = montage.get_attribute("src")
    shots(page, "montage", "explorer.png")
    page.get_by_role("button", name="Resample").click()
    page.wait_for_function("src => document.querySelector('[data-testid=\"stImage\"] img')"
                           ".getAttribute('src') !== src", arg=before)
    no_exceptions(page)
    shots(page, "resampled")


def test_compare_by_drawing(page, server, shots):
    go(page, server, "Compare", "Random test pairs")
    page.locator("canvas.upper-canvas").nth(1).wait_for()
    draw(page, 0, ONE)
    page.get_by_text("what the network sees").first.wait_for()
    draw(page, 1, ONE)
    wait_metric(page, "Verdict", "same")
    shots(page, "one-vs-one")
    page.get_by_title("Reset canvas & history").nth(1).click()
    page.get_by_text("Draw a digit").first.wait_for()
    draw(page, 1, ZERO)
    wait_metric(page, "Verdict", "different")
    no_exceptions(page)
    shots(page, "one-vs-zero", "compare.png")


def ink(page, index: int) -> int:
    """Bright pixels on a drawing canvas (the one fabric.js renders its strokes on)."""
    return page.locator("canvas.dc-canvas.lower-canvas").nth(index).evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let k = 0; k < d.length; k += 4) if (d[k] > 128) n++; return n; }")


def wait_ink(page, n: int, timeout: float = 10) -> None:
    """Wait until the first drawing canvas on the page has exactly ``n`` bright pixels; the
    canvas is looked up on every poll, so a remounted one is the one counted."""
    page.wait_for_function(
        "n => { const c = document.querySelector('canvas.dc-canvas.lower-canvas') ||"
        " [...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)"
        ".map(r => r.querySelector('canvas.dc-canvas.lower-canvas')).find(Boolean);"
        " if (!c) return false; const d = c.getContext('2d').getImageData(0, 0, c.width,"
        " c.height).data; let k = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 128) k++;"
        " return k === n; }", arg=n, timeout=timeout * 1000)


def test_a_drawing_survives_pick_and_back_and_clear_empties_it(page, server, shots):
    """UX 6: Draw -> Pick -> Draw shows the same strokes again and still judges them; the
    visible Clear button starts again. The canvas toolbar has room above the canvas (its
    icons sit below the input radio, not over it)."""
    go(page, server, "Compare", "Random test pairs")
    page.locator("canvas.upper-canvas").nth(1).wait_for()
    draw(page, 0, ONE)
    page.get_by_text("what the network sees").first.wait_for()
    drawn = ink(page, 0)
    assert drawn > 1000
    radio = main(page).locator('[data-testid="stRadio"]').first
    page.locator("canvas.upper-canvas").first.hover()
    toolbar = page.locator(".dc-toolbar").first
    toolbar.wait_for()
    page.wait_for_function("t => getComputedStyle(t).opacity === '1'", arg=toolbar.element_handle())
    assert toolbar.bounding_box()["y"] >= radio.bounding_box()["y"] + radio.bounding_box()["height"]
    radio.get_by_text("Pick").click()
    page.get_by_text("of the test split").first.wait_for()
    radio.get_by_text("Draw").click()
    page.locator("canvas.upper-canvas").nth(1).wait_for()
    wait_ink(page, drawn)
    page.get_by_text("what the network sees").first.wait_for()
    shots(page, "drawing-back")
    main(page).get_by_role("button", name="Clear").first.click()
    page.get_by_text("what the network sees").wait_for(state="detached")
    # The canvas is mounted afresh after Clear: wait for the one on the page to be empty
    # (reading once could catch the old one before the new one replaced it).
    wait_ink(page, 0)
    assert ink(page, 0) == 0
    no_exceptions(page)


def digit_png(label: int, index: int) -> bytes:
    from siamese_core import load_dataset
    ds = load_dataset("mnist-5k", "test")
    i = np.flatnonzero(ds.labels == label)[index]
    buf = io.BytesIO()
    Image.fromarray(255 - ds.images[i]).resize((140, 140)).save(buf, format="PNG")  # a "scan"
    return buf.getvalue()


def side_upload(page, i: int):
    """Switch side ``i`` of Compare's two-image tab to Upload; return its file input. Scoped to
    the tab, and waiting for the input to appear: the other tabs' uploaders are in the page too,
    so a bare ``input[type=file]`` can be one of theirs before this side has re-rendered."""
    from playwright.sync_api import expect
    tab = page.get_by_role("tabpanel", name="Two images")
    tab.locator('[data-testid="stRadio"]').nth(i).get_by_text("Upload").click()
    files = tab.locator('input[type="file"]')
    expect(files).to_have_count(i + 1)
    return files.nth(i)


def test_compare_by_upload(page, server, shots):
    go(page, server, "Compare", "Random test pairs")
    files = [side_upload(page, i) for i in range(2)]
    files[0].set_input_files(files=[{"name": "a.png", "mimeType": "image/png",
                                     "buffer": digit_png(4, 0)}])
    page.get_by_text("what the network sees").first.wait_for()
    files[1].set_input_files(files=[{"name": "b.png", "mimeType": "image/png",
                                         "buffer": digit_png(4, 1)}])
    wait_metric(page, "Verdict", "same")
    no_exceptions(page)
    shots(page, "uploaded")


def start_training(page, server, epochs: int = 3, images: int = 800):
    go(page, server, "Train", "Set the hyperparameters")
    for name, value in (("Epochs (0 = no limit)", epochs), ("Training images (0 = all)", images)):
        box = page.get_by_role("spinbutton", name=name)
        box.fill(str(value))
        box.press("Tab")
    page.get_by_role("button", name="Train", exact=True).click()


def test_enter_in_a_form_field_does_not_start_training(page, server, shots):
    """Issue 24, 4: pressing Enter in the time-budget field once submitted the form and started
    a run; only the Train button starts one."""
    go(page, server, "Train", "Set the hyperparameters")
    box = page.get_by_role("spinbutton", name="Time budget (s)")
    box.fill("7")
    box.press("Enter")
    box.press("Tab")                             # the value is committed, still nothing runs
    page.get_by_role("spinbutton", name="Seed").press("Enter")
    main(page).get_by_text("Set the hyperparameters").wait_for()
    page.wait_for_load_state("networkidle")
    assert page.locator('[data-testid="stProgress"]').count() == 0
    assert page.get_by_role("button", name="Stop").count() == 0
    assert box.input_value() == "7"
    no_exceptions(page)


def progress_text(page) -> str:
    """The progress bar's text, or "" once it is gone (training over)."""
    texts = page.locator('[data-testid="stProgress"]').all_inner_texts()
    return texts[0] if texts else ""


def test_train_live_survives_page_switch_and_is_used(page, server, shots):
    start_training(page, server, epochs=8, images=2000)
    page.get_by_text(RUNNING).first.wait_for(timeout=90_000)
    first = progress_text(page)
    page.get_by_text("Training loss").wait_for()
    shots(page, "started")
    page.wait_for_function(                                  # it advances live
        "t => { const e = document.querySelector('[data-testid=\"stProgress\"]');"
        " return !e || e.innerText !== t; }", arg=first, timeout=30_000)
    go(page, server, "Compare", "Random test pairs")   # leave ...
    no_exceptions(page)
    go(page, server, "Train", "Training loss")               # ... and come back: still there
    assert page.get_by_text("Epoch").count() + page.get_by_text("Training finished").count() > 0
    page.get_by_text("Validation embeddings").first.wait_for(timeout=60_000)
    shots(page, "live")
    page.get_by_text("Training finished").first.wait_for(timeout=120_000)
    assert metric(page, "Pair accuracy").endswith("%")
    # The histogram shows the kept epoch: its threshold is the one in the metrics.
    title = page.get_by_text(re.compile(r"Pair distances — epoch \d+ \(kept\)")).first.inner_text()
    assert re.search(r"threshold (\d\.\d{3})", title)[1] == metric(page, "Threshold"), title
    # The comparison with the shipped model, on the test split neither trained on.
    page.get_by_text("Against the shipped model").first.wait_for(timeout=30_000)
    line = page.get_by_text("pairs of the 1,000 test images").first
    verdict = line.inner_text()
    assert re.search(r"significantly (better|worse)|no significant difference", verdict), verdict
    line.scroll_into_view_if_needed()
    shots(page, "finished", "train.png")
    page.get_by_role("button", name="Use this model").first.click()
    page.get_by_text("your trained model").first.wait_for()
    go(page, server, "Compare", "Random test pairs")
    assert page.get_by_text("your trained model").count() >= 1
    no_exceptions(page)


def test_two_sessions_are_isolated(browser, server, shots):
    a_ctx = browser.new_context(viewport={"width": 1400, "height": 1500})
    b_ctx = browser.new_context(viewport={"width": 1400, "height": 1500})
    try:
        a, b = a_ctx.new_page(), b_ctx.new_page()
        start_training(a, server, epochs=200, images=500)   # long enough to outlast B
        a.get_by_text(RUNNING).first.wait_for(timeout=90_000)
        # B compares while A trains, and sees no training of its own.
        go(b, server, "Compare", "Random test pairs")
        for i, (label, k) in enumerate(((1, 0), (0, 0))):    # a 1 and a 0: known different
            side_upload(b, i).set_input_files(files=[{"name": f"{i}.png", "mimeType": "image/png",
                                                      "buffer": digit_png(label, k)}])
        wait_metric(b, "Verdict", "different", timeout=60)
        assert b.get_by_text("shipped model").count() >= 1
        go(b, server, "Train", "Set the hyperparameters")
        main(b).get_by_role("button", name="Train", exact=True).wait_for(timeout=60_000)
        assert main(b).get_by_role("button", name="Stop").count() == 0   # the form, not A's run
        shots(b, "b-train-page")
        # A stops its run cleanly; the best weights so far are kept.
        main(a).get_by_role("button", name="Stop").first.click()
        a.get_by_text("Training stopped").first.wait_for(timeout=60_000)
        assert metric(a, "Pair accuracy").endswith("%")
        shots(a, "a-stopped")
    finally:
        a_ctx.close()
        b_ctx.close()


def test_deep_link_to_a_fresh_server_gets_the_apps_menu(browser, tmp_path, shots):
    """The very first request to a new server is /train (a bookmark after a restart): the page
    still comes up through app.py, with the app's menu, not Streamlit's legacy pages/ menu."""
    proc, base = start_app(tmp_path / "streamlit.log")
    page = browser.new_page()
    try:
        page.goto(base + "/train")
        # A fresh server's first run (imports, the shipped model) is slow on a loaded machine.
        page.get_by_text("Train a siamese network").wait_for(timeout=90_000)
        shots(page, "deep-link")
        nav = page.locator('[data-testid="stSidebarNav"]')
        nav.get_by_role("link", name="Pair explorer").wait_for(timeout=60_000)
        assert nav.get_by_role("link", name="app", exact=True).count() == 0
        # The form comes after the title (the page first starts a spare training process), so
        # wait for it rather than look at once: on a loaded machine it can trail by a second.
        page.get_by_role("button", name="Train", exact=True).wait_for(timeout=60_000)
        no_exceptions(page)
    finally:
        page.close()
        stop_app(proc)
