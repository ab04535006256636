"""Compare's verification tab: a questioned image against the references of one class."""
from __future__ import annotations

import streamlit as st

from siamese_core import ImageError, SiameseError
from siamese_core.verdict import class_references
from siamese_studio.ui.charts import RATES_HEIGHT, operating_point
from siamese_studio.ui.common import model_dataset, say
from siamese_studio.ui.text import plain

MAX_REFERENCES = 50
SHOWN = 8
MARKS = {"test": "  (new: test split)", "val": "  (new: validation split)", "train": ""}


def verify_panel(m, prepared, what: str) -> None:
    """Choose a class, give a questioned image, set the threshold; see the verdict."""
    try:
        splits = {s: model_dataset(m, s) for s in ("train", "val", "test")}
    except SiameseError as e:
        st.warning(f"Verification needs the model's dataset: {say(e)}")
        return
    refs = class_references(splits)
    left, right = st.columns(2)
    with left:
        st.subheader("References")
        name = st.selectbox(
            "Class", list(refs), key="verify_class", format_func=lambda c: c + MARKS[refs[c][1]],
            help="Classes the model never trained on are marked new: verifying them is what a "
                 "siamese network is for. Test classes played no part in training; validation "
                 "classes chose the kept epoch and the threshold, so they flatter it a little.")
        ref_images, split = refs[name]
        ref_images = ref_images[:MAX_REFERENCES]
    with right:
        st.subheader("Questioned image")
        # Pick offers the images of the chosen class's split (a trained class: the test split),
        # so a genuine image of a held-out class can be questioned too.
        x = prepared("verify", splits["test" if split == "train" else split])
    if x is not None and x.shape == ref_images.shape[1:]:
        # A picked reference is not its own reference (distance 0).
        ref_images = ref_images[~(ref_images == x).all(axis=(1, 2))]
    with left:
        shown = st.empty()
    result = st.container()      # the verdict right under the images, the threshold after it
    t = threshold_control(m)
    if x is None:
        shown.image(list(ref_images[:SHOWN]), width=64)
        return
    if not len(ref_images):
        result.info(f"{plain(name)} has no other image to compare the picked one with: press "
                    "Another.")
        return
    try:
        r = m.verify(x, ref_images, t)
    except ImageError as e:
        result.warning(plain(e))
        return
    shown.image([ref_images[i] for i in r.order[:SHOWN]], width=64,
                caption=[f"{d:.2f}" for d in r.distances[:SHOWN]])
    v = r.verdict
    c = result.columns(3)
    # Short values: a class name in a metric is cut off ("not Balinese/char…").
    c[0].metric("Verdict", "match" if v.same else "no match")
    rule = m.references
    c[1].metric(rule.label.capitalize(), f"{v.distance:.3f}",
                help=f"{rule.describe()}, to the {len(r.distances)} reference images; nearest "
                     f"first on the left")
    c[2].metric("Confidence", f"{v.confidence:.0%}")
    result.caption(f"The questioned image {'is' if v.same else 'is not'} taken for **{plain(name)}**: "
                   f"its {rule.label} to the references is {v.distance:.3f}, "
                   f"{'at or under' if v.same else 'over'} the threshold {t:.3f}.")
    note = references_note(m)
    if note:
        result.caption(note)


def references_note(m) -> str | None:
    """What the model measured on its test classes against several references, by its rule at
    its calibrated threshold (None when training could not measure it)."""
    r = (m.meta.get("test") or {}).get("references")
    if not r:
        return None
    chosen = m.meta.get("references") or {}
    eer = chosen.get("eer") or {}
    why = ("; chosen on validation, where its equal error rate was "
           f"{eer[m.references.rule]:.1%} (" + ", ".join(f"{k} {v:.1%}" for k, v in eer.items()
                                                      if k != m.references.rule) + ")"
           if m.references.rule in eer else "")
    return (f"{m.references.label.capitalize()}: {m.references.describe()}{why}. On the test "
            f"classes with {r['k']} references, at the calibrated threshold: false rejects "
            f"{r['frr']:.1%}, false accepts of {r['against']} {r['far']:.1%}.")


def threshold_control(m, where: str = "verify") -> float:
    """A threshold slider starting at the calibrated one, with the validation false-accept and
    false-reject rates at the chosen value (an operating point on the ROC); ``where`` keeps
    the controls of two tabs apart."""
    key = f"{where}_threshold_{m.meta['sha256']['onnx'][:12]}"
    st.markdown("**Threshold** — pick it for your risk: lower accepts fewer impostors and "
                "rejects more genuine matches.")
    c1, c2 = st.columns([3, 1])
    if c2.button("Calibrated", key=f"{where}_reset_threshold", icon=":material/restart_alt:",
                 help=f"Back to the threshold chosen on validation: {m.threshold:.3f}"):
        st.session_state[key] = float(round(m.threshold, 3))
    t = c1.slider("Threshold (distance)", 0.0, 2.0, float(round(m.threshold, 3)), 0.005, key=key,
                  format="%.3f")
    rates = m.rates_at(t)
    if rates is None:
        st.caption("This model was saved without its validation error rates.")
        return t
    far, frr = rates
    random_far = m.random_far_at(t)
    c = st.columns(4 if random_far is not None else 3)
    if random_far is not None:    # a signature model: both kinds of impostor
        c[0].metric("False accepts: skilled forgeries", f"{far:.1%}",
                    help="validation forgeries of a person called that person (the threshold "
                         "was calibrated on these)")
        c[3].metric("False accepts: random", f"{random_far:.1%}",
                    help="validation pairs of two people's genuine images called same")
    else:
        c[0].metric("False accepts", f"{far:.1%}",
                    help="different-class validation pairs called same")
    c[1].metric("False rejects", f"{frr:.1%}", help="same-class validation pairs called different")
    c[2].metric("Calibrated threshold", f"{m.threshold:.3f}")
    st.altair_chart(operating_point(m.meta["operating_points"], t), width="stretch",
                    height=RATES_HEIGHT)
    return t
