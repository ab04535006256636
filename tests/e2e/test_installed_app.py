"""The app started from the installed wheel, in a fresh venv and outside the checkout (issue 16,
packaging): the console script serves every page with the packaged model and the app's own
server settings."""
import subprocess

import pytest

from tests.harness import start_app, stop_app

pytestmark = pytest.mark.e2e


def test_siamese_studio_serves_the_app_from_the_installed_package(installed, browser, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([str(installed / "bin" / "python"), "-c",
                            "import siamese_studio; print(siamese_studio.APP)"],
                           cwd=elsewhere, capture_output=True, text=True, timeout=60)
    assert where.stdout.strip().startswith(str(installed)), where.stderr[-2000:]
    proc, base = start_app(tmp_path / "streamlit.log", cwd=elsewhere,
                           launcher=[str(installed / "bin" / "siamese-studio")])
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = ctx.new_page()
        page.set_default_timeout(30_000)
        page.goto(base + "/")
        page.get_by_role("heading", name="Siamese pairs studio").wait_for()
        page.get_by_text("shipped default").first.wait_for()          # the packaged model
        # .streamlit/config.toml beside the installed app.py was read: toolbarMode "viewer"
        # (without it, a local server shows Streamlit's Deploy button).
        assert page.locator('[data-testid="stAppDeployButton"]').count() == 0
        page.get_by_role("link", name="Compare").first.click()
        page.get_by_text("the shipped model").first.wait_for()
        assert page.locator('[data-testid="stException"]').count() == 0
    finally:
        ctx.close()
        stop_app(proc)
