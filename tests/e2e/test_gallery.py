"""Issue 21's face flow in a real browser: upload a zip of photos → the kind detected → train →
enrol a person from the camera (Chromium's fake camera shows one of their photos) → identify
them, and a reload that finds the gallery again."""
import io
import zipfile

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.e2e.test_browser import go, metric, no_exceptions
from tests.e2e.test_your_data import no_server_paths, png, upload
from tests.harness import CHROMIUM, CHROMIUM_FLAGS

pytestmark = pytest.mark.e2e
W, H = 160, 120          # the fake camera's frame (even sides: 4:2:0 chroma)


def y4m(gray: np.ndarray) -> bytes:
    """One grey frame as a YUV4MPEG2 video (what Chromium's fake camera plays, in a loop)."""
    head = f"YUV4MPEG2 W{W} H{H} F30:1 Ip A1:1 C420jpeg\n".encode()
    chroma = bytes([128]) * (W // 2 * H // 2 * 2)
    return head + b"FRAME\n" + gray.astype(np.uint8).tobytes() + chroma


@pytest.fixture
def camera_page(playwright, server, tmp_path):
    """A page whose camera shows ``person03``'s first photo (framed in a larger scene)."""
    from tests.conftest import photo_images
    face = photo_images()["person03"][0]
    frame = np.random.default_rng(0).normal(90, 25, (H, W)).clip(0, 255).astype(np.uint8)
    y, x = (H - face.shape[0]) // 2, (W - face.shape[1]) // 2
    frame[y:y + face.shape[0], x:x + face.shape[1]] = face
    video = tmp_path / "camera.y4m"
    video.write_bytes(y4m(frame))
    # A browser of its own: the fake camera is a launch flag.
    b = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
        *CHROMIUM_FLAGS, "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream", f"--use-file-for-fake-video-capture={video}"])
    ctx = b.new_context(viewport={"width": 1400, "height": 1600}, permissions=["camera"])
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    b.close()


def take_photo(page, column) -> None:
    """Click the column's camera button once its video plays: a click before the fake camera
    streams takes no photo (seen once in a full run)."""
    video = column.locator("video").first
    video.wait_for()
    page.wait_for_function("v => v.readyState >= 2 && v.videoWidth > 0",
                           arg=video.element_handle(), timeout=30_000)
    column.get_by_role("button", name="Take Photo").click()


def test_faces_upload_train_enrol_from_the_camera_and_identify(camera_page, server, shots):
    from tests.conftest import photo_images
    page = camera_page
    people = photo_images()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for cls, imgs in people.items():
            for i, im in enumerate(imgs):
                z.writestr(f"faces/{cls}/{i}.png", png(Image.fromarray(im)))
    go(page, server, "Your data", "zip of class folders")
    upload(page, buf.getvalue(), "faces.zip")
    assert metric(page, "Classes", timeout=60) == "8"
    page.get_by_text("Kind: photo").first.wait_for()
    go(page, server, "Train", "Set the hyperparameters")
    box = page.get_by_role("spinbutton", name="Time budget (s)")
    box.fill("15")
    box.press("Tab")
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Training finished").first.wait_for(timeout=150_000)
    page.get_by_role("button", name="Use this model").first.click()
    page.get_by_text("your trained model").first.wait_for()

    go(page, server, "Compare", "Random test pairs")
    # The photo recipe keeps the inputs' pixels beside the network, and Compare says so.
    page.get_by_text("its embedding holds the input's own pixels").first.wait_for()
    page.get_by_role("tab", name="Enrol & identify").click()
    panel = page.get_by_role("tabpanel").filter(has_text="Enrol this image")
    enrol, who = panel.locator('[data-testid="stColumn"]').nth(0), \
        panel.locator('[data-testid="stColumn"]').nth(1)
    # Enrol two people by upload, then person03 from the camera.
    for name, image in (("person01", people["person01"][1]), ("person05", people["person05"][1])):
        panel.get_by_label("Name", exact=True).fill(name)
        panel.get_by_label("Name", exact=True).press("Enter")
        enrol.get_by_text("Upload").first.click()
        seen = enrol.locator('[data-testid="stImage"] img')
        before = seen.first.get_attribute("src") if seen.count() else None
        enrol.locator('input[type="file"]').first.set_input_files(
            files=[{"name": f"{name}.png", "mimeType": "image/png",
                    "buffer": png(Image.fromarray(image))}])
        enrol.get_by_text(f"{name}.png").first.wait_for()
        # The previous person's "what the network sees" stays on the page until the rerun
        # for this upload has drawn this one: wait for the new image, not the old caption (a
        # click on Enrol before it could enrol in a run that had not seen the upload).
        enrol.get_by_text("what the network sees").first.wait_for()
        if before is not None:
            expect(seen.first).not_to_have_attribute("src", before, timeout=60_000)
        page.wait_for_function("!document.querySelector('[data-stale=\"true\"]')")
        button = enrol.get_by_role("button", name="Enrol this image")
        expect(button).to_be_enabled()
        button.click()
        page.get_by_text(f"{name}: 1 image enrolled").wait_for()
    panel.get_by_label("Name", exact=True).fill("person03")
    panel.get_by_label("Name", exact=True).press("Enter")
    enrol.get_by_text("Camera").first.click()
    take_photo(page, enrol)
    enrol.get_by_text("what the network sees").first.wait_for()
    enrol.get_by_role("button", name="Enrol this image").click()
    page.get_by_text("person03: 1 image enrolled").wait_for()
    shots(page, "enrolled")
    page.get_by_text("Enrolled (3)").wait_for()

    # Who is this? The camera again: the same person.
    who.get_by_text("Camera").first.click()
    take_photo(page, who)
    who.get_by_text("what the network sees").first.wait_for()
    assert metric(page, "Identified as") == "person03"
    no_exceptions(page)
    no_server_paths(page)
    shots(page, "identified", "gallery.png")

    # A reload finds the gallery again (its id is in the URL), and the model it was made with.
    assert "gallery=" in page.url
    page.reload()
    page.get_by_text("Random test pairs").first.wait_for()
    page.get_by_role("tab", name="Enrol & identify").click()
    page.get_by_text("This session enrolled 3 identities with another model").wait_for()
    page.get_by_role("button", name="Use faces.zip-triplet").click()
    page.get_by_text("Enrolled (3)").wait_for()
    page.get_by_text("your trained model").first.wait_for()
    no_exceptions(page)
    shots(page, "reloaded")
