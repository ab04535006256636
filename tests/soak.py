"""Memory under hostile uploads, in a real browser: several sessions upload worst-case images
(large, mostly transparent RGBA PNGs: tiny files, 16.7 Mpx each) on the Compare page and rerun;
the server's resident memory is sampled throughout and after the sessions close. Used by
``bench/soak.py`` (full size) and the e2e suite (small). Imports Playwright lazily."""
from __future__ import annotations

import contextlib
import io
import time

import numpy as np
from PIL import Image, ImageDraw

from tests.harness import CHROMIUM, CHROMIUM_FLAGS, rss_mb


def worst_case_png(side: int = 4096, seed: int = 0) -> bytes:
    """A ``side`` x ``side`` RGBA PNG: a thick dark stroke on a transparent background (tens of
    KB compressed; 64 MB once decoded; the alpha path of the preprocessing)."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    pts = [tuple(int(v) for v in rng.integers(side // 5, 4 * side // 5, 2)) for _ in range(4)]
    d.line(pts, fill=(20, 20, 20, 255), width=side // 14)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def soak(base: str, pid: int, sessions: int = 4, uploads: int = 50, side: int = 4096,
         log=print, browser=None) -> dict:
    """Open ``sessions`` browser sessions on Compare; each uploads ``uploads`` worst-case images
    (alternating its two sides, each waits for the page to show its result) and reruns; returns
    the server's RSS (MB): cold, warm (after two rounds of uploads, the first verdicts: the baseline), peak,
    after the uploads, and after the sessions closed; growths are over the warm baseline."""
    from playwright.sync_api import sync_playwright

    images = [worst_case_png(side, s) for s in range(4)]
    out = {"cold_mb": rss_mb(pid), "sessions": sessions, "uploads": uploads, "side": side,
           "png_bytes": len(images[0])}
    t0 = time.time()
    with contextlib.ExitStack() as stack:
        if browser is None:     # else: a Playwright browser of the caller's (the e2e suite's)
            p = stack.enter_context(sync_playwright())
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=CHROMIUM_FLAGS)
            stack.callback(browser.close)
        ctxs, pages = [], []
        for _ in range(sessions):
            ctx = browser.new_context(viewport={"width": 1400, "height": 1200})
            pg = ctx.new_page()
            pg.set_default_timeout(60_000)
            pg.goto(base + "/compare")
            pg.get_by_text("Random test pairs").wait_for()
            # Scoped to the two-image tab: the other tabs' radios and uploaders are in the page
            # too (hidden), and a bare n-th one can be theirs.
            from playwright.sync_api import expect
            tab = pg.get_by_role("tabpanel", name="Two images")
            for i in range(2):
                tab.locator('[data-testid="stRadio"]').nth(i).get_by_text("Upload").click()
                expect(tab.locator('input[type="file"]')).to_have_count(i + 1)
            ctxs.append(ctx)
            pages.append(pg)
        out["pages_open_mb"] = rss_mb(pid)
        samples = []
        for k in range(uploads):
            for s, pg in enumerate(pages):
                side_i = k % 2
                pg.get_by_role("tabpanel", name="Two images").locator(
                    'input[type="file"]').nth(side_i).set_input_files(files=[{
                    "name": f"big{k}.png", "mimeType": "image/png",
                    "buffer": images[(k + s) % len(images)]}])
                # The network's view of this side is drawn once the rerun has decoded it.
                pg.get_by_role("tabpanel", name="Two images").get_by_text(
                    "what the network sees").nth(side_i).wait_for()
            samples.append(rss_mb(pid))
            if k == 1:
                # The baseline: both sides of every session are in, so every code path has run
                # once (the first verdict embeds the training images for the nearest
                # neighbours and draws the first charts).
                out["warm_mb"] = samples[-1]
            if (k + 1) % 10 == 0:
                log(f"upload round {k + 1}/{uploads}: server RSS {samples[-1]:.0f} MB")
        for pg in pages:                        # reruns with the images in place
            pg.get_by_role("button", name="Resample").click()
        samples.append(rss_mb(pid))
        out["after_uploads_mb"] = samples[-1]
        for ctx in ctxs:
            ctx.close()
    # Sessions end when their websockets close; give the server a moment to drop their files.
    deadline = time.time() + 30
    while time.time() < deadline and rss_mb(pid) > out["warm_mb"] + 60:
        time.sleep(1)
    out.update(peak_mb=max(samples), closed_mb=rss_mb(pid), seconds=round(time.time() - t0, 1),
               samples_mb=[round(x) for x in samples])
    out["growth_peak_mb"] = round(out["peak_mb"] - out["warm_mb"], 1)
    out["growth_closed_mb"] = round(out["closed_mb"] - out["warm_mb"], 1)
    return out
