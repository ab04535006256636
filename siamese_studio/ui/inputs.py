"""Where a questioned image comes from: a drawing, an upload, a webcam photo or a dataset image."""
from __future__ import annotations

import numpy as np
import streamlit as st

from siamese_studio.ui.uploads import IMAGE_SUFFIXES, MAX_IMAGE_MB, file_uploader

IMAGE_TYPES = [s.lstrip(".") for s in IMAGE_SUFFIXES]


def canvas(key: str):
    """A 280x280 drawing (white on black), or None without the optional canvas package."""
    try:
        from streamlit_drawable_canvas import st_canvas
    except Exception:  # the component is optional: upload and pick still work
        st.info("Drawing needs the package streamlit-drawable-canvas; upload or pick instead.")
        return None
    res = st_canvas(stroke_width=22, stroke_color="#FFFFFF", background_color="#000000",
                    height=280, width=280, drawing_mode="freedraw", key=key,
                    update_streamlit=True, return_image_data=True)
    return None if res is None else res.image_data


def image_input(side: str, pick_from=None, what: str = "digit",
                modes: tuple[str, ...] = ("Draw", "Upload", "Pick")):
    """One input: returns (raw image or None, a message to show instead). ``pick_from``: a
    ``Dataset`` to pick from (its test split); "Camera" takes a webcam photo."""
    mode = st.radio("Input", modes, horizontal=True, key=f"mode_{side}")
    if mode == "Draw":
        img = canvas(f"canvas_{side}")
        if img is None or np.asarray(img)[..., :3].max() == 0:
            article = "an" if what[0] in "aeiou" else "a"
            return None, (f"Draw {article} {what} (white on black). To start again, use the bin "
                          f"icon under the canvas.")
        return np.asarray(img).astype(np.uint8), None
    if mode in ("Upload", "Camera"):
        if mode == "Upload":
            f, refused = file_uploader(f"PNG or JPEG, up to {MAX_IMAGE_MB} MB", IMAGE_TYPES,
                                       key=f"upload_{side}")
        else:
            f, refused = st.camera_input(f"A photo of a {what}", key=f"camera_{side}"), None
        if f is None:
            return None, refused or f"Upload a picture of a single {what}."
        data = f.getvalue()
        if len(data) > MAX_IMAGE_MB * 1024 * 1024:
            return None, f"That file is {len(data) / 1e6:.1f} MB; the limit is {MAX_IMAGE_MB} MB."
        return data, None
    if pick_from is None:
        return None, "The model's dataset is not available to pick from."
    ds, key = pick_from, f"pick_{side}"
    another = st.button("Another", icon=":material/casino:", key=f"repick_{side}")  # always drawn
    if key not in st.session_state or another:
        st.session_state[key] = int(np.random.default_rng().integers(0, len(ds)))
    i = st.session_state[key] % len(ds)
    st.image(ds.images[i], width=140,
             caption=f"{ds.class_names[ds.labels[i]]} (#{i} of the test split)")
    return ds.images[i], None


def input_problem(error: Exception) -> str:
    """An ``ImageError`` as the app words it: the uploaders take PNG and JPEG only, so the
    library's list of every format it can decode would mislead here."""
    text = str(error)
    if "not a supported image" in text:
        return text.split("not a supported image")[0] + "not a PNG or JPEG image."
    return text
