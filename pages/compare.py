"""Compare (seed part C): two images in, a distance-based same/different verdict out."""
import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from siamese_core import ImageError, SiameseError, make_pairs, preprocess
from siamese_core.pairs import pair_montage
from siamese_core.verdict import nearest
from ui.common import ACTIVE_MODEL, DATASETS, active_dataset, dataset, model, model_gallery, sidebar
from ui.uploads import file_uploader

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
sidebar(__file__)
st.title("Compare two images")
st.caption("Part C: draw, upload or pick two digits. Both go through the same embedding network; "
           "their distance, against a threshold calibrated on validation pairs, gives the verdict.")

try:
    m = model()
except SiameseError as e:
    st.error(str(e))
    st.stop()
spec = active_dataset() if active_dataset() in DATASETS else "mnist-5k"
mine = bool(st.session_state.get(ACTIVE_MODEL))
st.caption(f"Model: **{'your trained model' if mine else 'the shipped model'}** "
           f"(`{m.name}`, {m.meta.get('loss', '?')} loss, threshold {m.threshold:.3f}).")


def canvas(key: str):
    try:
        from streamlit_drawable_canvas import st_canvas
    except Exception:  # the component is optional: upload and pick still work
        st.info("Drawing needs the package streamlit-drawable-canvas; upload or pick instead.")
        return None
    res = st_canvas(stroke_width=22, stroke_color="#FFFFFF", background_color="#000000",
                    height=280, width=280, drawing_mode="freedraw", key=key,
                    update_streamlit=True, return_image_data=True)
    return None if res is None else res.image_data


def image_input(side: str):
    """One input column: returns (raw image or None, a message to show instead)."""
    mode = st.radio("Input", ["Draw", "Upload", "Pick"], horizontal=True, key=f"mode_{side}")
    if mode == "Draw":
        img = canvas(f"canvas_{side}")
        if img is None or np.asarray(img)[..., :3].max() == 0:
            return None, "Draw a digit (white on black). The toolbar's reset button clears it."
        return np.asarray(img).astype(np.uint8), None
    if mode == "Upload":
        f, refused = file_uploader("PNG or JPEG", ["png", "jpg", "jpeg"], key=f"upload_{side}")
        if f is None:
            return None, refused or "Upload an image of a single digit."
        data = f.getvalue()
        if len(data) > MAX_UPLOAD_BYTES:
            return None, f"That file is {len(data) / 1e6:.1f} MB; the limit is 5 MB."
        return data, None
    try:
        ds = dataset(spec, "test")
    except SiameseError as e:
        return None, str(e)
    key = f"pick_{side}"
    another = st.button("Another", icon=":material/casino:", key=f"repick_{side}")  # always drawn
    if key not in st.session_state or another:
        st.session_state[key] = int(np.random.default_rng().integers(0, len(ds)))
    i = st.session_state[key] % len(ds)
    st.image(ds.images[i], width=140, caption=f"{ds.class_names[ds.labels[i]]} (#{i} of {spec}, "
                                               f"validation split)")
    return ds.images[i], None


cols = st.columns(2)
prepared = []
for side, col in zip(("left", "right"), cols):
    with col:
        st.subheader("Image A" if side == "left" else "Image B")
        raw, msg = image_input(side)
        x = None
        if raw is not None:
            try:
                x = preprocess(raw)
            except ImageError as e:
                msg = str(e)
        if x is not None:
            st.image(x, width=112, caption="what the network sees (28×28)")
        else:
            st.info(msg)
        prepared.append(x)

st.divider()
if all(x is not None for x in prepared):
    emb = m.embed(np.stack(prepared))
    v = m.verdict(float(np.linalg.norm(emb[0] - emb[1])))
    c1, c2, c3 = st.columns([1, 1, 2])
    c1.metric("Verdict", "same" if v.same else "different")
    c2.metric("Confidence", f"{v.confidence:.0%}")
    c3.metric("Distance", f"{v.distance:.3f}", help="Euclidean distance between the embeddings")
    st.caption(f"Threshold {v.threshold:.3f}: pairs closer than this are called *same*.")
    top = max(2.0, v.distance)
    x = alt.Scale(domain=[0, top])
    zones = alt.Chart(pd.DataFrame({"from": [0, v.threshold], "to": [v.threshold, top],
                                    "zone": ["same", "different"]})).mark_bar(height=26).encode(
        x=alt.X("from:Q", title="distance", scale=x), x2="to",
        color=alt.Color("zone:N", legend=None, scale=alt.Scale(domain=["same", "different"],
                                                               range=["#a8e6b5", "#f5b1b1"])))
    names = alt.Chart(pd.DataFrame({"mid": [v.threshold / 2, (v.threshold + top) / 2],
                                    "zone": ["same", "different"]})).mark_text(
        color="#333").encode(x=alt.X("mid:Q", scale=x), text="zone")
    here = pd.DataFrame({"d": [v.distance], "label": ["this pair"]})
    marker = alt.Chart(here).mark_tick(thickness=4, size=40, color="black").encode(
        x=alt.X("d:Q", scale=x))
    label = alt.Chart(here).mark_text(dy=-24, fontWeight="bold").encode(
        x=alt.X("d:Q", scale=x), text="label")
    scale = alt.layer(zones, names, marker, label).properties(height=80)
    st.altair_chart(scale, width="stretch")
    st.markdown("**Nearest neighbours in the training images** (a one-shot guess of each input)")
    try:
        gds, gemb = model_gallery(spec)
        for name, e in zip(("A", "B"), emb):
            idx, dist = nearest(e, gemb, 5)
            cs = st.columns(6)
            guess = gds.class_names[np.bincount(gds.labels[idx]).argmax()]
            cs[0].markdown(f"**{name}** looks like **{guess}**")
            for c, i, d in zip(cs[1:], idx, dist):
                c.image(gds.images[i], width=70, caption=f"{gds.class_names[gds.labels[i]]} · {d:.2f}")
    except SiameseError as e:
        st.warning(str(e))
else:
    st.info("The verdict appears when both images are ready.")

st.divider()
st.subheader("Random validation pairs, judged by the model")
try:
    vds, e = model_gallery(spec, "test")
    resample = st.button("Resample", icon=":material/shuffle:", key="resample_compare")
    if "compare_montage_seed" not in st.session_state or resample:
        st.session_state.compare_montage_seed = int(np.random.default_rng().integers(0, 1 << 30))
    pairs = make_pairs(vds.labels, st.session_state.compare_montage_seed, n_pairs=49)
    d = np.linalg.norm(e[pairs.a] - e[pairs.b], axis=1)
    same = d <= m.threshold
    correct = same == (pairs.label == 1)
    captions = [f"{'same' if s else 'diff'} {x:.2f}{'' if ok else ' ✗'}".replace(" ✗", " X")
                for s, x, ok in zip(same, d, correct)]
    st.image(pair_montage(vds.images, pairs._replace(label=same.astype(int)), captions=captions),
             caption=f"Caption: verdict and distance (green same, red different; X = wrong). "
                     f"{correct.sum()}/49 correct.", width="stretch")
except SiameseError as e:
    st.warning(str(e))
