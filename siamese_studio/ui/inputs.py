"""Where a questioned image comes from: a drawing, an upload, a webcam photo or a dataset image."""
from __future__ import annotations

import numpy as np
import streamlit as st

from siamese_studio.ui.text import plain
from siamese_studio.ui.uploads import IMAGE_SUFFIXES, MAX_CAMERA_MB, MAX_IMAGE_MB, file_uploader

IMAGE_TYPES = [s.lstrip(".") for s in IMAGE_SUFFIXES]


def _empty(gen: int = 0) -> dict:
    """No drawing yet: ``json`` (the canvas's own description, to redraw it), ``image`` (its
    pixels), ``restore`` (what a remounted canvas starts from) and ``gen`` (bumped by Clear: a
    new canvas)."""
    return {"json": None, "image": None, "restore": None, "gen": gen}


def _drawing(side: str) -> dict:
    """A side's drawing, kept across input modes (``_empty`` names its parts)."""
    return st.session_state.setdefault(f"drawing_{side}", _empty())


def _clear(side: str) -> None:
    st.session_state[f"drawing_{side}"] = _empty(_drawing(side)["gen"] + 1)


CANVAS_SIDE = 280
CANVAS_STROKE = 22


def canvas_shape(aspect: float = 1.0) -> tuple[int, int, int]:
    """(height, width, stroke width) of the drawing canvas for a model whose inputs are
    ``aspect`` times as wide as high: 280 x 280 for square inputs; a wide model's (a
    signature's) as wide as one column holds, 400 px, its strokes as thick relative to the
    height."""
    if aspect <= 1:
        return CANVAS_SIDE, CANVAS_SIDE, CANVAS_STROKE
    width = 400
    height = max(100, round(width / min(float(aspect), 4.0)))
    return height, width, max(6, round(CANVAS_STROKE * height / CANVAS_SIDE))


def canvas(side: str, aspect: float = 1.0):
    """A drawing (white on black, ``canvas_shape``) that survives a switch to another input
    mode and back, with a Clear button; None without the optional canvas package or before
    any drawing."""
    try:
        from streamlit_drawable_canvas import st_canvas
    except Exception:  # the component is optional: upload and pick still work
        st.info("Drawing needs the package streamlit-drawable-canvas; upload or pick instead.")
        return None
    d = _drawing(side)
    # The canvas's toolbar (undo, redo, reset) slides 2.65rem above it on hover: room for it
    # so that it does not cover the input radio.
    st.space(30)
    height, width, stroke = canvas_shape(aspect)
    res = st_canvas(stroke_width=stroke, stroke_color="#FFFFFF", background_color="#000000",
                    height=height, width=width, drawing_mode="freedraw",
                    key=f"canvas_{side}_{d['gen']}",
                    initial_drawing=d["restore"], update_streamlit=True, return_image_data=True)
    st.button("Clear", icon=":material/delete:", key=f"clear_{side}", on_click=_clear,
              args=(side,))
    # A remounted canvas draws ``restore`` but sends nothing until the next stroke: until
    # then its pixels are the ones kept.
    if res is not None and res.image_data is not None:
        d["json"], d["image"] = res.json_data, res.image_data
    return d["image"]


SPLIT_NAMES = {"val": "validation", "train": "training", "test": "test"}


def image_input(side: str, pick_from=None, what: str = "digit",
                modes: tuple[str, ...] = ("Draw", "Upload", "Pick"), aspect: float = 1.0):
    """One input: returns (raw image or None, a message to show instead). ``pick_from``: a
    ``Dataset`` split to pick from; "Camera" takes a webcam photo; ``aspect``: the model's
    input width over height (the canvas's shape)."""
    mode = st.radio("Input", modes, horizontal=True, key=f"mode_{side}")
    if mode == "Draw":
        img = canvas(side, aspect)
        if img is None or np.asarray(img)[..., :3].max() == 0:
            article = "an" if what[0] in "aeiou" else "a"
            return None, f"Draw {article} {what} (white on black)."
        return np.asarray(img).astype(np.uint8), None
    d = _drawing(side)
    d["restore"] = d["json"]      # what the canvas shows when the user comes back to Draw
    if mode in ("Upload", "Camera"):
        if mode == "Upload":
            f, refused = file_uploader(f"PNG or JPEG, up to {MAX_IMAGE_MB} MB", IMAGE_TYPES,
                                       key=f"upload_{side}")
        else:
            f, refused = st.camera_input("Take a photo" if what == "photo"
                                         else f"A photo of a {what}", key=f"camera_{side}"), None
        if f is None:
            return None, Refusal(refused) if refused else f"Upload a picture of a single {what}."
        return sized(f.getvalue(), MAX_IMAGE_MB if mode == "Upload" else MAX_CAMERA_MB)
    if pick_from is None:
        return None, "The model's dataset is not available to pick from."
    ds, key = pick_from, f"pick_{side}"
    another = st.button("Another", icon=":material/casino:", key=f"repick_{side}")  # always drawn
    if key not in st.session_state or another:
        st.session_state[key] = int(np.random.default_rng().integers(0, len(ds)))
    i = st.session_state[key] % len(ds)
    st.image(ds.images[i], width=140,
             caption=f"{plain(ds.class_names[ds.labels[i]])} (#{i} of the "
                     f"{SPLIT_NAMES.get(ds.split, ds.split)} split)")
    return ds.images[i], None


class Refusal(str):
    """A message of ``image_input`` that refuses what was given (a prompt is a plain str)."""


def sized(data: bytes, max_mb: int) -> tuple[bytes | None, str | None]:
    """``image_input``'s answer for an uploaded or photographed file: the bytes, or why not."""
    if len(data) > max_mb * 1024 * 1024:
        return None, Refusal(f"That {'photo' if max_mb == MAX_CAMERA_MB else 'file'} is "
                             f"{len(data) / 2**20:.1f} MB; the limit is {max_mb} MB.")
    return data, None


def input_problem(error: Exception) -> str:
    """An ``ImageError`` as the app words it: the uploaders take PNG and JPEG only, so the
    library's list of every format it can decode would mislead here."""
    text = plain(error)
    if "not a supported image" in text:
        return text.split("not a supported image")[0] + "not a PNG or JPEG image."
    return text
