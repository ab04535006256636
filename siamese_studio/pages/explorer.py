"""Pair explorer (seed part A): random positive/negative pairs as a 7x7 montage."""
import hashlib

import numpy as np
import pandas as pd
import streamlit as st

from siamese_core import SAME, SiameseError
from siamese_core.pairs import pair_montage, pairs_among
from siamese_studio.ui.common import (
    ACTIVE_DATASET,
    active_dataset,
    dataset,
    dataset_label,
    dataset_labeller,
    dataset_options,
    montage_labels,
    png_bytes,
    say,
    sidebar,
)
from siamese_studio.ui.text import plain

sidebar(__file__)
st.title("Pair explorer")
st.caption("Part A: a siamese network learns from *positive* pairs (same class) and *negative* "
           "pairs (different classes). Here are 49 of them, sampled at random.")

c1, c2, c3 = st.columns([2, 1, 3])
options = dataset_options()
spec = c1.selectbox("Dataset", options, index=options.index(active_dataset())
                    if active_dataset() in options else 0, key="explorer_dataset",
                    format_func=dataset_labeller(),
                    help="mnist-5k works offline; fashion-mnist uses Debian's files if installed; "
                         "mnist downloads once; your own images come from **Your data**.",
                    # A callback runs before the script, so the sidebar (drawn above) already
                    # shows the new choice instead of lagging one rerun behind.
                    on_change=lambda: st.session_state.update(
                        {ACTIVE_DATASET: st.session_state["explorer_dataset"]}))
st.session_state[ACTIVE_DATASET] = spec
if "explorer_seed" not in st.session_state:
    st.session_state.explorer_seed = 0
if c2.button("Resample", icon=":material/shuffle:", key="resample", width="stretch"):
    st.session_state.explorer_seed = int(np.random.default_rng().integers(0, 1_000_000))
seed = c2.number_input("Seed", 0, 1_000_000, key="explorer_seed")

try:
    ds = dataset(spec, "train")
except SiameseError as e:
    st.error(say(e))
    st.stop()

# The pairs come from the training split: with whole classes held out, only its own classes
# can be chosen (the others have no image here).
present = [ds.class_names[c] for c in np.unique(ds.labels)]
chosen = c3.multiselect("Only these classes (optional, at least 2)", present,
                        key="explorer_classes",
                        help=None if len(present) == len(ds.class_names) else
                        f"The training split's {len(present)} classes; the other "
                        f"{len(ds.class_names) - len(present)} are held out for validation and test.")
if chosen and len(chosen) < 2:
    st.warning("Pick at least two classes: negative pairs need two.")
    st.stop()
try:
    pairs = pairs_among(ds.labels, [ds.class_names.index(c) for c in chosen], int(seed), 49)
except SiameseError as e:
    st.error(say(e))
    st.stop()
montage = pair_montage(ds.images, pairs)
png = png_bytes(montage)
st.session_state.explorer_montage_sha = hashlib.sha256(png).hexdigest()[:16]

caption, fname = montage_labels(dataset_label(spec), int(seed), chosen)
st.image(montage, caption=plain(caption), width=min(900, montage.shape[1]))
st.download_button("Download montage (PNG)", png, file_name=fname,
                   mime="image/png", key="download_montage", icon=":material/download:")

left, right = st.columns([3, 2])
with left:
    n_pos = int((pairs.label == SAME).sum())
    m1, m2 = st.columns(2)
    m1.metric("Positive pairs", n_pos)
    m2.metric("Negative pairs", len(pairs.label) - n_pos)
    names = np.array(ds.class_names)
    counts = pd.DataFrame({
        "class": list(names[ds.labels[pairs.a]]) + list(names[ds.labels[pairs.b]]),
        "kind": np.where(np.tile(pairs.label, 2) == SAME, "pos", "neg"),
    }).value_counts().unstack(fill_value=0)
    st.markdown("**Images per class in these pairs**")
    st.bar_chart(counts, color=["#d62728", "#2ca02c"][:counts.shape[1]], height=220)
with right:
    st.markdown("**Look at one pair**")
    i = st.number_input("Pair number (1–49, row by row)", 1, len(pairs.a), 1, key="pair_index") - 1
    a, b = pairs.a[i], pairs.b[i]
    pa, pb = st.columns(2)
    pa.image(ds.images[a], caption=f"{plain(names[ds.labels[a]])} (#{a})", width=140)
    pb.image(ds.images[b], caption=f"{plain(names[ds.labels[b]])} (#{b})", width=140)
    verdict = "positive: same class" if pairs.label[i] == SAME else "negative: different classes"
    (st.success if pairs.label[i] == SAME else st.error)(verdict)
