import streamlit as st

from siamese_studio.ui.common import page, sidebar

sidebar(__file__)
st.title("Siamese pairs studio")
st.markdown(
    """
A **siamese network** answers one question about two images: *same class, or not?*
Both images go through **the same embedding network** — two branches that share one set of
weights — which maps each image to a point (an *embedding*). The **distance** between the two
points is the answer: small means "same", large means "different", and a threshold calibrated on
held-out pairs turns the distance into a verdict.

Training needs **pairs**: *positive* pairs of one class and *negative* pairs of two classes.
The **loss** shapes the embedding space:
- **binary cross-entropy** puts a one-unit sigmoid head on the distance and learns P(same);
- **contrastive** pulls positive pairs together and pushes negatives beyond a *margin*;
- **triplet** asks that an anchor be closer to a positive than to a negative, by a margin.

Because the network learns *similarity* rather than a fixed list of classes, it can compare
images of classes it never saw — the idea behind signature verification and face recognition.
"""
)
st.graphviz_chart(
    """
digraph {
  rankdir=LR; node [shape=box, style="rounded,filled", fillcolor="#f0f2f6", fontname="Helvetica"];
  a [label="image A"]; b [label="image B"];
  subgraph cluster_shared { label="shared weights"; style=dashed;
    ea [label="embedding CNN"]; eb [label="embedding CNN"]; }
  a -> ea; b -> eb;
  ea -> d [label="f(A)"]; eb -> d [label="f(B)"];
  d [label="distance ‖f(A) − f(B)‖", fillcolor="#ffe9c7"];
  d -> v [label="≤ threshold?"]; v [label="same / different", fillcolor="#d4f4dd"];
  d -> l [style=dotted, label="training"]; l [label="loss: BCE · contrastive · triplet"];
}
"""
)
st.subheader("Three parts")
c1, c2, c3 = st.columns(3)
with c1:
    st.markdown("**A · Image pairs** — sample positive and negative pairs and see them as a montage.")
    st.page_link(page("explorer"), label="Pair explorer", icon=":material/grid_view:")
with c2:
    st.markdown("**B · Training** — click Train and watch the loss, accuracy and embedding space "
                "evolve live.")
    st.page_link(page("train"), label="Train", icon=":material/model_training:")
with c3:
    st.markdown("**C · Comparing** — draw or upload two digits and get a distance-based verdict.")
    st.page_link(page("compare"), label="Compare", icon=":material/balance:")
st.markdown("**Your own images** — signatures, handwritten characters, faces: upload a zip of "
            "class folders, train on some classes and verify examples of classes the network "
            "never saw.")
st.page_link(page("your_data"), label="Your data", icon=":material/upload_file:")
