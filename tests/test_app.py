"""AppTest: every page renders, the key widgets exist, and the three parts work."""
import base64
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest
APP = str(ROOT / "siamese_studio" / "app.py")


def app(page: str | None = None):
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def png(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_home_renders_with_diagram_and_links():
    at = app()
    assert at.title[0].value == "Siamese pairs studio"
    assert any("shipped default" in m.value for m in at.sidebar.markdown)
    assert len(at.get("graphviz_chart")) == 1
    assert len(at.get("page_link")) == 4


def test_explorer_resample_changes_montage():
    at = app("pages/explorer.py")
    assert at.selectbox(key="explorer_dataset").value == "mnist-5k"
    before = at.session_state["explorer_montage_sha"]
    at.button(key="resample").click().run()
    assert not at.exception
    assert at.session_state["explorer_montage_sha"] != before
    assert len(at.get("image")) >= 1
    # Class filter with a single class explains itself instead of failing.
    at.multiselect(key="explorer_classes").set_value(["3"]).run()
    assert any("at least two classes" in w.value for w in at.warning)


def test_compare_uploads_give_a_verdict(mnist_test):
    at = app("pages/compare.py")
    three = np.flatnonzero(mnist_test.labels == 3)[:2]
    for side, i in (("left", three[0]), ("right", three[1])):
        at.radio(key=f"mode_{side}").set_value("Upload").run()
        at.file_uploader(key=f"upload_{side}").set_value((f"{side}.png",
                                                          png(255 - mnist_test.images[i]),
                                                          "image/png")).run()
    assert not at.exception
    verdict = {m.label: m.value for m in at.metric}
    assert verdict["Verdict"] == "same"
    assert 0 <= float(verdict["Distance"]) < 2


def test_compare_bad_upload_and_blank_canvas_are_friendly():
    at = app("pages/compare.py")
    at.radio(key="mode_left").set_value("Upload").run()
    at.file_uploader(key="upload_left").set_value(("x.png", b"not an image", "image/png")).run()
    assert not at.exception
    # A problem with the input is a warning, worded for the uploader (PNG or JPEG only), and
    # not one of the blue prompts.
    assert any(w.value == "not a PNG or JPEG image." for w in at.warning), [
        w.value for w in at.warning]
    assert not any("not a" in i.value for i in at.info)
    # A stroke too faint to be ink (10 grey levels on black): "nothing drawn", not the prompt.
    faint = np.zeros((280, 280, 4), np.uint8)
    faint[..., 3] = 255
    faint[100:180, 130:150, :3] = 10
    inject_drawing(at, "canvas_right_0", faint)
    assert any("nothing drawn" in w.value for w in at.warning), [w.value for w in at.warning]


def inject_drawing(at, key, rgba, raw: dict | None = None):
    """Put a drawing where streamlit-drawable-canvas keeps its value: the widget state under
    the canvas's key, ``{"drawing": {"raw": <fabric JSON>, "data": <PNG data URL>}}``."""
    url = "data:image/png;base64," + base64.b64encode(png(rgba)).decode()
    at.session_state[key] = {"drawing": {"raw": raw or {"objects": []}, "data": url}}
    at.run()
    assert not at.exception


def stroke(shape: str) -> np.ndarray:
    import cv2
    img = np.zeros((280, 280, 4), np.uint8)
    if shape == "1":
        cv2.line(img, (140, 40), (140, 240), (255, 255, 255, 255), 18)
    else:
        cv2.ellipse(img, (140, 140), (70, 100), 0, 0, 360, (255, 255, 255, 255), 18)
    return img


def verdict(at) -> str | None:
    return {m.label: m.value for m in at.metric}.get("Verdict")


def test_compare_canvas_drawings():
    at = app("pages/compare.py")
    inject_drawing(at, "canvas_left_0", stroke("1"))
    inject_drawing(at, "canvas_right_0", stroke("1"))
    assert verdict(at) == "same"
    inject_drawing(at, "canvas_right_0", stroke("0"))
    assert verdict(at) == "different"


def test_a_drawing_survives_another_input_mode_and_clear_starts_again():
    """UX 6: Draw -> Pick -> Draw keeps the drawing (its pixels now, its strokes for the
    remounted canvas); Clear gives a new, empty canvas."""
    at = app("pages/compare.py")
    drawing = {"objects": [{"type": "path", "path": [["M", 140, 40], ["L", 140, 240]]}]}
    inject_drawing(at, "canvas_left_0", stroke("1"), drawing)
    inject_drawing(at, "canvas_right_0", stroke("0"))
    assert verdict(at) == "different"
    at.radio(key="mode_left").set_value("Pick").run()
    at.radio(key="mode_left").set_value("Draw").run()
    assert not at.exception
    assert verdict(at) == "different"                      # the 1, not the picked image
    assert at.session_state["drawing_left"]["restore"] == drawing
    at.button(key="clear_left").click().run()
    assert verdict(at) is None
    assert any(i.value == "Draw a digit (white on black)." for i in at.info)
    assert at.session_state["drawing_left"]["gen"] == 1    # a new canvas, not the old one


FINISHED = ("done", "failed")


def rerun_when(at, done, timeout=240):
    """Wait on the session's training run itself (woken by its worker's events, no clock),
    until ``done(state)``; then rerun the page as the browser's next refresh would."""
    at.session_state["train_job"].wait_until(done, timeout)
    at.run()
    assert not at.exception, at.exception


def stop_button(at) -> bool:
    return any(b.key == "stop_training" for b in at.button)


def test_train_tiny_run_to_completion_and_use_it():
    at = app("pages/train.py")
    form = {w.label: w for w in at.number_input}
    assert {"Epochs (0 = no limit)", "Time budget (s)", "Margin (0 = the loss's default)",
            "Seed"} <= set(form)
    assert {s.label for s in at.selectbox} >= {"Dataset", "Loss", "Pairs"}
    form["Epochs (0 = no limit)"].set_value(1)
    form["Training images (0 = all)"].set_value(300)
    submit = [b for b in at.button if b.label.endswith("Train")][0]
    submit.click().run()
    assert not at.exception
    rerun_when(at, lambda s: s.status in FINISHED)
    assert any("Training finished" in s.value or "Training stopped" in s.value
               for s in at.success) or at.error
    assert not at.error, [e.value for e in at.error]
    labels = {m.label: m.value for m in at.metric}
    assert "Pair accuracy" in labels and "ROC AUC" in labels
    # One epoch on 300 images against the shipped model, on the test split neither trained on.
    versus = [m.value for m in at.markdown if "Against the shipped model" in m.value]
    assert versus and "499,500 pairs of the 1,000 test images" in versus[0]
    assert versus[0].endswith("**significantly worse**.")
    # Issue 24, 5: back on Train after choosing another dataset elsewhere, the form trains that
    # one (it reopened the finished run's); the finished run names its own.
    assert any("on mnist\\-5k after" in s.value for s in at.success)
    at.switch_page("pages/explorer.py").run()
    at.selectbox(key="explorer_dataset").set_value("fashion-mnist").run()
    at.switch_page("pages/train.py").run()
    assert at.selectbox(key="train_dataset").value == "fashion-mnist"
    assert any("on mnist\\-5k after" in s.value for s in at.success)
    at.selectbox(key="train_dataset").set_value("mnist-5k").run()
    assert any(m.value == "`mnist-5k`" for m in at.sidebar.markdown)
    at.button(key="use_model").click().run()
    from siamese_core import runs
    mine = Path(at.session_state["active_model"])
    assert mine.parent.parent == runs.default_root() and runs.is_run_dir(mine.parent)
    # The run is in the URL: a reloaded page (a new session) finds it again.
    assert at.query_params["run"] == at.session_state["train_job"].id
    assert any("your trained model" in m.value for m in at.sidebar.markdown)
    # Compare now judges with the trained model.
    at.switch_page("pages/compare.py").run()
    assert any("your trained model" in c.value for c in at.caption)
    at.radio(key="mode_left").set_value("Pick").run()
    at.radio(key="mode_right").set_value("Pick").run()
    assert any(m.label == "Verdict" for m in at.metric)
    # The session's runs (issue 16): rename, keep beyond a day, delete.
    at.switch_page("pages/train.py").run()
    assert any(h.value == "Your runs" for h in at.subheader)
    prefix = str(mine)
    at.text_input(key=f"name_{prefix}").set_value("first try").run()
    assert runs.describe(prefix).name == "first try" and not at.exception
    at.toggle(key=f"keep_{prefix}").set_value(True).run()
    assert runs.describe(prefix).kept
    at.button(key="runs_delete").click().run()
    assert not at.exception and not mine.parent.exists()
    assert at.session_state["active_model"] is None


def test_two_runs_side_by_side_on_the_train_page():
    """Issue 16: the session's last two runs compared: a column each, the differing rows
    named, both histories charted; a run whose files are gone is left out of the choice."""
    from siamese_core import runs
    from tests.test_runs import saved_run
    root = runs.default_root()
    a = saved_run(root, "a" * 32, "mnist-5k-bce", **{"train.loss": "bce"})
    b = saved_run(root, "b" * 32, "mnist-5k-triplet", **{"train.loss": "triplet"})
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["my_runs"] = [str(a), str(b)]
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert at.multiselect(key="runs_side_by_side").value == [str(a), str(b)]
    table = at.dataframe[-1].value
    assert list(table.columns) == ["mnist-5k-bce", "mnist-5k-triplet"]
    assert list(table.loc["loss"]) == ["bce", "triplet"]
    assert any("Bold: the rows where" in c.value for c in at.caption)
    charts = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    curves = [c for c in charts if "training time (s)" in json.dumps(c)]
    assert len(curves) == 2                                  # ROC AUC and pair accuracy
    at.multiselect(key="runs_side_by_side").set_value([str(a)]).run()
    assert any(i.value == "Choose two runs." for i in at.info)


def test_side_by_side_of_runs_on_two_datasets_draws_the_table():
    """Issue 24, 1: runs trained on different datasets once crashed the section (a dataset row
    twice in the table); now one dataset row names both."""
    from siamese_core import runs
    from tests.test_runs import saved_run
    root = runs.default_root()
    a = saved_run(root, "c" * 32, "mnist-5k-bce")
    b = saved_run(root, "d" * 32, "faces", **{"dataset": "zip:faces.zip",
                                             "train.dataset": "zip:faces.zip"})
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["my_runs"] = [str(a), str(b)]
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    table = at.dataframe[-1].value
    assert list(table.loc["dataset"]) == ["mnist-5k", "zip:faces.zip"]


def test_a_deleted_trained_model_falls_back_to_the_shipped_one(tmp_path):
    at = app()
    at.session_state["active_model"] = str(tmp_path / "gone" / "mnist-5k-contrastive")
    at.switch_page("pages/compare.py").run()
    assert not at.exception and not at.error
    assert any("files are gone" in w.value for w in at.warning)
    assert at.session_state["active_model"] is None
    assert any("shipped default" in m.value for m in at.sidebar.markdown)
    at.radio(key="mode_left").set_value("Pick").run()
    at.radio(key="mode_right").set_value("Pick").run()
    assert any(m.label == "Verdict" for m in at.metric)


def test_train_form_says_what_auto_holds_out():
    """Built-in datasets hold out images (their classes are all trained on); "auto" says so
    instead of naming the rule for uploaded data."""
    at = app("pages/train.py")
    hold = next(s for s in at.selectbox if s.label == "Hold out")
    assert hold.options[0] == "auto (images)"


def test_train_stop():
    at = app("pages/train.py")
    form = {w.label: w for w in at.number_input}
    form["Epochs (0 = no limit)"].set_value(50)
    submit = [b for b in at.button if b.label.endswith("Train")][0]
    submit.click().run()
    rerun_when(at, lambda s: s.losses)
    assert stop_button(at)
    at.button(key="stop_training").click().run()
    rerun_when(at, lambda s: s.status in FINISHED)
    assert not at.error
    assert any("stopped" in s.value for s in at.success), [s.value for s in at.success]


def test_app_process_stays_free_of_tensorflow():
    code = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({APP!r}, default_timeout=60); at.run()\n"
        "for p in ('pages/explorer.py', 'pages/train.py', 'pages/compare.py'):\n"
        "    at.switch_page(p).run(); assert not at.exception, at.exception\n"
        "at.radio(key='mode_left').set_value('Pick').run()\n"
        "at.radio(key='mode_right').set_value('Pick').run()\n"
        "assert any(m.label == 'Verdict' for m in at.metric)\n"
        "print('TF', 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "TF False False" in out.stdout


def test_compare_buttons_are_there_on_first_render():
    """Issue 16, UX 1: "Resample" and "Another" were missing on a page's first render (the
    `key not in session_state or st.button(...)` short-circuit skipped drawing them)."""
    at = app("pages/compare.py")
    assert any(b.key == "resample_compare" for b in at.button)
    at.radio(key="mode_left").set_value("Pick").run()
    assert any(b.key == "repick_left" for b in at.button)
    first = at.session_state["pick_left"]
    for _ in range(5):                       # a new pick (five tries: 1 in 1,000 repeats)
        at.button(key="repick_left").click().run()
        if at.session_state["pick_left"] != first:
            break
    assert at.session_state["pick_left"] != first


def test_a_reloaded_train_page_finds_its_run_and_its_settings():
    """A reload is a new session: the run id in the URL brings back the run, its Stop button
    and the settings it was started with (issue 15: a run belongs to its id, not to a tab)."""
    at = app("pages/train.py")
    form = {w.label: w for w in at.number_input}
    form["Epochs (0 = no limit)"].set_value(50)
    form["Seed"].set_value(7)
    [b for b in at.button if b.label.endswith("Train")][0].click().run()
    rerun_when(at, lambda s: s.status == "running")
    assert stop_button(at)
    rid = at.query_params["run"]
    again = app()
    again.switch_page("pages/train.py")
    again.query_params["run"] = rid          # as in the reloaded URL
    again.run()
    assert again.session_state["train_job"] is at.session_state["train_job"]
    form = {w.label: w.value for w in again.number_input}
    assert (form["Epochs (0 = no limit)"], form["Seed"]) == (50, 7)
    assert stop_button(again)
    again.button(key="stop_training").click().run()
    rerun_when(again, lambda s: s.status in FINISHED)
    assert not again.error
    assert any("stopped" in s.value for s in again.success), [s.value for s in again.success]
    gone = app()
    gone.switch_page("pages/train.py")
    gone.query_params["run"] = "0" * 32
    gone.run()
    assert any("no longer on this server" in w.value for w in gone.warning)


def test_sidebar_dataset_follows_the_explorer_at_once():
    """Issue 16, UX 2: the sidebar's "Active dataset" lagged one rerun behind the choice."""
    at = app("pages/explorer.py")
    at.selectbox(key="explorer_dataset").set_value("fashion-mnist").run()
    assert any(m.value == "`fashion-mnist`" for m in at.sidebar.markdown), \
        [m.value for m in at.sidebar.markdown]


def test_montage_caption_and_file_name_say_which_classes():
    """Issue 16, UX 7: the caption and the download name ignored the class filter."""
    from siamese_studio.ui.common import montage_labels
    assert montage_labels("mnist-5k", 3, []) == (
        "mnist-5k: 7×7 pairs, seed 3 — green pos, red neg", "pairs-mnist-5k-3.png")
    caption, name = montage_labels("fashion-mnist", 0, ["T-shirt/top", "Bag"])
    assert "(classes T-shirt/top, Bag)" in caption
    assert name == "pairs-fashion-mnist-classes-T-shirt_top-Bag-0.png"
    at = app("pages/explorer.py")
    at.multiselect(key="explorer_classes").set_value(["3", "8"]).run()
    assert not at.exception and not at.error


def test_train_page_says_busy_and_shows_a_failed_run(monkeypatch):
    """Issue 16: the Train page's busy and failed-run branches had no test."""
    from siamese_core import jobs

    def busy(cls, config, out):
        raise jobs.BusyError("the server is training two models already; try again in a minute")
    monkeypatch.setattr(jobs.TrainingJob, "start", classmethod(busy))
    at = app("pages/train.py")
    [b for b in at.button if b.label.endswith("Train")][0].click().run()
    assert not at.exception and "train_job" not in at.session_state
    assert any("training two models already" in w.value for w in at.warning)

    class Failed:                      # what a finished, failed run looks like to the page
        id, finished, config = "f" * 32, True, None

        def poll(self):
            return jobs.JobState(status="failed", error="cannot read dataset.zip (bad CRC)")
    at.session_state["train_job"] = Failed()
    at.run()
    assert not at.exception
    from siamese_studio.ui.text import plain
    assert [e.value for e in at.error] == [plain("cannot read dataset.zip (bad CRC)")]
    assert not [m for m in at.metric if m.label == "Pair accuracy"]


def test_the_train_form_round_trips_a_config_without_an_epoch_limit():
    """The recipe for your data has no epoch limit: the form shows 0 ("no limit"), not a
    made-up 10,000 epochs, and turns 0 back into no limit."""
    from siamese_studio.ui.train_form import base_config, config_from_form, form_values
    mine = base_config("zip:x.zip")                     # the recipe for new classes
    assert mine.epochs is None and form_values(mine)["epochs"] == 0
    assert config_from_form("zip:x.zip", form_values(mine)) == mine
    demo = base_config("mnist-5k")                      # the page's quick demo
    assert config_from_form("mnist-5k", form_values(demo)) == demo and demo.epochs
    # Test-time augmentation: the toggle's value is the config's, both ways.
    tta = config_from_form("zip:x.zip", form_values(mine) | {"tta": True})
    assert tta.test_time == "tta" and form_values(tta)["tta"] is True
    assert config_from_form("zip:x.zip", form_values(tta) | {"tta": False}).test_time == "none"


def _session(page: str, **state):
    """The app as a session holding ``state`` (session-state keys), opened at ``page``."""
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _with_upload(spec: str, name: str, page: str):
    """The app as a session that uploaded ``spec`` (the uploader itself: e2e tests)."""
    return _session(page, user_datasets={spec: name}, active_dataset=spec)


def test_your_data_says_the_kind_it_chose_and_shows_photos_as_photos(photo_zip, ink_zip):
    """Issue 21: the page names the kind chosen from the images and why; the sample grid is
    what the kind's recipe feeds the network (48-px photos, not ink masks)."""
    at = _with_upload(f"zip:{photo_zip}", "faces.zip", "pages/your_data.py")
    intro = at.caption[0].value                     # its limits, filled in (not "{...}")
    assert "50 MB and 4 billion pixels in all" in intro and "With 6 or more classes" in intro
    text = " ".join(m.value for m in at.markdown)
    assert "**Kind: photo**" in text and "photograph" in text and "48×48 px" in text
    at = _with_upload(f"zip:{ink_zip}", "digits.zip", "pages/your_data.py")
    text = " ".join(m.value for m in at.markdown)
    assert "**Kind: ink**" in text and "40×40 px" in text


def test_train_page_starts_from_the_recipe_of_the_images_kind(photo_zip):
    """The kind above the form is the detected one, and the form is its recipe's (fits of
    photos, mirrored on, no turned copies); choosing ink starts from the ink recipe."""
    at = _with_upload(f"zip:{photo_zip}", "faces.zip", "pages/train.py")
    kind = next(s for s in at.selectbox if s.label == "Kind of images")
    assert kind.value == "photo" and "photograph" in kind.help
    fit = next(s for s in at.selectbox if s.label == "Fit")
    assert fit.options == ["central square", "whole image"]
    toggles = {t.label: t.value for t in at.toggle}
    assert toggles["Mirrored"] and not toggles["Turned copies"] and toggles["Pixels too"]
    kind.set_value("ink").run()
    fit = next(s for s in at.selectbox if s.label == "Fit")
    assert fit.options == ["centre the ink", "fill the frame"]
    toggles = {t.label: t.value for t in at.toggle}
    assert not toggles["Mirrored"] and toggles["Turned copies"] and not toggles["Pixels too"]
    from siamese_studio.ui.train_form import base_config, config_from_form, form_values
    v = form_values(base_config(f"zip:{photo_zip}"))
    assert config_from_form(f"zip:{photo_zip}", v).pixels
    assert not config_from_form(f"zip:{photo_zip}", v | {"pixels": False}).pixels
    assert not at.exception


def test_the_face_crop_is_offered_for_photos_and_no_face_is_said_not_judged(photo_zip,
                                                                            face_model, face_zip):
    """Issue 21, 4: the Train form offers the face crop for photos (off: face databases are
    tight crops), never for ink; a face-crop model in Compare says so, and a photo without a
    face gets "no face found" where the verdict would be."""
    from siamese_studio.ui.train_form import base_config, config_from_form, form_values
    at = _with_upload(f"zip:{photo_zip}", "faces.zip", "pages/train.py")
    assert {t.label: t.value for t in at.toggle}["Crop to the face"] is False
    next(s for s in at.selectbox if s.label == "Kind of images").set_value("ink").run()
    assert "Crop to the face" not in [t.label for t in at.toggle]
    # Photos of faces in scenes: Your data says what it found, and the form starts with the crop.
    at = _with_upload(f"zip:{face_zip}", "room_faces.zip", "pages/your_data.py")
    text = " ".join(m.value for m in at.markdown)
    assert "**Faces** — found in 32 of 33 sampled photos" in text and "is on in the Train" in text
    at.switch_page("pages/train.py").run()
    assert {t.label: t.value for t in at.toggle}["Crop to the face"] is True
    v = form_values(base_config(f"zip:{photo_zip}")) | {"face": True}
    assert config_from_form(f"zip:{photo_zip}", v).face_crop is True
    ink = form_values(base_config(f"zip:{photo_zip}", "ink")) | {"face": True}
    assert config_from_form(f"zip:{photo_zip}", ink).face_crop is False

    from tests.conftest import face_photos
    at = _session("pages/compare.py", user_datasets={f"zip:{face_zip}": "room_faces.zip"},
                  active_model=str(face_model.prefix))
    assert "cropped to the face" in at.caption[0].value
    # The photo recipe's pixels beside the network, and their weight, said too.
    assert "holds the input's own pixels beside the network's (pixel weight 0." in \
        at.caption[0].value
    wall = np.random.default_rng(3).uniform(0, 255, (90, 120)).astype(np.uint8)
    face = face_photos(1, 1, seed=4)["person00"][0]
    for side, image in (("left", face), ("right", wall)):
        at.radio(key=f"mode_{side}").set_value("Upload").run()
        at.file_uploader(key=f"upload_{side}").set_value((f"{side}.png", png(image),
                                                          "image/png")).run()
    assert not at.exception, at.exception
    assert any("no face found" in w.value for w in at.warning), [w.value for w in at.warning]
    assert "Verdict" not in [m.label for m in at.metric]
    at.file_uploader(key="upload_right").set_value(("b.png", png(face), "image/png")).run()
    assert next(m.value for m in at.metric if m.label == "Verdict") == "same"


def test_a_defect_in_one_section_is_one_line_and_the_page_goes_on():
    """Issue 24 (the class of item 1): a section that raises shows one line naming the section,
    not Streamlit's error box, and what comes after it is still drawn."""
    def script():
        import streamlit as st

        from siamese_studio.ui.common import section
        with section("Side by side"):
            st.write("before")
            raise KeyError("boom /srv/private/path")
        st.write("after")

    at = AppTest.from_function(script, default_timeout=30).run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "Side by side could not be drawn (KeyError); the rest of the page is unaffected."]
    assert "after" in [m.value for m in at.markdown]


def test_a_live_fragment_that_outlives_its_run_reruns_the_page_instead_of_drawing():
    """Issue 24, 2: a timer of the live page could fire once the finished page was drawn; its
    fragment then drew the charts where the finished page has its Test heading (lost until a
    reload). Given a finished run, each live fragment asks for a full rerun and draws nothing."""
    def script():
        from types import SimpleNamespace

        import streamlit as st

        from siamese_core.jobs import JobState
        from siamese_studio.ui import train_view

        class Finished:          # a run that has just ended (its last batch still in the state)
            finished = True

            def poll(self):
                return JobState(status="running", steps=[1, 2], losses=[0.5, 0.4],
                                last_batch=SimpleNamespace(epoch=1, step=2, steps_per_epoch=2,
                                                           progress=1.0, elapsed=1.0, eta=None))

        n = st.session_state["runs"] = st.session_state.get("runs", 0) + 1
        if n == 1:
            getattr(train_view, st.session_state.get("which", "live_charts"))(Finished())
        st.markdown(f"run {n}")

    for which in ("live_charts", "live_progress"):
        at = AppTest.from_function(script, default_timeout=30)
        at.session_state["which"] = which
        at.run()
        assert not at.exception, which
        assert [m.value for m in at.markdown] == ["run 2"], which   # rerun; nothing drawn
        assert not at.get("vega_lite_chart") and not at.get("progress"), which


def test_names_from_an_upload_reach_the_page_as_text_not_markdown(mnist_test, tmp_path):
    """Issue 24, 10: class, member and file names are shown as themselves: no bold, formula or
    image (a class named like a Markdown image made the browser fetch an address of the
    uploader's choosing), on Your data and in the Pair explorer."""
    import zipfile

    from tests.conftest import write_zip
    hostile = ["**bold**", "$x^2$", "![im](http:x.png)", ":red[c]", "_u_", "# h"]
    classes = {n: [255 - mnist_test.images[i] for i in np.flatnonzero(mnist_test.labels == d)[:5]]
               for d, n in enumerate(hostile)}
    path = write_zip(tmp_path / "names.zip", classes)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("**bold**/![x](http:y.png).png", b"not an image")
    spec = f"zip:{path}"
    shown = []
    for page in ("pages/your_data.py", "pages/explorer.py"):
        at = _with_upload(spec, "**up**.zip", page)
        shown += [e.value for e in (*at.markdown, *at.warning, *at.caption, *at.subheader)]
        shown += [c for i in at.get("image") for c in i.captions if c]
    text = "\n".join(shown)
    assert "7×7 pairs" in text and r"\*\*bold\*\*" in text   # the montage caption, a class
    outside_code = re.sub(r"(`+).*?\1", "", text)               # code spans render nothing
    assert r"\*\*up\*\*\.zip" in text                     # the file name, escaped
    assert r"\!\[x\]\(http\:y.png\)" in text or r"\!\[x\]\(http\:y\.png\)" in text  # the note
    for raw in ["**bold**", "$x^2$", "![im]", "![x]", ":red[", "**up**"]:
        assert raw not in outside_code, raw


@pytest.fixture(scope="module")
def held_out_model(mnist_test, tmp_path_factory):
    """A one-epoch model on an upload of 8 digit classes (whole classes held out: 2 for
    validation, 2 for test), its spec and the upload's file name."""
    from siamese_core.config import recipe
    from siamese_core.train import train
    from tests.conftest import write_zip
    folder = tmp_path_factory.mktemp("held_out")
    classes = {f"c{d}": [255 - mnist_test.images[i] for i in np.flatnonzero(mnist_test.labels == d)[:6]]
               for d in range(8)}
    spec = f"zip:{write_zip(folder / 'dataset.zip', classes)}"
    out = folder / "run" / "model"
    train(recipe(spec, kind="ink", epochs=1, seconds=None), [], out=out)
    return spec, out


def test_verification_says_each_classs_split_and_picks_from_it(held_out_model):
    """Issue 24, 7: validation classes were marked "new: not trained on" like test classes,
    though they chose the threshold; Pick offered test images only, so a validation class's
    own image could never be questioned. Each held-out class now says its split, and Pick
    offers that split's images (never the picked image as its own reference)."""
    spec, out = held_out_model
    at = _session("pages/compare.py", user_datasets={spec: "digits.zip"}, active_model=str(out))
    box = at.selectbox(key="verify_class")
    marks = box.options                  # as the page shows them
    assert sum(m.endswith("  (new: test split)") for m in marks) == 2, marks
    assert sum(m.endswith("  (new: validation split)") for m in marks) == 2, marks
    val_class = next(m for m in marks if m.endswith("validation split)")).split("  (")[0]
    box.set_value(val_class).run()
    at.radio(key="mode_verify").set_value("Pick").run()
    assert not at.exception, at.exception
    captions = [c for im in at.get("image") for c in im.captions]
    assert any("of the validation split)" in c for c in captions), captions
    assert any(m.label == "Verdict" for m in at.metric), [m.label for m in at.metric]


def test_server_paths_and_private_ids_never_reach_the_page(held_out_model, tmp_path):
    """Issue 24, 6 and 12: the command line named the server's private copy of an upload; a
    dataset removed from the session, a failed load and a deleted run showed paths under the
    runs folder. Every message names the file the user uploaded instead."""
    from siamese_core import runs
    spec, out = held_out_model
    root = str(runs.default_root())
    hidden = f"zip:{root}/{'a' * 32}/dataset.zip"

    def script(spec, hidden, root):
        import streamlit as st

        from siamese_core.config import recipe
        from siamese_studio.ui import common
        from siamese_studio.ui.train_view import command_block
        common.register_upload(hidden, "faces.zip")
        st.markdown(common.say(f"cannot read {hidden}: not a zip archive"))
        st.markdown(common.say(f"[Errno 2] No such file or directory: '{root}/{'b' * 32}/m.json'"))
        st.markdown(common.dataset_label(hidden))               # removed: still its name
        st.markdown(common.dataset_label(spec))                 # another session's
        where, line = command_block(recipe(hidden, kind="ink"), "runs/m")
        st.markdown(where)
        st.code(line)

    at = AppTest.from_function(script, args=(spec, hidden, root), default_timeout=30).run()
    assert not at.exception, at.exception
    shown = [m.value for m in at.markdown] + [c.value for c in at.code]
    assert not any(root in t or "a" * 32 in t for t in shown), shown
    from siamese_studio.ui.text import plain
    assert shown[0] == plain("cannot read faces.zip: not a zip archive")
    assert shown[1] == plain("[Errno 2] No such file or directory: 'a file on the server'")
    assert shown[2] == "your data: faces.zip (removed)"
    assert shown[3] == "your data (an earlier upload)"
    assert "faces.zip" in shown[4]
    assert "--dataset zip:faces.zip" in shown[5]
    # And on a page: Compare after the upload was removed from the session.
    at = _session("pages/compare.py", upload_names={spec: "digits.zip"}, active_model=str(out))
    page = [e.value for e in (*at.markdown, *at.caption, *at.warning, *at.error, *at.info)]
    assert any(plain("your data: digits.zip (removed)") in t for t in page), page
    assert not any(spec.split(":", 1)[1] in t for t in page), page


def test_the_pair_explorers_class_filter_offers_only_classes_with_training_images(held_out_model):
    """Issue 24, 20: with whole classes held out, the filter listed every class, though the
    held-out ones have no image in the training split the pairs come from."""
    spec, _ = held_out_model
    at = _with_upload(spec, "digits.zip", "pages/explorer.py")
    box = at.multiselect(key="explorer_classes")
    assert len(box.options) == 4 and set(box.options) < {f"c{d}" for d in range(8)}, box.options
    box.set_value(box.options[:2]).run()
    assert not at.exception and not at.error


@pytest.fixture(scope="module")
def signature_model(signature_zip, tmp_path_factory):
    """A two-epoch model on the synthetic signatures with forgeries, and its spec."""
    from siamese_core.config import recipe
    from siamese_core.train import train
    spec = f"zip:{signature_zip}"
    out = tmp_path_factory.mktemp("sig") / "run" / "model"
    train(recipe(spec, kind="ink", epochs=2, seconds=None, rotated_classes=False), [], out=out)
    return spec, out


def test_signatures_with_forgeries_show_writers_forgeries_and_both_false_accept_rates(
        signature_model):
    """Issue 21, 3: Your data counts genuine and forged images per writer (128 "classes" for 64
    writers before); Compare's verification says both false-accept rates at the threshold."""
    spec, out = signature_model
    at = _with_upload(spec, "signatures.zip", "pages/your_data.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["People"] == "8" and metrics["Genuine images"] == "48"
    assert metrics["Skilled forgeries"] == "32" and metrics["Held out for test"] == "2 people"
    assert any("Genuine and forged images per person" in m.value for m in at.markdown)
    # Wide ink: said, and the sample is drawn as the network sees it (issue 21, 2).
    assert any(m.value.startswith("**Shape**") and "56×112 px" in m.value for m in at.markdown)
    assert any("as the network sees them: 56×112 px" in m.value for m in at.markdown)
    # Skilled forgeries: binary ink and thin strokes, and why (the pen shortcut).
    assert any(m.value.startswith("**Pen**") and "every stroke thinned to one pixel" in m.value
               and "darkness and width" in m.value for m in at.markdown)
    # 8 writers: 2 validation and 2 test writers, said before anything is trained.
    assert any(i.value.startswith("Few classes held out: validation has 2 and test 2")
               for i in at.info), [i.value for i in at.info]
    at.switch_page("pages/train.py").run()
    toggles = {t.label: t.value for t in at.toggle}
    assert toggles["Binary ink"] is True and toggles["Thin strokes"] is True
    assert toggles["Pixels too"] is True
    from siamese_studio.ui.train_form import base_config, config_from_form, form_values
    v = form_values(base_config(spec))
    assert config_from_form(spec, v).prep.thin
    assert not config_from_form(spec, v | {"thin": False}).prep.thin
    at.session_state["active_model"] = str(out)
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    assert any("strokes thinned to one pixel" in c.value for c in at.caption)
    labels = {m.label for m in at.metric}
    assert {"False accepts: skilled forgeries", "False accepts: random", "False rejects"} <= labels


def _digit_upload(at, side: str, image: np.ndarray, name: str) -> None:
    at.radio(key=f"mode_{side}").set_value("Upload").run()
    at.file_uploader(key=f"upload_{side}").set_value((name, png(255 - image), "image/png")).run()


def _identified(at) -> str:
    return next(m.value for m in at.metric if m.label == "Identified as")


def test_enrol_identify_and_the_gallery_survives_a_reload(mnist_test):
    """Issue 21, item 5: enrol people from a few images, identify (1:N) and verify (1:1) a new
    image; a reload (?gallery=) finds the gallery, another session does not; export/import."""
    at = app("pages/compare.py")
    threes, sevens = (mnist_test.images[mnist_test.labels == c] for c in (3, 7))
    for name, images in (("Ada", threes[:2]), ("Bob", sevens[:2])):
        at.text_input(key="enrol_name").set_value(name).run()
        for i, image in enumerate(images):
            _digit_upload(at, "enrol", image, f"{name}{i}.png")
            at.button(key="enrol_button").click().run()
            assert not at.exception, at.exception
            assert at.success[0].value.startswith(f"{name}: {i + 1} image"), at.success
    at.button(key="enrol_button").click().run()           # the same image again: said, not added
    assert any("already" in w.value for w in at.warning)
    _digit_upload(at, "identify", threes[5], "who.png")
    assert _identified(at) == "Ada"
    assert "Match" in " ".join(m.value for m in at.markdown if "median distance" in m.value)
    at.selectbox(key="verify_identity").set_value("Bob").run()
    assert any(m.value.startswith("**No match** with Bob") for m in at.markdown)
    # The gallery's own threshold: at 0 nobody is within it, Ada included (1:N and 1:1).
    slider = next(s for s in at.slider if s.key.startswith("gallery_threshold_"))
    slider.set_value(0.0).run()
    assert _identified(at) == "unknown"
    at.selectbox(key="verify_identity").set_value("Ada").run()
    assert any(m.value.startswith("**No match** with Ada") for m in at.markdown)
    at.button(key="gallery_reset_threshold").click().run()      # back to the calibrated one
    assert _identified(at) == "Ada"
    _digit_upload(at, "identify", mnist_test.images[mnist_test.labels == 0][0], "zero.png")
    assert _identified(at) == "unknown"
    assert any("Enrolled (2)" == h.value for h in at.subheader)
    folder = at.session_state["gallery_folder"]
    assert at.query_params["gallery"] == [folder] or at.query_params["gallery"] == folder
    exported = at.get("download_button")[0].proto.label
    assert exported == "Export the gallery"

    def opened(**params) -> AppTest:
        fresh = app("pages/compare.py")
        for k, v in params.items():      # switch_page clears the URL's parameters: set after it
            fresh.query_params[k] = v
        fresh.run()
        assert not fresh.exception, fresh.exception
        return fresh
    again = opened(gallery=folder)                       # a reload of the page
    assert any("Enrolled (2)" == h.value for h in again.subheader)
    assert any("Enrolled (0)" == h.value for h in opened().subheader)     # another session
    assert any("Enrolled (0)" == h.value for h in opened(gallery="0" * 32).subheader)
    # Export from the first session, import into a new one.
    from siamese_core import SiameseModel, runs
    from siamese_core.gallery import Gallery, model_id
    m = SiameseModel.load()
    data = Gallery(runs.gallery_file(runs.default_root(), folder, model_id(m)), m).export_bytes()
    other = opened()
    other.file_uploader(key="import_gallery").set_value(("mine.sqlite", data,
                                                         "application/x-sqlite3")).run()
    assert not other.exception, other.exception
    assert other.success[0].value.replace("\\", "") == \
        "Imported 2 new identities and 4 images from mine.sqlite."
    assert any("Enrolled (2)" == h.value for h in other.subheader)
    assert other.session_state["gallery_folder"] != folder
    other.file_uploader(key="import_gallery").set_value(("bad.sqlite", b"not a database",
                                                         "application/x-sqlite3")).run()
    assert any("not a SQLite database" in w.value for w in other.warning)
    # Remove.
    again.button(key=next(b.key for b in again.button if b.key.startswith("remove_"))).click()
    again.run()
    assert any("Enrolled (1)" == h.value for h in again.subheader)


def test_enrolling_is_refused_when_the_servers_space_is_full(mnist_test, monkeypatch):
    """A gallery counts against the space of runs and uploads (runs.store_limit)."""
    at = app("pages/compare.py")
    monkeypatch.setenv("SIAMESE_RUNS_MAX_MB", "0.01")
    at.text_input(key="enrol_name").set_value("Ada").run()
    _digit_upload(at, "enrol", mnist_test.images[0], "ada.png")
    at.button(key="enrol_button").click().run()
    assert not at.exception, at.exception
    assert any("space for trained models and uploads is full" in w.value for w in at.warning)
    assert not at.success and "gallery_folder" not in at.session_state


def test_compare_says_when_the_model_embeds_with_test_time_augmentation(tmp_path):
    """Issue 23: a TTA model's verdicts are of averaged embeddings; Compare says so (and says
    nothing of it for a plain model)."""
    import shutil
    for f in ("default.json", "default.onnx", "default.weights.h5"):
        shutil.copy(Path("weights") / f, tmp_path / f)
    meta = json.loads((tmp_path / "default.json").read_text())
    (tmp_path / "default.json").write_text(json.dumps({**meta, "test_time": "tta"}))
    at = _session("pages/compare.py", active_model=str(tmp_path / "default"))
    assert "test-time augmentation" in at.caption[0].value
    at = _session("pages/compare.py")
    assert "test-time augmentation" not in at.caption[0].value
