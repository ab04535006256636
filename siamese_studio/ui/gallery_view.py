"""Compare's gallery tab: enrol people (or anything) from a few images under a name, then
verify a questioned image against one of them (1:1) or identify it among all (1:N), with no
retraining. The gallery is a SQLite file in a private folder of this session (its id is in the
URL, so a reload finds it again), one per model."""
from __future__ import annotations

import hashlib

import streamlit as st

from siamese_core import SiameseError, runs
from siamese_core import weights as W
from siamese_core.gallery import (
    MAX_IDENTITIES,
    MAX_NAME,
    MAX_SAMPLES,
    Gallery,
    decode_thumbnail,
    describe,
    model_id,
    thumbnail,
)
from siamese_studio.ui.common import ACTIVE_MODEL, GALLERY, protected, say
from siamese_studio.ui.runs_view import remember
from siamese_studio.ui.text import plain
from siamese_studio.ui.uploads import MAX_GALLERY_MB, file_uploader
from siamese_studio.ui.verify import references_note, threshold_control

IMPORTED = "gallery_imported"     # session key: digests of the gallery files already imported
SHOWN = 8                         # thumbnails shown per identity


def _open(m, create: bool) -> Gallery | None:
    """This session's gallery for model ``m``; None when it has none and ``create`` is off."""
    folder = st.session_state.get(GALLERY) or st.query_params.get("gallery")
    path = runs.gallery_file(runs.default_root(), folder, model_id(m), create=create)
    if path is None:                   # none yet, or an expired or unknown id in the URL
        st.session_state.pop(GALLERY, None)
        st.query_params.pop("gallery", None)
        return None
    st.session_state[GALLERY] = path.parent.name
    st.query_params["gallery"] = path.parent.name     # a reload finds the gallery again
    return Gallery(path, m) if create or path.exists() else None


def gallery_panel(m, prepared) -> None:
    """Enrol on the left, the questioned image on the right, the enrolled identities below.
    ``prepared(side)`` is Compare's image input: (network input, image as given) or None."""
    try:
        g = _open(m, create=False)
    except SiameseError as e:
        st.error(say(e))
        return
    if g is None:
        _other_models(m)
    st.caption(f"Enrol people (or characters, signatures, anything) the model has **never "
               f"seen**, from a few images each, then ask who a new image shows: no retraining, "
               f"only distances between embeddings. Up to {MAX_SAMPLES} images per identity and "
               f"{MAX_IDENTITIES} identities; the gallery belongs to this model and this browser "
               f"session and goes a day after its last change (export it to keep it).")
    left, right = st.columns(2)
    with left:
        st.subheader("Enrol")
        name = st.text_input("Name", key="enrol_name", max_chars=MAX_NAME,
                             placeholder="e.g. Ada", help="A new name, or one enrolled before: "
                                                          "the image joins it.")
        given = prepared("enrol")
        if st.button("Enrol this image", icon=":material/person_add:", key="enrol_button",
                     disabled=given is None or not name.strip(), type="primary"):
            x, raw = given
            try:
                # A gallery counts against the server's space like runs and uploads.
                runs.make_room(runs.default_root(), 1 << 16, keep=protected())
                g = g or _open(m, create=True)
                n = g.enrol(name, x[None], [thumbnail(raw)])
                st.success(f"{plain(name.strip())}: {n} image{'s' * (n != 1)} enrolled. Give "
                           f"another image of them for a steadier verdict.")
            except SiameseError as e:
                st.warning(say(e), icon=":material/warning:")
    with right:
        st.subheader("Who is this?")
        asked = prepared("identify")
        if asked is not None:
            _answer(g, asked[0])
    st.divider()
    _enrolled(m, g)


def _other_models(m) -> None:
    """The session's galleries of other models (the page lost its model: a reload), each with
    a button that brings its model back."""
    folder = st.session_state.get(GALLERY)
    if folder is None:
        return
    for path in sorted((runs.default_root() / folder).glob("gallery-*.sqlite")):
        info = describe(path)
        if not info or not info.get("identities") or info.get("model") == model_id(m):
            continue
        prefix = info.get("model_path", "")
        try:
            there = W.read_meta(prefix, verify=())["sha256"]["onnx"] == info["model"]
        except (SiameseError, OSError):
            there = False
        n = info["identities"]
        text = (f"This session enrolled {n} identit{'ies' if n != 1 else 'y'} with another "
                f"model, {plain(info.get('model_name', '?'))}.")
        if not there:
            st.info(text + " That model is no longer on the server.", icon=":material/history:")
            continue
        c = st.columns([3, 1])
        c[0].info(text, icon=":material/group:")
        if c[1].button(f"Use {info.get('model_name', 'that model')}", key=f"use_{path.stem}",
                       icon=":material/swap_horiz:"):
            st.session_state[ACTIVE_MODEL] = prefix
            remember(prefix)
            st.rerun()


def _answer(g: Gallery | None, x) -> None:
    """1:N identification and a 1:1 check of the questioned image."""
    names = g.names() if g is not None else []
    if not names:
        st.info("Enrol someone first (on the left).")
        return
    with st.expander("Threshold for this gallery"):
        st.caption("A stranger gets one chance per enrolled identity to come within the "
                   "threshold, so more strangers pass than the false-accept rate of pairs "
                   "below says: lower it for a strict gallery (BENCHMARKS.md §12).")
        note = references_note(g.model)
        if note:
            st.caption(note)
        t = threshold_control(g.model, "gallery")
    try:
        r = g.identify(x, t)
    except SiameseError as e:
        st.warning(say(e))
        return
    best_name, best = r.ranking[0]
    c = st.columns(2)
    c[0].metric("Identified as", plain(r.name) if r.name is not None else "unknown")
    rule = g.model.references
    c[1].metric("Nearest", f"{best.distance:.3f}",
                help=f"{rule.describe()}: of the nearest identity's images")
    if r.name is None:
        st.caption(f"Nobody enrolled is within the threshold {best.threshold:.3f}: the nearest, "
                   f"{plain(best_name)}, is at {best.distance:.3f}. A person never enrolled "
                   f"should come out unknown.")
    else:
        st.caption(f"Taken for **{plain(r.name)}** (confidence {best.confidence:.0%}): the "
                   f"{rule.label} to their images is at or under the threshold "
                   f"{best.threshold:.3f}.")
    st.dataframe([{"identity": n, rule.label: round(v.distance, 3),
                   "verdict": "match" if v.same else "no match"} for n, v in r.ranking[:5]],
                 hide_index=True)
    who = st.selectbox("Verify against one identity (1:1)", names, key="verify_identity",
                       index=names.index(best_name))
    v = g.verify(who, x, t)
    st.markdown(f"**{'Match' if v.same else 'No match'}** with {plain(who)}: {rule.label} "
                f"{v.distance:.3f} ({'at or under' if v.same else 'over'} {v.threshold:.3f}), "
                f"confidence {v.confidence:.0%}.")


def _enrolled(m, g: Gallery | None) -> None:
    """The enrolled identities with their thumbnails, Remove, Export and Import."""
    listing = st.container()           # drawn after an import below has been taken in
    c = st.columns(2)
    with c[1]:
        f, refused = file_uploader("Import a gallery (.sqlite, exported here)", ["sqlite"],
                                   key="import_gallery", max_mb=MAX_GALLERY_MB)
    if refused:
        st.warning(refused)
    if f is not None:
        g = _import(m, g, f) or g
    people = g.identities() if g is not None else []
    with listing:
        st.subheader(f"Enrolled ({len(people)})")
        for p in people:
            row = st.columns([2, 5, 2])
            row[0].markdown(f"**{plain(p.name)}**  \n{p.samples} image{'s' * (p.samples != 1)}")
            row[1].image([decode_thumbnail(t) for t in p.thumbnails[:SHOWN]], width=48)
            if row[2].button("Remove", icon=":material/delete:",
                             key=f"remove_{hashlib.sha1(p.name.encode()).hexdigest()[:12]}"):
                g.remove(p.name)
                st.rerun()
    if people:
        c[0].download_button("Export the gallery", g.export_bytes(),
                             file_name=f"gallery-{m.name}.sqlite", mime="application/x-sqlite3",
                             icon=":material/download:", key="export_gallery",
                             help="One SQLite file: names, embeddings, thumbnails and the model "
                                  "they belong to. Import it later with the same model.")


def _import(m, g: Gallery | None, f) -> Gallery | None:
    """Take in an uploaded gallery once (the uploader keeps the file across reruns)."""
    data = f.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    done = st.session_state.setdefault(IMPORTED, set())
    if digest in done:
        return None
    try:
        runs.make_room(runs.default_root(), 2 * len(data), keep=protected())
        g = g or _open(m, create=True)
        n_people, n_images = g.merge_bytes(data, name=f.name)
    except SiameseError as e:
        st.warning(say(e), icon=":material/warning:")
        return None
    done.add(digest)
    st.success(f"Imported {n_people} new identit{'ies' if n_people != 1 else 'y'} and "
               f"{n_images} image{'s' * (n_images != 1)} from {plain(f.name)}.")
    return g
