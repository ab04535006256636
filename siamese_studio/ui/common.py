"""Session state and caches shared by the pages (the app process never imports TensorFlow)."""
from __future__ import annotations

import contextlib
from dataclasses import astuple
import io
import logging
import re
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from siamese_core import SiameseError, SiameseModel, load_dataset, runs
from siamese_core import weights as W
from siamese_core.data import DEFAULT_DATASET, is_user_spec
from siamese_core.preprocess import Prep
from siamese_core.runs import headline_accuracy
from siamese_studio.ui.text import code, plain
from siamese_studio.ui.uploads import cap_session_uploads, release_large_buffers

DATASETS = ["mnist-5k", "fashion-mnist", "mnist"]
ACTIVE_MODEL = "active_model"       # session key: path prefix of the session's model, or None
ACTIVE_DATASET = "active_dataset"
USER_DATASETS = "user_datasets"     # session key: {spec: the uploaded archive's file name}
UPLOAD_NAMES = "upload_names"       # session key: the same for every upload of the session,
                                    # removed ones too (their models still name them)
JOB = "train_job"                   # session key: the session's TrainingJob
GALLERY = "gallery_folder"          # session key: the run-id folder of the session's galleries


@contextlib.contextmanager
def section(what: str):
    """Draw one section of a page; a defect inside it becomes one line in its place (the full
    traceback goes to the server log) and the rest of the page is still drawn. Streamlit's own
    rerun/stop signals are BaseExceptions and pass through."""
    try:
        yield
    except Exception as e:  # noqa: BLE001 - the page must outlive a defect in one section
        logging.getLogger("siamese_studio").exception("section %r failed", what)
        st.error(f"{what} could not be drawn ({type(e).__name__}); the rest of the page is "
                 "unaffected.")


def protected() -> list[str]:
    """What pruning must leave alone for this session: its model, its uploads, its galleries."""
    gallery = st.session_state.get(GALLERY)
    return [p for p in (st.session_state.get(ACTIVE_MODEL),
                        *[s.split(":", 1)[1] for s in st.session_state.get(USER_DATASETS, {})],
                        gallery and str(runs.default_root() / gallery / "gallery"))
            if p]


def register_upload(spec: str, name: str) -> None:
    """Remember what the user called an upload (its file name), for every message about it."""
    st.session_state.setdefault(UPLOAD_NAMES, {})[spec] = name


def _upload_names() -> dict[str, str]:
    return {**st.session_state.get(UPLOAD_NAMES, {}), **st.session_state.get(USER_DATASETS, {})}


def upload_name(spec: str) -> str | None:
    """The file name this session uploaded ``spec`` as, or None (another session's upload)."""
    return _upload_names().get(spec)


def public(text: object) -> str:
    """``text`` as a user may see it: the server's copy of an upload (``zip:<runs dir>/<id>/
    dataset.zip``, private and useless to the user) is named by the file the user uploaded,
    and any other path under the runs folder is said as "a file on the server"."""
    text = str(text)
    for spec, name in _upload_names().items():
        path = spec.split(":", 1)[1]
        text = text.replace(spec, name).replace(path, name)
    root = str(runs.default_root())
    return re.sub(re.escape(root) + r"[^\s'\"]*", "a file on the server", text)


def say(error: object) -> str:
    """An error (or any message) for the page: server paths hidden (``public``), no Markdown."""
    return plain(public(error))


def dataset_options() -> list[str]:
    """The built-in datasets and this session's own uploads (no other session sees those)."""
    return DATASETS + [s for s in st.session_state.get(USER_DATASETS, {}) if s not in DATASETS]


def dataset_label(spec: str) -> str:
    """How a dataset is named on the pages: an upload by its file name, not its server path."""
    return dataset_labeller()(spec)


def dataset_labeller():
    """``dataset_label`` as a function of the spec alone (a selectbox's ``format_func``, which
    may be called where the session state is out of reach)."""
    names = _upload_names()
    active = st.session_state.get(USER_DATASETS, {})

    def label(spec: str) -> str:
        if is_user_spec(spec):
            name = names.get(spec)
            if name is None:    # an earlier session's (a reloaded page): its id is private
                return "your data (an earlier upload)"
            return f"your data: {name}" + ("" if spec in active else " (removed)")
        return spec
    return label


@st.cache_resource(show_spinner="Loading dataset…", max_entries=8)
def dataset(spec: str, split: str, holdout: str = "auto",
            prep: tuple[int, str | None, str, bool, int | None] = (28, "centre", "ink", False,
                                                                   None)):
    """A dataset split, loaded once per server (read-only arrays shared by all sessions; an
    upload's spec holds a random id only its session knows); ``prep``: ``prep_key``'s."""
    return load_dataset(spec, split, holdout, Prep(*prep))


def prep_key(prep: Prep) -> tuple:
    """A ``Prep`` as the hashable key ``dataset`` caches on: its fields in order."""
    return astuple(prep)


def model_dataset(m: SiameseModel, split: str):
    """A split of the dataset ``m`` was trained on, prepared and split as it was in training."""
    return dataset(m.meta.get("dataset", DEFAULT_DATASET), split, m.meta.get("holdout", "auto"),
                   prep_key(m.prep))


@st.cache_resource(show_spinner="Loading model…", max_entries=16)
def _model(prefix: str, sha: str) -> SiameseModel:
    return SiameseModel.load(prefix)


def model() -> SiameseModel:
    """The session's active model: one it trained and chose, else the shipped default."""
    mine = st.session_state.get(ACTIVE_MODEL)
    if mine and not W.paths(mine)["json"].exists():
        # Pruned (the Train page deletes trained models after a day) or deleted by hand: say so
        # once and fall back, rather than an error on every page with no way back.
        st.session_state[ACTIVE_MODEL] = None
        st.warning("Your trained model's files are gone (trained models are kept for a day); "
                   "back to the shipped model.", icon=":material/history:")
        mine = None
    prefix = mine or str(W.default_prefix())
    sha = W.read_meta(prefix, verify=())["sha256"]["onnx"]
    return _model(prefix, sha)


@st.cache_resource(show_spinner="Embedding the dataset…", max_entries=8)
def split_embeddings(prefix: str, sha: str, split: str):
    """A split of a model's own dataset and its embeddings (neighbours, references, montages)."""
    m = _model(prefix, sha)
    ds = model_dataset(m, split)
    return ds, m.embed(ds.images)


def model_embeddings(split: str = "train"):
    """``split_embeddings`` for the session's active model."""
    m = model()
    return split_embeddings(str(m.prefix), m.meta["sha256"]["onnx"], split)


@st.cache_data(show_spinner="Comparing with the shipped model…", max_entries=32)
def versus_shipped(prefix: str, sha: str) -> dict | None:
    """A trained model against the shipped one on all pairs of its dataset's test split
    (``verdict.compare_models``); None when the two were trained on different datasets."""
    from siamese_core.verdict import compare_models

    shipped_prefix = str(W.default_prefix())
    shipped_meta = W.read_meta(shipped_prefix, verify=())
    mine = _model(prefix, sha)
    spec = mine.meta.get("dataset")
    if spec != shipped_meta.get("dataset") or mine.input_size != 28:
        return None
    shipped = _model(shipped_prefix, shipped_meta["sha256"]["onnx"])
    return compare_models(mine, shipped, model_dataset(shipped, "test"))


def active_dataset() -> str:
    return st.session_state.get(ACTIVE_DATASET, DEFAULT_DATASET)


def montage_labels(spec: str, seed: int, classes: list[str]) -> tuple[str, str]:
    """The pair montage's caption (plain text: the page escapes it) and download file name: both
    say which classes it shows, so a filtered montage is labelled as one and does not overwrite
    the full one's file."""
    which = f" (classes {', '.join(classes)})" if classes else ""
    tag = "-classes-" + "-".join(classes) if classes else ""
    name = re.sub(r"[^\w.-]+", "_", f"pairs-{spec}{tag}-{seed}") + ".png"
    return f"{spec}{which}: 7×7 pairs, seed {seed} — green pos, red neg", name


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


PAGES = Path(__file__).resolve().parents[1] / "pages"
ENTRY = "_entry_ran"          # set by app.py on every run (and by through_entry)
DEEP_LINK = "_deep_link"      # a page to open once app.py has run (see through_entry)


def page(name: str) -> str:
    """A page's script by absolute path: what ``st.Page``, ``st.page_link`` and
    ``st.switch_page`` resolve alike from either entry script (the checkout's ``app.py`` or the
    package's)."""
    return str(PAGES / f"{name}.py")


def through_entry(page_file: str | None) -> None:
    """A deep link (``/train``) that is the first request to a fresh server runs the page file
    without app.py: Streamlit's legacy ``pages/`` mode, with its own sidebar menu (listing
    "app") and no wide layout, until app.py's ``st.navigation`` runs once. So: remember the page
    (by absolute path, as app.py registers it), switch to app.py, and app.py opens it. At most
    once per session, so a page run on its own still renders."""
    if page_file and not st.session_state.get(ENTRY):
        st.session_state[ENTRY] = True
        st.session_state[DEEP_LINK] = str(Path(page_file).resolve())
        st.switch_page("app.py")


@st.fragment(run_every=2.0)
def _training_status() -> None:
    """The session's run, on the other pages: shows how far it is, and keeps it watched (a run
    no page polls is stopped after a while, see ``siamese_core.jobs``)."""
    job = st.session_state.get(JOB)
    if job is None:
        return
    s = job.poll()
    b = s.last_batch
    if s.status in ("starting", "running"):
        st.progress(min(b.progress, 1.0) if b else 0.0,
                    text=f"Training: epoch {b.epoch}" if b else "Training: starting…")
    elif s.status == "done":
        st.caption("Your training run has finished: see **Train**.")


def sidebar(page_file: str | None = None, watch_training: bool = True) -> None:
    """Active model and dataset, on every page; ``page_file`` (the page's ``__file__``) lets a
    deep link to a fresh server go through app.py first (``through_entry``). With
    ``watch_training``, the session's training run is shown (and kept watched)."""
    through_entry(page_file)
    cap_session_uploads()
    release_large_buffers()
    runs.prune_now_and_then(runs.default_root(), keep=protected())   # expired runs go anyway
    job = st.session_state.get(JOB)
    if watch_training and job is not None and not job.finished:
        with st.sidebar:
            _training_status()
    with st.sidebar:
        st.markdown("### Active model")
        try:
            m = model()
            mine = st.session_state.get(ACTIVE_MODEL)
            st.markdown(f"**{'your trained model' if mine else 'shipped default'}** "
                        f"({code(Path(m.prefix).name)})")
            acc, on_test = headline_accuracy(m.meta)
            score = f"{'test' if on_test else 'val.'} pair accuracy {acc:.1%}"
            st.caption(f"{m.meta.get('loss', '?')} loss · trained on "
                       f"{plain(dataset_label(m.meta.get('dataset', '?')))} · {score} · "
                       f"threshold {m.threshold:.3f}")
            if mine and st.button("Back to the shipped model", key="reset_model"):
                st.session_state[ACTIVE_MODEL] = None
                st.rerun()
        except SiameseError as e:
            st.error(say(e))
        st.markdown("### Active dataset")
        st.markdown(code(dataset_label(active_dataset())))
