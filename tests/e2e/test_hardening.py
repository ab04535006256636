"""Issue 15 in a real browser: no way to block training for everybody, no traceback on the
page, refused files answered in one line, and bounded server memory under hostile uploads."""
import re
import shutil

import pytest

from tests.e2e.test_browser import (RUNNING, digit_png, go, main, no_exceptions, side_upload,
                                    start_training)
from tests.harness import ROOT, children, rss_mb, start_app, stop_app, wait_exit

pytestmark = pytest.mark.e2e
GRACE = 8   # seconds: the test server stops runs nobody watches after this long


@pytest.fixture(scope="module")
def short_grace_server(tmp_path_factory):
    """A server whose unwatched runs are stopped after GRACE seconds (the default is minutes)."""
    proc, base = start_app(tmp_path_factory.mktemp("grace") / "streamlit.log",
                           env={"SIAMESE_UNWATCHED_GRACE_S": str(GRACE)})
    yield proc, base
    stop_app(proc)


def run_id(page) -> str:
    m = re.search(r"[?&]run=([0-9a-f]{32})", page.url)
    assert m, f"no run id in {page.url}"
    return m[1]


def test_reloads_find_the_run_and_closed_tabs_free_the_server(browser, short_grace_server,
                                                              shots):
    """The issue's leak: runs started and left behind (reloads, closed tabs) kept their slots
    for ever, and every new session was told "busy". Now a reload finds its run again, a run
    nobody watches is stopped, and its slot comes back."""
    server, base = short_grace_server
    ctxs = [browser.new_context(viewport={"width": 1400, "height": 1500}) for _ in range(3)]
    try:
        a, b, c = (ctx.new_page() for ctx in ctxs)
        for p in (a, b, c):
            p.set_default_timeout(60_000)
        start_training(a, base, epochs=200, images=500)
        a.get_by_text(RUNNING).first.wait_for(timeout=90_000)
        rid = run_id(a)
        for _ in range(2):                       # reload twice mid-training: the same run
            a.reload()
            a.get_by_text(RUNNING).first.wait_for(timeout=60_000)
            assert run_id(a) == rid
            main(a).get_by_role("button", name="Stop").wait_for()
        shots(a, "reloaded")
        start_training(b, base, epochs=200, images=500)   # the second and last slot
        b.get_by_text(RUNNING).first.wait_for(timeout=90_000)
        # The server's children now: its two training workers (and a resource tracker).
        workers = children(server.pid)
        ctxs[0].close()                                  # both tabs closed mid-training
        ctxs[1].close()
        # A fresh session is told "busy" while both runs hold their slots ...
        go(c, base, "Train", "Set the hyperparameters")
        train = main(c).get_by_role("button", name="Train", exact=True)
        # ... until a run nobody watches is stopped: woken by a worker's exit, not a clock.
        assert wait_exit(workers, timeout=GRACE + 120), "the abandoned runs still hold the server"
        train.click()
        c.get_by_text(RUNNING).first.wait_for(timeout=90_000)
        shots(c, "fresh-session-trains")
        no_exceptions(c)
    finally:
        for ctx in ctxs:
            ctx.close()


@pytest.mark.parametrize("setting, hidden", [('"none"', True), ("false", False)])
def test_error_details_stay_on_the_server(browser, tmp_path, setting, hidden):
    """The project's .streamlit/config.toml on a script that raises: no exception text or
    traceback reaches the browser. With the old setting (false, i.e. "stacktrace" in Streamlit
    1.67) the same check sees the traceback: it would catch a regression."""
    (tmp_path / ".streamlit").mkdir()
    config = (ROOT / "siamese_studio" / ".streamlit" / "config.toml").read_text()
    assert 'showErrorDetails = "none"' in config
    (tmp_path / ".streamlit" / "config.toml").write_text(
        config.replace('showErrorDetails = "none"', f"showErrorDetails = {setting}"))
    (tmp_path / "boom.py").write_text('import streamlit as st\nst.write("before the error")\n'
                                      'raise RuntimeError("secret-detail-42")\n')
    proc, base = start_app(tmp_path / "streamlit.log", script="boom.py", cwd=tmp_path)
    page = browser.new_page()
    try:
        page.goto(base)
        page.get_by_text("before the error").wait_for(timeout=60_000)
        page.locator('[data-testid="stException"]').or_(
            page.get_by_text("encountered an error")).first.wait_for(timeout=30_000)
        body = page.locator('[data-testid="stMain"]').inner_text()
        leaked = "secret-detail-42" in body or "Traceback" in body or "boom.py" in body
        assert leaked != hidden, body
    finally:
        page.close()
        stop_app(proc)
    shutil.rmtree(tmp_path / ".streamlit")


def test_a_file_renamed_in_flight_is_refused_at_the_door(page, server, shots):
    """An upload whose name is changed on the wire to an extension the uploader refuses made
    Streamlit raise when the next script run started, before any page code: an exception and a
    session stuck on it. Now the upload request itself is refused (HTTP 400) and the page works
    on."""
    go(page, server, "Compare", "Random test pairs")
    upload = side_upload(page, 0)
    renamed = []

    def rename(route):
        body = route.request.post_data_buffer
        renamed.append(b'filename="a.png"' in body)
        route.continue_(post_data=body.replace(b'filename="a.png"', b'filename="evil.tif"'))

    page.route("**/_stcore/upload_file/**", rename)
    upload.set_input_files(files=[{"name": "a.png", "mimeType": "image/png",
                                         "buffer": digit_png(4, 0)}])
    page.get_by_text("status code 400").wait_for(timeout=30_000)
    assert renamed == [True]
    shots(page, "refused")
    page.unroute("**/_stcore/upload_file/**")
    montage = page.locator('[data-testid="stImage"] img').last
    before = montage.get_attribute("src")
    page.get_by_role("button", name="Resample").click()   # the session still runs its script
    page.wait_for_function("([img, src]) => img.getAttribute('src') !== src",
                           arg=[montage.element_handle(), before], timeout=30_000)
    # A good file works.
    upload.set_input_files(files=[{"name": "a.png", "mimeType": "image/png",
                                         "buffer": digit_png(4, 0)}])
    page.get_by_text("what the network sees").first.wait_for(timeout=30_000)
    no_exceptions(page)


# Measured with bench/soak.py (BENCHMARKS.md, section 8); bounds with room for a loaded machine.
PEAK_GROWTH_MB = 350
CLOSED_GROWTH_MB = 120


def test_memory_stays_bounded_under_worst_case_uploads(browser, tmp_path):
    """A small soak (the full one is bench/soak.py): 2 sessions x 6 uploads of 4096 x 4096
    RGBA PNGs. Before the fix each such image cost ~270 MB and memory only grew."""
    from tests.soak import soak
    proc, base = start_app(tmp_path / "streamlit.log")
    try:
        r = soak(base, proc.pid, sessions=2, uploads=6, browser=browser)
        assert rss_mb(proc.pid) > 0
    finally:
        stop_app(proc)
    assert r["growth_peak_mb"] < PEAK_GROWTH_MB, r
    assert r["growth_closed_mb"] < CLOSED_GROWTH_MB, r
