"""Train (seed part B): click to train in a worker process and watch it learn live."""
import io
import zipfile
from dataclasses import replace
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from siamese_core import SiameseError, jobs, runs
from siamese_core import weights as W
from siamese_core.config import FITS, HOLDOUTS, LOSSES, demo_config, recipe
from siamese_core.data import is_user_spec
from siamese_core.losses import LOSSES as LOSS_SPECS
from siamese_core.jobs import BusyError, TrainingJob, prewarm, smoothed
from ui.common import (
    ACTIVE_DATASET,
    ACTIVE_MODEL,
    JOB,
    USER_DATASETS,
    active_dataset,
    dataset_label,
    dataset_labeller,
    dataset_options,
    sidebar,
    versus_shipped,
)

LOSS_POINTS = 150    # per redraw of the loss chart
MAX_EPOCHS = 10_000  # the form's ceiling: "no epoch limit" for a run bounded by its time budget
CHARTS_EVERY = 3.0   # seconds between redraws of the charts while training
LOSS_SPEC = {
    "mark": {"type": "line"},
    "encoding": {
        "x": {"field": "step", "type": "quantitative", "title": "step"},
        "y": {"field": "value", "type": "quantitative", "title": None},
        "color": {"field": "series", "type": "nominal",
                  "legend": {"orient": "bottom", "title": None}},
    },
}

sidebar(__file__, watch_training=False)
st.title("Train a siamese network")
DEFAULT = demo_config()
st.caption("Part B: training runs in its own process — switch pages freely, it keeps going. "
           f"The defaults train for {DEFAULT.seconds:.0f} s and finish within a minute on a "
           "laptop CPU.")

FORM = "train_form_values"   # the last submitted values: widgets forget theirs on page switch


def form_values(c) -> dict:
    """The form's fields for a training config (the defaults, or a reloaded run's own)."""
    return {"dataset": c.dataset, "loss": c.loss, "margin": float(c.margin or 0.0),
            "dim": c.embedding_dim, "epochs": c.epochs or MAX_EPOCHS,
            "seconds": int(c.seconds or DEFAULT.seconds), "batch": c.batch_size,
            "lr": c.learning_rate, "max_train": c.max_train or 0, "pairing": c.pairing,
            "augment": c.augment, "seed": c.seed, "holdout": c.holdout,
            "input_size": c.input_size, "fit": c.fit, "rotated": c.rotated_classes,
            "grouped": c.group_batches}


def base_config(spec: str):
    """What a run on ``spec`` starts from: the page's quick demo on the built-in datasets, the
    measured recipe for new classes on the user's own images."""
    return recipe(spec) if is_user_spec(spec) else replace(DEFAULT, dataset=spec)


job: TrainingJob | None = st.session_state.get(JOB)
# A run belongs to its id, kept in the URL (?run=...): a reload or a second tab finds it again.
asked = st.query_params.get("run")
if asked and (job is None or job.id != asked):
    found = jobs.find(asked)
    if found is not None:
        st.session_state[JOB] = job = found
        # A reloaded page shows the run's own settings in the form, not the defaults.
        st.session_state.setdefault(FORM, form_values(found.config))
    else:
        st.warning("That training run is no longer on this server (runs are kept for an hour "
                   "after they end).", icon=":material/history:")
        del st.query_params["run"]
if job is not None and st.query_params.get("run") != job.id:
    st.query_params["run"] = job.id
running = job is not None and not job.finished
if not running:
    prewarm()   # a worker imports TensorFlow while the user reads the form: Train starts at once

    @st.fragment(run_every=jobs.SPARE_IDLE_S / 3)
    def keep_spare():
        """The warm worker lives while this page is open, and goes soon after it is closed."""
        prewarm()
    keep_spare()

options = dataset_options()
saved = st.session_state.get(FORM, {})
start = saved.get("dataset", active_dataset())
spec = st.selectbox("Dataset", options, index=options.index(start) if start in options else 0,
                    format_func=dataset_labeller(), disabled=running, key="train_dataset",
                    help="Upload your own images on **Your data**. On them, training starts "
                         "from the recipe measured for new classes (bce loss, turned copies as "
                         "new classes, batches within a folder, 40 px, 5 minutes).")
d = form_values(base_config(spec))
if saved.get("dataset") == spec:
    d.update(saved)

with st.form("train_form"):
    c1, c2, c3, c4 = st.columns(4)
    v = {"dataset": spec}
    v["holdout"] = c1.selectbox(
        "Hold out", HOLDOUTS, index=HOLDOUTS.index(d["holdout"]),
        format_func={"auto": "auto (classes for your data)", "image": "images of every class",
                     "class": "whole classes"}.get,
        help="What validation and test hold out: images of classes seen in training, or whole "
             "classes never seen (what verifying new people or characters needs).")
    v["loss"] = c2.selectbox("Loss", LOSSES, index=LOSSES.index(d["loss"]),
                             help=" · ".join(f"{n}: {s.help}" for n, s in LOSS_SPECS.items()))
    v["margin"] = c3.number_input("Margin (0 = the loss's default)", 0.0, 2.0, d["margin"], 0.1,
                                  help="Embeddings have unit length, so distances lie in [0, 2]. "
                                       "Defaults: " + ", ".join(
                                           f"{n} {s.default_margin}" if s.default_margin
                                           else f"{n} none" for n, s in LOSS_SPECS.items()))
    v["dim"] = c4.select_slider("Embedding size", [8, 16, 32, 64, 128], d["dim"])
    c1, c2, c3, c4 = st.columns(4)
    v["epochs"] = c1.number_input("Epochs", 1, MAX_EPOCHS, d["epochs"])
    v["seconds"] = c2.number_input("Time budget (s)", 5, 1800, d["seconds"],
                                   help="Training stops at the epochs or the budget, whichever "
                                        "comes first. The budget counts from the click: if the "
                                        "training process is still loading TensorFlow, that "
                                        "wait comes off it.")
    v["batch"] = c3.select_slider("Batch size", [20, 50, 100, 200, 400], d["batch"],
                                  help="Every pair inside a batch is used: "
                                       f"{DEFAULT.batch_size} images → "
                                       f"{DEFAULT.batch_size * (DEFAULT.batch_size - 1) // 2:,} "
                                       "pairs.")
    v["lr"] = c4.select_slider("Learning rate", [3e-4, 1e-3, 3e-3, 6e-3, 1e-2], d["lr"])
    c1, c2, c3, c4 = st.columns(4)
    v["max_train"] = c1.number_input("Training images (0 = all)", 0, 60_000, d["max_train"], 100,
                                     help="Fewer images train faster (for a quick look).")
    v["pairing"] = c2.selectbox("Pairs", ["batch", "fixed"], index=["batch", "fixed"].index(
        d["pairing"]), format_func={"batch": "all pairs in each batch (fast)",
                                    "fixed": "1 pos + 1 neg per image (seed)"}.get)
    v["augment"] = c3.toggle("Augmentation", d["augment"],
                             help="small random shifts, rotations and zooms, eased in over the "
                                  f"first {DEFAULT.augment_warmup * 100:.0f} % of the run")
    v["seed"] = c4.number_input("Seed", 0, 1_000_000, d["seed"])
    if is_user_spec(spec):
        c1, c2, c3, c4 = st.columns(4)
        v["input_size"] = c1.select_slider("Input size (px)", [28, 32, 40, 48, 64],
                                           d["input_size"], help="Larger keeps finer strokes, "
                                           "and costs time per step.")
        v["fit"] = c2.selectbox("Fit", FITS, index=FITS.index(d["fit"]), format_func={
            "centre": "crop to the ink, centre it (MNIST)",
            "box": "crop to the ink, fill the frame (wide images)"}.get)
        v["rotated"] = c3.toggle("Turned copies as new classes", d["rotated"],
                                 help="Each training image turned by 90°, 180° and 270° counts "
                                      "as three more classes: 4× the classes to tell apart.")
        v["grouped"] = c4.toggle("Hard negatives by folder", d["grouped"],
                                 help="Each batch takes its classes from one parent folder "
                                      "(e.g. one alphabet), so the pairs to tell apart are the "
                                      "hard ones.")
    submitted = st.form_submit_button("Train", icon=":material/play_arrow:", type="primary",
                                      disabled=running)

if submitted and not running:
    st.session_state[FORM] = v
    try:
        cfg = replace(base_config(spec), loss=v["loss"], margin=float(v["margin"]) or None,
                      embedding_dim=int(v["dim"]), epochs=int(v["epochs"]),
                      seconds=float(v["seconds"]), batch_size=int(v["batch"]),
                      learning_rate=float(v["lr"]), pairing=v["pairing"],
                      augment=bool(v["augment"]), seed=int(v["seed"]),
                      max_train=int(v["max_train"]) or None, holdout=v["holdout"],
                      input_size=int(v.get("input_size", 28)), fit=v.get("fit", "centre"),
                      rotated_classes=bool(v.get("rotated", False)),
                      group_batches=bool(v.get("grouped", False)))
        root = runs.default_root()
        runs.prune(root, keep=[st.session_state.get(ACTIVE_MODEL),
                               *[s.split(":", 1)[1] for s in st.session_state.get(
                                   USER_DATASETS, {})]])
        out = runs.new_run(root, f"{dataset_label(spec).replace('your data: ', '')}-{v['loss']}")
        st.session_state[JOB] = job = TrainingJob.start(cfg, out)
        st.query_params["run"] = job.id
        st.session_state[ACTIVE_DATASET] = spec
        running = True
    except BusyError as e:
        st.warning(str(e), icon=":material/hourglass_top:")
    except SiameseError as e:
        st.error(str(e))


def zip_model(prefix: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for p in W.paths(prefix).values():
            z.write(p, p.name)
    return buf.getvalue()


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
            x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1), title="epochs"),
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
            # Dozens of classes (your own data) make a legend taller than the chart: colours
            # and the tooltip tell them apart.
            color=alt.Color("class:N", legend=alt.Legend(orient="bottom", columns=5, title=None)
                            if len(names) <= 20 else None),
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
    st.success(f"{how} after {end.epochs_done} epoch(s), {end.elapsed:.0f} s; the best epoch "
               f"({end.best_epoch}) is kept.")
    t = end.meta.get("test")
    if t:
        new = end.meta.get("holdout") == "class"
        st.markdown(f"**Test** — {t['n_images']:,} images of "
                    + (f"{t['n_classes']} classes never seen in training" if new
                       else "every class, never seen in training")
                    + ", at the threshold chosen on validation:")
        c = st.columns(4)
        c[0].metric("Pair accuracy", f"{t['pair_accuracy']:.2%}")
        c[1].metric("ROC AUC", f"{t['roc_auc']:.4f}")
        c[2].metric(f"{t['n_way']}-way one-shot", f"{t['one_shot']:.1%}",
                    help=f"{t['one_shot_episodes']:,} episodes: one image of each of "
                         f"{t['n_way']} classes, and another image of one of them to recognise "
                         f"by its nearest.")
        c[3].metric("Equal error rate", f"{t['eer']:.2%}")
    st.markdown("**Validation** (chose the kept epoch and the threshold)")
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
                  height=240)
    c1, c2 = st.columns(2)
    mine = st.session_state.get(ACTIVE_MODEL) == str(job.out)
    if c1.button("Use this model" if not mine else "In use on Compare", key="use_model",
                 disabled=mine, type="primary"):
        st.session_state[ACTIVE_MODEL] = str(job.out)
        st.rerun()
    try:
        c2.download_button("Download weights (.zip)", zip_model(job.out),
                           file_name=f"{job.out.name}.zip", mime="application/zip",
                           key="download_model", on_click="ignore")
    except OSError as err:
        c2.error(f"model files are gone: {err}")


if job is not None:
    if job.finished:
        s = job.poll()
        if s.status == "failed":
            st.error(s.error, icon=":material/error:")
        else:   # render_progress draws nothing for a finished run
            render_loss(s)
            render_validation(s)
            render_done(job, s)
    else:
        @st.fragment(run_every=1.0)
        def live():
            s = job.poll()
            if job.finished:
                st.rerun()   # full rerun: the final page, and the form enabled again
            render_progress(job, s)

        # The charts are the costly part to draw (in the browser above all): every few seconds.
        @st.fragment(run_every=CHARTS_EVERY)
        def live_charts():
            s = job.poll()
            render_loss(s)
            render_validation(s)
        live()
        live_charts()
else:
    st.info("Set the hyperparameters and press **Train**.")
