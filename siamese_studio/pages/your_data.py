"""Your data: upload a zip of class folders; it becomes this session's dataset everywhere."""
import hashlib

import pandas as pd
import streamlit as st

from siamese_core import SiameseError, runs
from siamese_core.config import recipe
from siamese_core.data import (MAX_DATASET_PIXELS, MIN_CLASS_HOLDOUT, dataset_faces,
                               dataset_ink_aspect, dataset_kind, few_held_out_note,
                               is_user_spec, summarize)
from siamese_core.pairs import class_montage
from siamese_core.preprocess import MAX_INPUT
from siamese_studio.ui.common import (
    ACTIVE_DATASET,
    USER_DATASETS,
    active_dataset,
    dataset,
    dataset_label,
    page,
    prep_key,
    protected,
    register_upload,
    say,
    upload_name,
    sidebar,
)
from siamese_studio.ui.text import plain
from siamese_studio.ui.uploads import (MAX_ARCHIVE_MB, MAX_UPLOADS_PER_SESSION, file_uploader,
                                       reset_uploader)

UPLOADED = "_your_data_uploaded"     # session key: {sha256 of an archive: its spec}
DROPPED = "_your_data_dropped"       # session key: a message about an upload removed for room


def forget_upload(spec: str) -> None:
    """Delete an upload from the server and from this session's datasets (its name stays
    known: models trained on it still name it)."""
    st.session_state.get(USER_DATASETS, {}).pop(spec, None)
    st.session_state[UPLOADED] = {k: v for k, v in st.session_state.get(UPLOADED, {}).items()
                                  if v != spec}
    if st.session_state.get(ACTIVE_DATASET) == spec:
        st.session_state[ACTIVE_DATASET] = "mnist-5k"
    runs.remove_dataset(spec.split(":", 1)[1])


sidebar(__file__)
st.title("Your data")
st.caption(
    "Siamese networks verify things they never saw in training: a new person's signature, a "
    "new character. Upload a **zip of class folders** — one folder of PNG/JPEG images per "
    "class, at any depth (`alice/1.png`, `Greek/alpha/3.png`), at least 2 images per class, "
    f"at most {MAX_ARCHIVE_MB} MB and {MAX_DATASET_PIXELS / 1e9:g} billion pixels in all "
    f"(the network sees at most {MAX_INPUT} px a side: large photos only cost time). With "
    f"{MIN_CLASS_HOLDOUT} or more classes, validation and test hold out **whole classes**, so "
    "the numbers say how the model does on new ones. The data stays on this server, visible to "
    f"this browser session only; it keeps your newest {MAX_UPLOADS_PER_SESSION} uploads and "
    "deletes each a day after its last use.")
st.caption("To try it: Omniglot's handwritten characters, `images_background_small1.zip` in "
           "the GitHub repository brendenlake/omniglot (folder `python`).")

f, refused = file_uploader("Zip of class folders", ["zip"], key="your_data_zip",
                           max_mb=MAX_ARCHIVE_MB)
if refused:
    st.error(refused)
if f is not None:
    data = f.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    known = st.session_state.setdefault(UPLOADED, {})
    if digest not in known:
        root = runs.default_root()
        try:
            runs.make_room(root, len(data), keep=protected())
        except SiameseError as e:
            st.error(f"{plain(f.name)}: {say(e)}")
            st.stop()
        path = runs.save_dataset(root, data)
        spec = f"zip:{path}"
        register_upload(spec, f.name)     # every message about it names the file, not the copy
        bar = st.progress(0.0, text="Reading the images…")
        try:
            summarize(spec, prep=recipe(spec).prep, on_progress=lambda done, total: bar.progress(
                done / total, text=f"Reading the images… {done:,}/{total:,}"))
        except SiameseError as e:
            runs.remove_dataset(path)
            bar.empty()
            st.error(f"{plain(f.name)}: {say(e)}")
            st.stop()
        bar.empty()
        known[digest] = spec
        mine = st.session_state.setdefault(USER_DATASETS, {})
        mine[spec] = f.name
        st.session_state[ACTIVE_DATASET] = spec
        # A session keeps its newest few uploads on the server's disk, not every one it made.
        for old in list(mine)[:-MAX_UPLOADS_PER_SESSION]:
            forget_upload(old)
            st.session_state[DROPPED] = (f"Your oldest upload, {plain(upload_name(old))}, was "
                                         f"removed: a session keeps its newest "
                                         f"{MAX_UPLOADS_PER_SESSION} on the server.")
        st.rerun()            # the sidebar, drawn above, then names the new dataset too
if DROPPED in st.session_state:
    st.info(st.session_state.pop(DROPPED), icon=":material/delete:")

spec = active_dataset()
if not is_user_spec(spec):
    st.info("Upload a zip to use your own images. The active dataset is the built-in "
            f"`{spec}`.")
    for mine, name in st.session_state.get(USER_DATASETS, {}).items():
        if st.button(f"Use {plain(name)} again", key=f"use_{mine}", icon=":material/upload_file:"):
            st.session_state[ACTIVE_DATASET] = mine
            st.rerun()
    st.stop()

try:
    kind, why = dataset_kind(spec)
    prep = recipe(spec, kind=kind).prep          # as the recipe of its kind will see it
    s = summarize(spec, prep=prep)
except SiameseError as e:
    st.error(say(e))
    st.stop()

st.subheader(plain(dataset_label(spec)))
c = st.columns(5 if s.forged else 4)
c[0].metric("People" if s.forged else "Classes", f"{len(s.class_names):,}")
c[1].metric("Genuine images" if s.forged else "Images", f"{sum(s.counts):,}")
c[2].metric("Held out for test", f"{s.splits['test'][1]} {'people' if s.forged else 'classes'}"
            if s.holdout == "class"
            else f"{s.splits['test'][0]:,} images")
c[3].metric("Images per class", f"{min(s.counts)}–{max(s.counts)}")
if s.forged:
    c[4].metric("Skilled forgeries", f"{sum(s.forged):,}",
                help="Images in forged/forg folders: negatives of the person they imitate "
                     "(hard negatives in training; validation and test report how often one is "
                     "accepted). Never a class of their own.")
if s.refused:
    st.error(f"Training would refuse this dataset: {say(s.refused)}", icon=":material/block:")
for note in s.notes:
    st.warning(say(note), icon=":material/warning:")
how = ("whole classes: validation and test classes are never trained on" if s.holdout == "class"
       else "images of every class (fewer than "
            f"{MIN_CLASS_HOLDOUT} classes to hold whole ones out)")
st.markdown(f"**Kind: {kind}** — {why}. " + (
    "Photos keep every grey level, with the lighting evened out; mirrored copies train too."
    if kind == "photo" else "The ink is cut from its background, cropped and centred.")
    + " The Train page can override it.")
if kind == "photo":
    faces = dataset_faces(spec)
    if faces.with_face:
        share = f"; a face covers about {faces.face_share:.0%} of its photo"
        st.markdown(f"**Faces** — found in {faces.with_face} of {faces.sampled} sampled photos"
                    f"{share}. " + (
                        "Photos like a camera's, a face in a scene: **Crop to the face** is on "
                        "in the Train form." if faces.scenes else
                        "Framed like a face database's photos: no face crop needed (the Train "
                        "form offers it)."))
if kind == "ink" and prep.width > prep.size:       # the recipe widened the frame
    aspect = dataset_ink_aspect(spec)
    if aspect is not None:
        st.markdown(f"**Shape** — the ink is about {aspect:.1f} times as wide as high (median "
                    f"of the sampled images), so the network sees it {prep.size}×{prep.width} "
                    "px, keeping its height instead of squeezing it into a square (the Train "
                    "form's *Input shape* can change it).")
# What the network is not shown of the pen, and the Train form's toggle for each.
pen_off = [(seen, toggle) for seen, toggle, on in (
    ("every ink pixel at one level", "*Binary ink*", prep.binary),
    ("every stroke thinned to one pixel", "*Thin strokes*", prep.thin)) if on]
if pen_off:                                        # the recipe's choice with skilled forgeries
    pen = " and ".join(seen for seen, _ in pen_off)
    toggles = " and ".join(toggle for _, toggle in pen_off)
    st.markdown(f"**Pen** — with skilled forgeries the network sees {pen}: a pen's darkness "
                "and width are no evidence of who wrote, yet where forgers used other pens "
                "they tell forged from genuine (in one public set they did, BENCHMARKS.md §10), "
                f"so the network learns the shape of the writing instead (the Train form's "
                f"{toggles} can change it).")
st.markdown(f"**Splits** — held out by {how}.")
st.dataframe(pd.DataFrame([{"split": k, "images": v[0], "classes": v[1],
                            "used for": {"train": "learning", "val": "best epoch, threshold",
                                         "test": "the reported numbers"}[k]}
                           for k, v in s.splits.items()]), hide_index=True)
few = few_held_out_note(s.holdout, s.splits["val"][1], s.splits["test"][1] if "test" in s.splits
                        else None)
if few:
    st.info(few, icon=":material/groups:")
left, right = st.columns([3, 2])
with left:
    st.markdown(f"**A sample** (4 images of up to 12 classes, as the network sees them: "
                f"{prep.size}×{prep.width} px)")
    ds = dataset(spec, "train", "auto", prep_key(prep))
    st.image(class_montage(ds.images, ds.labels, ds.class_names), width=360)
with right:
    if s.forged:
        st.markdown("**Genuine and forged images per person**")
        st.bar_chart(pd.DataFrame({"person": s.class_names, "genuine": s.counts,
                                   "forged": s.forged}).set_index("person"), height=260,
                     color=["#2ca02c", "#d62728"])
    else:
        st.markdown("**Images per class**")
        st.bar_chart(pd.DataFrame({"class": s.class_names, "images": s.counts}
                                  ).set_index("class"), height=260)
c1, c2, c3 = st.columns(3)
c1.page_link(page("explorer"), label="See its pairs", icon=":material/grid_view:")
c2.page_link(page("train"), label="Train on it", icon=":material/model_training:")
if c3.button("Remove this dataset", icon=":material/delete:", key="remove_user_dataset"):
    forget_upload(spec)
    st.session_state[ACTIVE_DATASET] = "mnist-5k"
    reset_uploader("your_data_zip")
    st.rerun()
