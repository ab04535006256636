"""Compare (seed part C): two images, or a questioned image against a class, judged by distance."""
import numpy as np
import streamlit as st

from siamese_core import ImageError, SiameseError
from siamese_core.data import is_user_spec
from siamese_core.verdict import judge_pairs, one_shot_guess
from siamese_studio.ui.charts import SCALE_HEIGHT, distance_scale
from siamese_studio.ui.gallery_view import gallery_panel
from siamese_studio.ui.common import (
    ACTIVE_MODEL,
    dataset_label,
    model,
    model_dataset,
    model_embeddings,
    say,
    sidebar,
)
from siamese_studio.ui.inputs import Refusal, image_input, input_problem
from siamese_studio.ui.text import code, plain
from siamese_studio.ui.verify import verify_panel

sidebar(__file__)
st.title("Compare")
try:
    m = model()
except SiameseError as e:
    st.error(say(e))
    st.stop()
spec = m.meta.get("dataset", "mnist-5k")
mine = bool(st.session_state.get(ACTIVE_MODEL))
what = ("photo" if m.prep.kind == "photo" else "image") if is_user_spec(spec) else "digit"
# Inputs that suit the model first: photos are taken or uploaded, ink is drawn.
MODES = (("Upload", "Camera", "Pick", "Draw") if m.prep.kind == "photo"
         else ("Draw", "Upload", "Camera", "Pick"))
st.caption(f"Model: **{'your trained model' if mine else 'the shipped model'}** ({code(m.name)}, "
           f"{m.meta.get('loss', '?')} loss), trained on **{plain(dataset_label(spec))}**: pictures, "
           f"references and neighbours come from that dataset, and every input is prepared as "
           f"its training images were ({m.prep.kind}, {m.prep.size}×{m.prep.width} px, {m.prep.fit} fit"
           f"{', cropped to the face' if m.prep.face else ''}"
           f"{', every ink pixel at one level' if m.prep.binary else ''}"
           f"{', strokes thinned to one pixel' if m.prep.thin else ''})"
           + (f"; its embedding holds the input's own pixels beside the network's "
              f"(pixel weight {m.pixels:.2f})" if m.pixels else "")
           + ("; each is embedded as the mean over 9 small warps of it (test-time augmentation)."
              if m.test_time == "tta" else "."))
try:
    test_ds = model_dataset(m, "test")
except SiameseError as e:
    test_ds = None
    st.warning(f"The model's dataset is not available ({say(e)}); two-image comparison "
               "still works.")


def given(side: str, pick_from=None):
    """An input column's (network input, image as given), or None after showing why not; Pick
    offers the images of ``pick_from`` (by default the test split)."""
    raw, msg = image_input(side, test_ds if pick_from is None else pick_from, what, MODES,
                           aspect=m.prep.width / m.prep.size)
    if raw is None:           # a prompt (what to give) or why what was given is refused
        if isinstance(msg, Refusal):
            st.warning(msg, icon=":material/warning:")
        else:
            st.info(msg)
        return None
    odd = m.kind_warning(raw)
    if odd:
        st.warning(odd, icon=":material/help:")
    try:
        # A picked test image is the model's input already (photo preprocessing, unlike ink's,
        # would not leave it as it is a second time).
        x = raw if st.session_state.get(f"mode_{side}") == "Pick" else m.prepare(raw)
    except ImageError as e:   # a problem with what was given: said apart from the prompts
        st.warning(input_problem(e), icon=":material/warning:")
        return None
    st.image(x, width=112 * m.prep.width // m.prep.size,
             caption=f"what the network sees ({m.prep.size}×{m.prep.width})")
    return x, raw


def prepared(side: str, pick_from=None):
    """``given``'s network input alone."""
    out = given(side, pick_from)
    return None if out is None else out[0]


pair_tab, verify_tab, gallery_tab = st.tabs(["Two images", "Verify against a class",
                                             "Enrol & identify"])
with pair_tab:
    cols = st.columns(2)
    xs = []
    for side, col in zip(("left", "right"), cols):
        with col:
            st.subheader("Image A" if side == "left" else "Image B")
            xs.append(prepared(side))
    if all(x is not None for x in xs):
        emb = m.embed(np.stack(xs))
        v = m.verdict(float(np.linalg.norm(emb[0] - emb[1])))
        c1, c2, c3 = st.columns([1, 1, 2])
        c1.metric("Verdict", "same" if v.same else "different")
        c2.metric("Confidence", f"{v.confidence:.0%}")
        c3.metric("Distance", f"{v.distance:.3f}", help="Euclidean distance between embeddings")
        st.caption(f"Threshold {v.threshold:.3f}: pairs closer than this are called *same*.")
        st.altair_chart(distance_scale(v.distance, v.threshold), width="stretch",
                        height=SCALE_HEIGHT)
        st.markdown("**Nearest training images** (a one-shot guess of each input)")
        try:
            gds, gemb = model_embeddings("train")
            for name, e in zip(("A", "B"), emb):
                guess, idx, dist = one_shot_guess(e, gemb, gds.labels)
                cs = st.columns(6)
                cs[0].markdown(f"**{name}** looks like **{plain(gds.class_names[guess])}**")
                for c, i, d in zip(cs[1:], idx, dist):
                    c.image(gds.images[i], width=70,
                            caption=f"{plain(gds.class_names[gds.labels[i]])} · {d:.2f}")
        except SiameseError as e:
            st.warning(say(e))
    else:
        st.info("The verdict appears when both images are ready.")

with verify_tab:
    verify_panel(m, prepared, what)

with gallery_tab:
    gallery_panel(m, given)

st.divider()
st.subheader("Random test pairs, judged by the model")
if test_ds is not None:
    vds, e = model_embeddings("test")
    resample = st.button("Resample", icon=":material/shuffle:", key="resample_compare")
    if "compare_montage_seed" not in st.session_state or resample:
        st.session_state.compare_montage_seed = int(np.random.default_rng().integers(0, 1 << 30))
    montage, n_right = judge_pairs(vds, e, m.threshold, st.session_state.compare_montage_seed)
    st.image(montage, width="stretch",
             caption=f"Test pairs (never used to train or choose the model). Caption: verdict and "
                     f"distance (green same, red different; X = wrong). {n_right}/49 correct.")
