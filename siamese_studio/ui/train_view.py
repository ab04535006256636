"""The Train page's drawing: live progress, the charts and the finished run (Streamlit)."""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from siamese_core import SiameseError, jobs
from siamese_core import weights as W
from siamese_core.cli import command_for
from siamese_core.config import demo_config
from siamese_core.data import few_held_out_note, is_user_spec
from siamese_core.references import ReferenceRule
from siamese_core.jobs import TrainingJob, smoothed
from siamese_studio.ui.charts import class_legend
from siamese_studio.ui.common import ACTIVE_MODEL, dataset_label, say, upload_name, versus_shipped
from siamese_studio.ui.text import code, plain

DEFAULT = demo_config()
PROGRESS_EVERY = 1.0   # seconds between redraws of the progress bar while training
CHARTS_EVERY = 3.0     # ... and of the charts (the costly part to draw, in the browser above all)
LOSS_POINTS = 150    # per redraw of the loss chart
LOSS_SPEC = {
    "mark": {"type": "line"},
    "encoding": {
        "x": {"field": "step", "type": "quantitative", "title": "step"},
        "y": {"field": "value", "type": "quantitative", "title": None},
        "color": {"field": "series", "type": "nominal",
                  "legend": {"orient": "bottom", "title": None}},
    },
}


def _rerun_if_over(job: TrainingJob) -> None:
    """A live fragment whose run has ended asks for a full rerun instead of drawing: a timer of
    the live page can still fire once the finished page is drawn, and its fragment's place
    there now holds the result (a chart redrawn at that place replaced the Test heading)."""
    if job.finished:
        st.rerun()


@st.fragment(run_every=PROGRESS_EVERY)
def live_progress(job: TrainingJob) -> None:
    """Progress and Stop while the run lasts; the finished page once it is over."""
    s = job.poll()
    _rerun_if_over(job)
    render_progress(job, s)


@st.fragment(run_every=CHARTS_EVERY)
def live_charts(job: TrainingJob) -> None:
    """The loss and validation charts while the run lasts."""
    s = job.poll()
    _rerun_if_over(job)
    render_loss(s)
    render_validation(s)


def render_progress(job: TrainingJob, s) -> None:
    """Progress, Stop and the latest validation's numbers: cheap to draw, redrawn every second."""
    b = s.last_batch
    if s.status == "starting":
        st.progress(0.0, text="Loading the data…" if s.warm else
                    "Starting the training process (loading TensorFlow; the wait counts "
                    "in the time budget)…")
    elif s.status == "running" and b is not None:
        eta = f", about {b.eta:.0f} s left" if b.eta is not None else ""
        st.progress(min(b.progress, 1.0), text=f"Epoch {b.epoch} · batch "
                    f"{(b.step - 1) % b.steps_per_epoch + 1}/{b.steps_per_epoch} · "
                    f"{b.elapsed:.0f} s{eta}" + (" · stopping…" if s.stop_requested else ""))
    elif s.status == "running":
        st.progress(0.0, text="Compiling the training step…")
    for note in getattr(s.begin, "notes", ()):     # e.g. photos without a face, left out
        st.caption(f"Data: {plain(note)}")
    if s.status in ("starting", "running"):
        if st.button("Stop", icon=":material/stop:", key="stop_training",
                     disabled=s.stop_requested):
            job.stop()
            st.rerun(scope="fragment")

    e = s.last_epoch
    if e is not None and s.status != "done":     # done: render_done shows the kept epoch's
        c = st.columns(3)
        c[0].metric("Latest validation: pair accuracy", f"{e.metrics['pair_accuracy']:.2%}")
        c[1].metric("ROC AUC", f"{e.metrics['roc_auc']:.4f}")
        c[2].metric("Epochs seen", f"{e.metrics['epochs_seen']:.1f}")
    elif s.status == "running":
        st.caption(f"Validation: every {DEFAULT.val_every_seconds:g} s of training…")


def render_loss(s) -> None:
    """The training loss curve: with the validation charts, redrawn every CHARTS_EVERY s."""
    if not s.losses:
        return
    st.markdown("**Training loss** (per batch, smoothed)")
    # At most ~LOSS_POINTS per redraw: on a small machine the browser's chart redraws compete
    # with the training worker for the cores.
    k = max(1, len(s.losses) // LOSS_POINTS)
    losses = pd.DataFrame({"step": s.steps[::k], "loss": s.losses[::k],
                           "smoothed": smoothed(s.losses)[::k]})
    # A plain Vega-Lite spec: st.line_chart builds and validates an Altair chart on every
    # redraw, a quarter of the server's CPU while training (py-spy).
    st.vega_lite_chart(losses.melt("step", var_name="series"), LOSS_SPEC, width="stretch",
                       height=260)


def render_validation(s) -> None:
    """The validation curves, the 2-D map and the distance histogram — of the latest epoch while
    training, of the kept (best) one once finished, so they agree with the metrics shown below.
    The costly charts to draw: while training they are redrawn every CHARTS_EVERY seconds."""
    kept = s.end is not None and s.best_epoch is not None
    e = s.best_epoch if kept else s.last_epoch
    if e is None:
        return
    which = f"epoch {e.epoch}" + (" (kept)" if kept else "")
    c0, c1, c2 = st.columns(3)
    with c0:
        st.markdown("**Validation**" + (f" — dashed: epoch {e.epoch}, kept" if kept else ""))
        hist = pd.DataFrame(s.epochs)[["epochs_seen", "pair_accuracy", "roc_auc"]] \
            .rename(columns={"epochs_seen": "epoch"}).melt("epoch", var_name="metric")
        low = min(0.5, float(hist["value"].min()))
        chart = alt.Chart(hist).mark_line(point=True).encode(
            x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1, format="~g"), title="epochs"),
            y=alt.Y("value:Q", scale=alt.Scale(domain=[low, 1.0]), title=None),
            color=alt.Color("metric:N", legend=alt.Legend(orient="bottom", title=None)),
            tooltip=["epoch", "metric", alt.Tooltip("value:Q", format=".4f")])
        if kept:   # where the kept weights come from
            chart += alt.Chart(pd.DataFrame({"epoch": [e.metrics["epochs_seen"]]})).mark_rule(
                color="gray", strokeDash=[4, 3]).encode(x="epoch:Q")
        st.altair_chart(chart.properties(height=300), width="stretch")
    with c1:
        st.markdown(f"**Validation embeddings, 2-D (PCA)** — {which}")
        names = np.array(s.begin.class_names if s.begin else [])
        pts = pd.DataFrame({"x": e.embedding_2d[:, 0], "y": e.embedding_2d[:, 1],
                            "class": names[e.embedding_labels]})
        st.altair_chart(alt.Chart(pts).mark_circle(size=30, opacity=0.8).encode(
            x=alt.X("x:Q", title="PC 1"), y=alt.Y("y:Q", title="PC 2"),
            color=alt.Color("class:N", legend=class_legend(len(names))),
            tooltip=["class"]).properties(height=300), width="stretch")
    with c2:
        thr = e.metrics["threshold"]
        st.markdown(f"**Pair distances** — {which}: threshold {thr:.3f}, accuracy "
                    f"{e.metrics['pair_accuracy']:.1%}")
        top = max(2.0, float(np.max(e.neg_distances, initial=0)))
        edges = np.linspace(0, top, 41)
        hist = pd.concat([pd.DataFrame({"from": edges[:-1], "to": edges[1:], "pairs": kind,
                                        "count": np.histogram(d, edges)[0]})
                          for kind, d in (("same class", e.pos_distances),
                                          ("different", e.neg_distances))])
        x = alt.Scale(domain=[0, top])
        bars = alt.Chart(hist).mark_bar(opacity=0.65).encode(
            x=alt.X("from:Q", scale=x, title="distance"), x2="to",
            y=alt.Y("count:Q", stack=None, title="pairs"), y2=alt.datum(0),
            color=alt.Color("pairs:N", scale=alt.Scale(  # as in the montage
                domain=["same class", "different"], range=["#2ca02c", "#d62728"]),
                legend=alt.Legend(orient="bottom", title=None)))
        rule = alt.Chart(pd.DataFrame({"t": [thr]})).mark_rule(
            color="black", strokeDash=[4, 3], size=2).encode(x=alt.X("t:Q", scale=x))
        st.altair_chart((bars + rule).properties(height=300), width="stretch")
        st.caption(f"Dashed line: the calibrated threshold {thr:.3f}; pairs left of it are "
                   f"called *same*.")


def render_versus_shipped(job: TrainingJob) -> None:
    """Is the new model better than the shipped one? One test split can only tell so much:
    say how much, with an interval, rather than a bare difference."""
    try:
        c = versus_shipped(str(job.out), W.read_meta(job.out, verify=())["sha256"]["onnx"])
    except (SiameseError, OSError):   # model files gone or corrupt: Download says so below
        return
    if c is None:
        return
    n = c["n_images"]
    st.markdown(
        f"**Against the shipped model**, on every one of the {n * (n - 1) // 2:,} pairs of the "
        f"{n:,} test images (balanced accuracy): yours {c['accuracy_a']:.2%}, shipped "
        f"{c['accuracy_b']:.2%} — "
        f"**{100 * c['difference']:+.2f} points** (95 % interval {100 * c['low']:+.2f} to "
        f"{100 * c['high']:+.2f}): **{c['verdict']}**.",
        help="Balanced accuracy over every pair of distinct test images, each model at its "
             "own threshold. The interval comes from resampling the images (a paired "
             f"bootstrap): with {n:,} images, a few misplaced ones move the accuracy by tenths "
             "of a point.")


def render_done(job: TrainingJob, s) -> None:
    end = s.end
    m = end.metrics
    how = {"completed": "Training finished", "time": "Training finished: time budget reached",
           "stopped": "Training stopped"}[end.reason]
    if s.stopped_unwatched:
        how = (f"Training stopped because no page showed it for "
               f"{jobs.UNWATCHED_GRACE_S:.0f} s (closed tab?)")
    st.success(f"{how} on {plain(dataset_label(job.config.dataset))} after {end.epochs_done} "
               f"epoch(s), {end.elapsed:.0f} s; the best epoch ({end.best_epoch}) is kept.")
    try:   # the worker's message leaves the metadata out: the saved JSON has it
        meta = W.read_meta(job.out, verify=())
    except (SiameseError, OSError):
        meta = {}
    t = meta.get("test")
    if t:
        new = meta.get("holdout") == "class"
        st.markdown(f"**Test** — {t['n_images']:,} images of "
                    + (f"{t['n_classes']} classes never seen in training" if new
                       else "every class, never seen in training")
                    + ", at the threshold chosen on validation:")
        c = st.columns(4)
        band = (f"95 % interval {t['pair_accuracy_low']:.1%} to {t['pair_accuracy_high']:.1%}, "
                f"from resampling the test {t['interval_over']}"
                + (" and their images" if t["interval_over"] == "classes" else "")
                if "pair_accuracy_low" in t else None)
        c[0].metric("Pair accuracy", f"{t['pair_accuracy']:.2%}", help=band)
        c[1].metric("ROC AUC", f"{t['roc_auc']:.4f}")
        c[2].metric(f"{t['n_way']}-way one-shot", f"{t['one_shot']:.1%}",
                    help=f"{t['one_shot_episodes']:,} episodes: one image of each of "
                         f"{t['n_way']} classes, and another image of one of them to recognise "
                         f"by its nearest.")
        c[3].metric("Equal error rate", f"{t['eer']:.2%}")
        if band:
            st.caption(f"Test pair accuracy: {band}.")
        if "far_skilled" in t:
            st.markdown(f"**Test signatures** — genuine against the {t['n_forgeries']:,} "
                        "skilled forgeries of those people, at the same threshold:")
            c = st.columns(4)
            c[0].metric("False rejects", f"{t['frr']:.2%}")
            c[1].metric("False accepts: skilled", f"{t['far_skilled']:.2%}")
            c[2].metric("False accepts: random", f"{t['far_random']:.2%}")
            c[3].metric("Equal error rate: skilled", f"{t['eer_skilled']:.2%}",
                        help=f"random forgeries: {t['eer_random']:.2%}")
        r = t.get("references")
        if r:
            st.markdown(f"**Against {r['k']} references** of the claimed class, as Verify and "
                        f"the gallery judge, at the same threshold:")
            c = st.columns(4)
            c[0].metric("False rejects", f"{r['frr']:.2%}")
            c[1].metric(f"False accepts: {'skilled' if 'forg' in r['against'] else 'others'}",
                        f"{r['far']:.2%}", help=f"{r['against']} taken for the claimed class")
            c[2].metric("Equal error rate", f"{r['eer']:.2%}")
            st.caption(f"The score of several references, by the rule chosen on validation: "
                       f"{ReferenceRule(r['rule']).describe()}.")
    splits = meta.get("splits", {})
    few = few_held_out_note(meta.get("holdout", "image"), splits.get("val", {}).get("classes", 0),
                            splits["test"]["classes"] if "test" in splits else None, t)
    if few:
        st.warning(few, icon=":material/groups:")
    on = (" — genuine pairs against skilled forgeries" if meta.get("calibrated_on") ==
          "skilled forgeries" else "")
    st.markdown(f"**Validation**{on} (chose the kept epoch and the threshold)")
    c = st.columns(4)
    c[0].metric("Pair accuracy", f"{m['pair_accuracy']:.2%}")
    c[1].metric("ROC AUC", f"{m['roc_auc']:.4f}")
    c[2].metric("Equal error rate", f"{m['eer']:.2%}")
    c[3].metric("Threshold", f"{m['threshold']:.3f}")
    render_versus_shipped(job)
    fpr, tpr = end.roc
    st.markdown("**ROC curve** (validation pairs)")
    st.line_chart(pd.DataFrame({"true positive rate": tpr},
                               index=pd.Index(np.round(fpr, 4), name="false positive rate")),
                  height=240, x_label="false positive rate", y_label="true positive rate")
    c1, c2 = st.columns(2)
    mine = st.session_state.get(ACTIVE_MODEL) == str(job.out)
    if c1.button("Use this model" if not mine else "In use on Compare", key="use_model",
                 disabled=mine, type="primary"):
        st.session_state[ACTIVE_MODEL] = str(job.out)
        st.rerun()
    try:
        # The run's id in the name: two runs of one dataset and loss no longer collide.
        c2.download_button("Download weights (.zip)", W.zip_bytes(job.out),
                           file_name=f"{job.out.name}-{job.out.parent.name[:8]}.zip",
                           mime="application/zip", key="download_model", on_click="ignore")
    except OSError as err:
        c2.error(f"model files are gone: {say(err)}")
    where, line = command_block(job.config, f"runs/{job.out.name}")
    st.markdown(where)
    st.code(line, language="bash")


def command_block(cfg, out: str) -> tuple[str, str]:
    """The heading and the ``train`` command line of a run, as the user can run it: an upload
    by the name of the file they uploaded (the server's copy is private and goes after a
    day)."""
    spec, where = cfg.dataset, ""
    if is_user_spec(spec):
        name = upload_name(spec) or "your-images.zip"
        spec = f"zip:{name}"
        where = f" — in the folder that holds {code(name)}, the zip you uploaded"
    return (f"**The same run from the command line**{where} (copy button at the right)",
            command_for(cfg, out, dataset=spec))
