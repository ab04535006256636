"""Real-browser fixtures: the app under `streamlit run`, driven by Debian's Chromium."""
import os
import shutil
from pathlib import Path

import pytest

from tests.harness import CHROMIUM, CHROMIUM_FLAGS, ROOT, start_app, stop_app

DOCS_SHOTS = os.environ.get("SIAMESE_DOCS_SCREENSHOTS")  # set to copy README shots into docs/

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not found: apt-get install chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """`streamlit run app.py` (the README's command) on a free loopback port; stopped (with its
    workers) afterwards."""
    proc, base = start_app(tmp_path_factory.mktemp("server") / "streamlit.log")
    yield base
    stop_app(proc)


@pytest.fixture(scope="session")
def playwright():
    """One Playwright for the whole run: a second ``sync_playwright()`` while one is running
    raises "using Playwright Sync API inside the asyncio loop"."""
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright):
    # launch() gives every context a fresh, temporary profile (user-data dir).
    b = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
    yield b
    b.close()


@pytest.fixture(scope="session")
def shot_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e-screenshots")


class Shots:
    """Screenshots of each step; their folder is printed when a test fails."""

    def __init__(self, folder: Path, test: str):
        self.folder, self.test, self.n = folder, test, 0

    def __call__(self, page, step: str, docs_name: str | None = None) -> Path:
        self.n += 1
        path = self.folder / f"{self.test}-{self.n:02d}-{step}.png"
        # Let the rerun settle: Streamlit fades out elements it has not redrawn yet.
        try:
            page.wait_for_function("!document.querySelector('[data-stale=\"true\"]')", timeout=5000)
        except Exception:
            pass
        page.screenshot(path=str(path))
        if DOCS_SHOTS and docs_name:
            shutil.copy(path, ROOT / "docs" / docs_name)
        return path


@pytest.fixture
def shots(shot_dir, request):
    return Shots(shot_dir, request.node.name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and "shots" in item.fixturenames:
        folder = item.funcargs.get("shot_dir")
        rep.sections.append(("screenshots", f"step screenshots in {folder}"))
        print(f"\nscreenshots of the failed steps: {folder}")


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1500})
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    ctx.close()
