"""Train (seed part B): click to train in a worker process and watch it learn live."""
import streamlit as st

from siamese_core import SiameseError, jobs, runs
from siamese_core.config import RECIPE_SECONDS
from siamese_core.data import dataset_kind, is_user_spec
from siamese_core.jobs import BusyError, TrainingJob, prewarm
from siamese_core.preprocess import KINDS
from siamese_studio.ui.common import (
    ACTIVE_DATASET,
    JOB,
    active_dataset,
    dataset_label,
    dataset_labeller,
    dataset_options,
    protected,
    say,
    sidebar,
)
from siamese_studio.ui.runs_view import remember, render_runs
from siamese_studio.ui.train_form import FORM, base_config, config_from_form, form_values, train_form
from siamese_studio.ui.train_view import (
    DEFAULT,
    live_charts,
    live_progress,
    render_done,
    render_loss,
    render_validation,
)

sidebar(__file__, watch_training=False)
st.title("Train a siamese network")
st.caption("Part B: training runs in its own process — switch pages freely, it keeps going. "
           f"The defaults train for {DEFAULT.seconds:.0f} s on the built-in datasets (done within "
           f"a minute on a laptop CPU) and {RECIPE_SECONDS / 60:.0f} minutes on your own images "
           "(the recipe measured for new classes).")

job: TrainingJob | None = st.session_state.get(JOB)
# A run belongs to its id, kept in the URL (?run=...): a reload or a second tab finds it again.
asked = st.query_params.get("run")
if asked and (job is None or job.id != asked):
    found = jobs.find(asked)
    if found is not None:
        st.session_state[JOB] = job = found
        remember(found.out)
        # A reloaded page shows the run's own settings in the form, not the defaults.
        st.session_state.setdefault(FORM, form_values(found.config))
        st.session_state.setdefault(ACTIVE_DATASET, found.config.dataset)
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
# The form trains the sidebar's active dataset (chosen on any page), not the last run's: the
# finished run below names its own. Choosing here makes it the active one, at once.
start = active_dataset()
spec = st.selectbox("Dataset", options, index=options.index(start) if start in options else 0,
                    format_func=dataset_labeller(), disabled=running, key="train_dataset",
                    on_change=lambda: st.session_state.update(
                        {ACTIVE_DATASET: st.session_state["train_dataset"]}),
                    help="Upload your own images on **Your data**. On them, training starts "
                         "from the recipe measured for new classes of their kind: ink (turned "
                         "copies as new classes, batches within a folder, 40 px) or photo "
                         "(mirrored faces, 48 px); 5 minutes.")
st.session_state[ACTIVE_DATASET] = spec
kind = None
if is_user_spec(spec):
    try:
        seen, why = dataset_kind(spec)
    except SiameseError as e:
        st.error(say(e))
        st.stop()
    start_kind = saved.get("kind", seen) if saved.get("dataset") == spec else seen
    kind = st.selectbox(
        "Kind of images", KINDS, index=KINDS.index(start_kind), disabled=running,
        key=f"train_kind_{spec}", format_func={"ink": "ink (drawings, characters, signatures)",
                                               "photo": "photo (faces, objects)"}.get,
        help=f"Chosen from the images: {why}. The kind decides the preprocessing and the recipe "
             "the form starts from.")
d = form_values(base_config(spec, kind))
if saved.get("dataset") == spec and (kind is None or saved.get("kind", kind) == kind):
    d.update(saved)

submitted, v = train_form(spec, d, running)

if submitted and not running:
    st.session_state[FORM] = v
    try:
        cfg = config_from_form(spec, v)
        root = runs.default_root()
        runs.make_room(root, 0, keep=protected())
        out = runs.new_run(root, f"{dataset_label(spec).replace('your data: ', '')}-{v['loss']}")
        st.session_state[JOB] = job = TrainingJob.start(cfg, out)
        remember(out)
        st.query_params["run"] = job.id
        st.session_state[ACTIVE_DATASET] = spec
        running = True
    except BusyError as e:
        st.warning(say(e), icon=":material/hourglass_top:")
    except SiameseError as e:
        st.error(say(e))


if job is not None:
    if job.finished:
        s = job.poll()
        if s.status == "failed":
            st.error(say(s.error), icon=":material/error:")
        else:   # the result first, then how it got there (render_progress: nothing to draw)
            render_done(job, s)
            render_loss(s)
            render_validation(s)
    else:
        live_progress(job)
        live_charts(job)
else:
    st.info("Set the hyperparameters and press **Train**.")

render_runs()
